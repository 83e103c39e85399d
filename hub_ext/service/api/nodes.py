"""``api/nodes/{name}/readings``: node agents report per-GPU utilisation, memory and processes."""

from __future__ import annotations

import re
import time

from ..errors import bad_request, conflict, not_found
from ..events import record
from ..store import GpuRow, NodeRow
from .base import APIHandler

from ..limits import is_number

MAX_GPUS_PER_NODE = 64
MAX_MEMORY_MIB = 1 << 24
NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,252}$")


def _number_or_none(v, field: str, where: str, lo: float = 0, hi: float | None = None):
    if v is None:
        return None
    if not is_number(v) or v < lo or (hi is not None and v > hi):
        bound = f"between {lo:g} and {hi:g}" if hi is not None else f"{lo:g} or more"
        raise bad_request(f"{where}.{field} must be a number {bound}, or null when unknown")
    return v


def check_readings(body: dict) -> tuple[list[dict], bool | None]:
    gpus = body.get("gpus")
    if not isinstance(gpus, list) or len(gpus) > MAX_GPUS_PER_NODE:
        raise bad_request(f"readings need \"gpus\": a list of at most {MAX_GPUS_PER_NODE} GPU readings")
    simulated = body.get("simulated")
    if simulated is not None and not isinstance(simulated, bool):
        raise bad_request("simulated must be true or false")
    out = []
    for i, g in enumerate(gpus):
        where = f"gpus[{i}]"
        if not isinstance(g, dict):
            raise bad_request(f"{where} must be an object")
        uuid, index = g.get("uuid"), g.get("index")
        if not isinstance(uuid, str) or not uuid or len(uuid) > 255:
            raise bad_request(f"{where}.uuid must be the GPU's UUID (at most 255 characters)")
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < 1024:
            raise bad_request(f"{where}.index must be the GPU's index (0 to 1023)")
        processes = g.get("processes") or []
        if not isinstance(processes, list) or not all(isinstance(p, dict) for p in processes):
            raise bad_request(f"{where}.processes must be a list of objects")
        model = g.get("model")
        out.append(
            {
                "uuid": uuid,
                "index": index,
                "model": model[:255] if isinstance(model, str) and model else "unknown",
                "memory_total_mib": _number_or_none(g.get("memory_total_mib"), "memory_total_mib", where, 0, MAX_MEMORY_MIB),
                "memory_used_mib": _number_or_none(g.get("memory_used_mib"), "memory_used_mib", where, 0, MAX_MEMORY_MIB),
                "utilization": _number_or_none(g.get("utilization"), "utilization", where, 0, 100),
                "processes": processes[:256],
            }
        )
    return out, simulated


def check_errors(body: dict) -> list[str]:
    """What the agent could not read (NVML errors), shown as node health on the admin page."""
    errors = body.get("errors") or []
    if not isinstance(errors, list) or not all(isinstance(e, str) for e in errors):
        raise bad_request("errors must be a list of messages (strings)")
    return [e[:500] for e in errors[:20]]


class ReadingsHandler(APIHandler):
    scopes = {"POST": "agent"}

    async def post(self, name):
        if not NODE_NAME.match(name):
            raise bad_request("a node name is 1-253 letters, digits, '.', '_', ':' or '-', starting with a letter or digit")
        body = self.json_object()
        readings, simulated = check_readings(body)
        errors = check_errors(body)
        now = time.time()
        inventory = self.pool.inventory
        added = False
        with self.pool.store.write() as db:
            node = db.get(NodeRow, name)
            if node is None:
                if not inventory.accept_agent_nodes:
                    raise not_found(f"no node {name!r} in the pool (Inventory.accept_agent_nodes is off)")
                node = NodeRow(name=name, simulated=bool(simulated), schedulable=True, source="agent")
                db.add(node)
                added = True
            elif simulated is not None and node.source == "agent":
                node.simulated = simulated
            by_uuid = {g.uuid: g for g in node.gpus}
            by_index = {g.index: g for g in node.gpus}
            unknown = []
            measured = []
            for r in readings:
                g = by_uuid.get(r["uuid"]) or by_index.get(r["index"])
                if g is None:
                    if node.source != "agent":
                        unknown.append(r["uuid"])
                        continue
                    elsewhere = db.get(GpuRow, r["uuid"])
                    if elsewhere is not None:
                        # One card, two nodes: a copied agent configuration or a wrong --node. Never
                        # move a card (and whoever holds it) on one report's word.
                        raise conflict(
                            f"GPU {r['uuid']} is already registered on node {elsewhere.node_name!r}; "
                            f"this agent reports it for node {name!r}. Run the agent of this machine with "
                            f"--node {elsewhere.node_name} if that is this machine, or check that the agent reads its own "
                            f"GPUs (a GPU UUID belongs to one card). The card stays on {elsewhere.node_name!r}."
                        )
                    g = GpuRow(uuid=r["uuid"], index=r["index"], model=r["model"], memory_mib=int(r["memory_total_mib"] or 0))
                    node.gpus.append(g)
                g.memory_used_mib = None if r["memory_used_mib"] is None else int(r["memory_used_mib"])
                g.processes = r["processes"]
                previous_at = g.reading_at
                # utilisation, reading time and the idle streak: the reclaim policy's definition of idle
                self.pool.reclaim.apply_reading(g, r["utilization"], now)
                measured.append((g.uuid, r["utilization"], previous_at))
            node.last_reading_at = now
            node.agent_errors = errors or None
            if self.pool.usage is not None:
                self.pool.usage.record_readings(db, measured, now)
            if added:
                record(db, "node-added", f"node {name} joined the pool with {len(node.gpus)} GPU(s), reported by {self.me.name}",
                       details={"node": name, "gpus": len(node.gpus)}, at=now)
        if added:
            self.pool.loop.poke()
        self.write_json({"node": name, "accepted": len(readings) - len(unknown), "unknown_gpus": unknown})


handlers = [(r"api/nodes/([^/]+)/readings", ReadingsHandler)]
