"""Persistence of the pool service: the ORM module (``orm``) and its Alembic migrations."""

from .orm import (
    EventRow,
    GpuRow,
    NodeRow,
    ShareRow,
    Store,
    SubmitKeyRow,
    TeamRow,
    UsageHistoryRow,
    WorkloadRow,
    format_workload_id,
    parse_workload_id,
)
from .orm import UsageSampleRow

__all__ = [
    "EventRow", "GpuRow", "NodeRow", "ShareRow", "Store", "SubmitKeyRow", "TeamRow", "UsageHistoryRow", "WorkloadRow", "format_workload_id", "parse_workload_id",
    "UsageSampleRow",
]
