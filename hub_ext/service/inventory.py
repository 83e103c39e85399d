"""Which nodes and GPUs make up the pool.

Two sources: a pool declared in configuration (marked *simulated* unless the
admin says real cards stand behind it), and the cards of this machine found
through NVML (``hub_ext.gpus``, the only module that touches pynvml). Node
agents may add further nodes at run time by reporting readings.

``sync`` writes the inventory into the database at start: new nodes and
cards are added, changed ones updated, and a node that disappeared from the
configuration is removed once nothing holds its GPUs (until then it is kept
but made unschedulable, so no running workload loses its cards).
"""

from __future__ import annotations

import socket

from sqlalchemy import select
from sqlalchemy.orm import Session
from traitlets import Bool, Enum, Float, List, Unicode
from traitlets.config import LoggingConfigurable

from ..scheduler.model import GPU, Node
from .store import GpuRow, NodeRow, ShareRow


class InventoryError(ValueError):
    """The declared inventory is malformed; the message says where."""


def simulated_uuid(node: str, index: int) -> str:
    return f"GPU-sim-{node}-{index}"


def parse_declared_nodes(declared: list) -> list[Node]:
    """Turn the configuration's node list into scheduler ``Node``s, checking it on the way."""
    nodes: list[Node] = []
    seen_nodes: set[str] = set()
    seen_uuids: set[str] = set()
    for i, spec in enumerate(declared):
        where = f"Inventory.nodes[{i}]"
        if not isinstance(spec, dict) or not spec.get("name"):
            raise InventoryError(f"{where}: each node needs at least a name, e.g. {{'name': 'dgx1-a', 'gpus': 8}}")
        name = str(spec["name"])
        if name in seen_nodes:
            raise InventoryError(f"{where}: node {name!r} is declared twice")
        seen_nodes.add(name)
        model = str(spec.get("model", "simulated-gpu"))
        memory = int(spec.get("memory_mib", 16384))
        gpus_spec = spec.get("gpus", 0)
        if isinstance(gpus_spec, int):
            if gpus_spec < 0:
                raise InventoryError(f"{where}: gpus must be a count >= 0 or a list of cards")
            cards = [{} for _ in range(gpus_spec)]
        elif isinstance(gpus_spec, list):
            cards = gpus_spec
        else:
            raise InventoryError(f"{where}: gpus must be a count or a list of cards")
        gpus = []
        for index, card in enumerate(cards):
            if not isinstance(card, dict):
                raise InventoryError(f"{where}.gpus[{index}]: a card is a dict (uuid, model, memory_mib)")
            uuid = str(card.get("uuid") or simulated_uuid(name, index))
            if uuid in seen_uuids:
                raise InventoryError(f"{where}.gpus[{index}]: GPU {uuid} is declared twice")
            seen_uuids.add(uuid)
            gpus.append(
                GPU(
                    uuid=uuid,
                    index=int(card.get("index", index)),
                    model=str(card.get("model", model)),
                    memory_mib=int(card.get("memory_mib", memory)),
                )
            )
        nodes.append(
            Node(
                name=name,
                gpus=tuple(gpus),
                simulated=bool(spec.get("simulated", True)),
                schedulable=bool(spec.get("schedulable", True)),
            )
        )
    return nodes


def discover_nvml_node(name: str) -> Node | None:
    """This machine's cards through NVML; None where there is no driver."""
    try:
        from ..gpus import GpuBackendUnavailable, open_backend
    except ImportError:  # hub_ext.gpus not installed: nothing to discover
        return None
    try:
        backend = open_backend("nvml")
    except (GpuBackendUnavailable, ImportError):
        return None
    with backend:
        infos = backend.list_gpus()
    if not infos:
        return None
    gpus = tuple(GPU(uuid=g.uuid, index=g.index, model=g.model, memory_mib=g.memory_mib) for g in infos)
    return Node(name=name, gpus=gpus, simulated=False)


class Inventory(LoggingConfigurable):
    """The pool's nodes and GPUs."""

    source = Enum(
        ["auto", "declared", "nvml"],
        default_value="auto",
        help="""Where the pool's GPUs come from.

        "declared": the nodes in ``Inventory.nodes`` (marked simulated unless a node says
        ``"simulated": False``). "nvml": the NVIDIA cards of the machine the service runs on.
        "auto": the declared nodes if any are configured, otherwise NVML, otherwise an empty
        pool (node agents can still add nodes by reporting).
        """,
    ).tag(config=True)

    nodes = List(
        help="""The declared pool: a list of nodes, each
        ``{"name": "dgx1-a", "gpus": 8, "model": "V100-SXM2-32GB", "memory_mib": 32768}``.
        ``gpus`` is a count, or a list of cards ``{"uuid", "model", "memory_mib"}`` for real
        hardware reported on by node agents. A declared node is ``"simulated": True`` unless it
        says otherwise; ``"schedulable": False`` keeps it out of new placements.
        """,
    ).tag(config=True)

    local_node_name = Unicode(
        help="Name of this machine's node when its GPUs are discovered through NVML (default: the host name).",
    ).tag(config=True)

    accept_agent_nodes = Bool(
        True,
        help="""Add a node the first time a node agent reports readings for it (with the cards it
        reports). When False, readings for nodes not in the inventory are refused.""",
    ).tag(config=True)

    idle_threshold_percent = Float(
        1.0,
        help="A GPU whose reported utilisation is below this percentage counts as idle (shown as idle_seconds in the pool).",
    ).tag(config=True)

    def load(self) -> list[Node]:
        """The configured inventory (not yet written to the database)."""
        if self.source in ("declared", "auto") and self.nodes:
            return parse_declared_nodes(self.nodes)
        if self.source == "declared":
            return []
        node = discover_nvml_node(self.local_node_name or socket.gethostname())
        if node is None:
            if self.source == "nvml":
                self.log.warning("Inventory.source is 'nvml' but no NVIDIA GPUs were found on this machine")
            return []
        return [node]

    def sync(self, db: Session, nodes: list[Node]) -> None:
        """Make the database's nodes and GPUs match ``nodes``; agent-reported nodes are left alone."""
        wanted = {n.name: n for n in nodes}
        held_uuids = set(db.scalars(select(ShareRow.gpu_uuid)))
        existing = {row.name: row for row in db.scalars(select(NodeRow))}
        for name, node in wanted.items():
            row = existing.get(name)
            if row is None:
                row = NodeRow(name=name, source="declared")
                db.add(row)
            row.simulated = node.simulated
            row.schedulable = node.schedulable
            row.source = "declared" if self.source != "nvml" and self.nodes else "nvml"
            current = {g.uuid: g for g in row.gpus}
            for gpu in node.gpus:
                g = current.pop(gpu.uuid, None) or db.get(GpuRow, gpu.uuid)
                if g is None:
                    g = GpuRow(uuid=gpu.uuid)
                    row.gpus.append(g)
                elif g.node_name != name:
                    g.node = row
                g.index, g.model, g.memory_mib = gpu.index, gpu.model, gpu.memory_mib
            for uuid, g in current.items():
                if uuid in held_uuids:
                    self.log.warning("GPU %s left the inventory of %s but is still held; keeping it until released", uuid, name)
                    row.schedulable = False
                else:
                    row.gpus.remove(g)
        for name, row in existing.items():
            if name in wanted or row.source == "agent":
                continue
            if any(g.uuid in held_uuids for g in row.gpus):
                self.log.warning("Node %s left the inventory but still has allocations; unschedulable until they end", name)
                row.schedulable = False
            else:
                db.delete(row)
