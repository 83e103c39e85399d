"""``gpupool pool``: nodes and GPU models with free, used and idle GPUs (Slurm's ``sinfo`` habit).

Free and used count GPUs (a shared card counts by the fraction held); idle counts GPUs that
someone holds but the node agent reads as idle (the reclaim's candidates); a node with no
recent reading says so.
"""

from __future__ import annotations

from collections import defaultdict

from .common import connection_options, gpus, print_json, run, table

NODE_COLUMNS = ("NODE", "MODEL", "GPUS", "FREE", "USED", "IDLE", "STATE")
MODEL_COLUMNS = ("MODEL", "NODES", "GPUS", "FREE", "USED", "IDLE")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "pool", parents=[connection_options()], help="show nodes and GPU models: free, used, idle",
        description="The pool's nodes and GPU models with free, used and idle (held but unused) GPUs.",
    )
    p.set_defaults(func=cmd_pool)


def _counts(cards: list[dict]) -> tuple[int, float, float, int]:
    used = sum(min(1.0, float(g.get("used_fraction") or 0.0)) for g in cards)
    idle = sum(1 for g in cards if g.get("holders") and g.get("idle_seconds") is not None)
    return len(cards), len(cards) - used, used, idle


def _node_state(node: dict) -> str:
    words = []
    if not node.get("schedulable", True):
        words.append("unschedulable")
    if node.get("simulated"):
        words.append("simulated")
    if not node.get("last_reading_at"):
        words.append("no reading")
    return ", ".join(words) or "ok"


def format_pool(pool: dict) -> str:
    nodes = pool.get("nodes") or []
    if not nodes:
        return "the pool has no nodes"
    node_rows = []
    by_model: dict[str, list[dict]] = defaultdict(list)
    nodes_of_model: dict[str, set[str]] = defaultdict(set)
    for node in nodes:
        cards = node.get("gpus") or []
        models = sorted({str(g.get("model") or "?") for g in cards}) or ["-"]
        total, free, used, idle = _counts(cards)
        node_rows.append((str(node.get("name", "")), ",".join(models), str(total), gpus(round(free, 3)), gpus(round(used, 3)),
                          str(idle), _node_state(node)))
        for g in cards:
            model = str(g.get("model") or "?")
            by_model[model].append(g)
            nodes_of_model[model].add(str(node.get("name")))
    model_rows = []
    for model, cards in sorted(by_model.items()):
        total, free, used, idle = _counts(cards)
        model_rows.append((model, str(len(nodes_of_model[model])), str(total), gpus(round(free, 3)), gpus(round(used, 3)), str(idle)))
    all_cards = [g for n in nodes for g in (n.get("gpus") or [])]
    total, free, used, idle = _counts(all_cards)
    summary = f"{total} GPUs: {gpus(round(free, 3))} free, {gpus(round(used, 3))} used, {idle} held but idle"
    if pool.get("simulated"):
        summary += " (simulated pool: no real GPUs behind it)"
    return "\n\n".join([summary, table(NODE_COLUMNS, node_rows), table(MODEL_COLUMNS, model_rows)])


def cmd_pool(args) -> int:
    def action(client):
        pool = client.pool()
        if args.json:
            print_json(pool)
        else:
            print(format_pool(pool))

    return run(args, action)
