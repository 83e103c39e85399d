"""The node agent: reads GPU facts (``hub_ext.gpus``) and reports them to the pool service."""

from .agent import DEFAULT_INTERVAL_S, NodeAgent, attribute, holders_by_gpu
from .processes import WORKLOAD_ENV, workload_of_process

__all__ = ["DEFAULT_INTERVAL_S", "NodeAgent", "WORKLOAD_ENV", "attribute", "holders_by_gpu", "workload_of_process"]
