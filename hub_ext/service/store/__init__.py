"""Persistence of the pool service: the ORM module (``orm``) and its Alembic migrations."""

from .orm import (  # noqa: F401
    EventRow,
    GpuRow,
    NodeRow,
    ShareRow,
    Store,
    TeamRow,
    WorkloadRow,
    format_workload_id,
    parse_workload_id,
)
