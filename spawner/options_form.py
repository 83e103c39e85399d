"""The spawn form: team, GPUs (none / a fraction / 1..N whole) and GPU model.

It shows what the pool has free right now, greys out choices that would
queue, and disables choices that could never start (no node has that many
cards, or above the team's limit), saying why next to each one. The figures
come from the pool service's ``api/pool``, ``api/teams`` and ``api/queue``;
when the service does not answer the form still works, without them.
"""

from __future__ import annotations

import html
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable

from .gpu_choices import offered_choices

FREE_EPSILON = 1e-6


@dataclass(frozen=True)
class ChoiceState:
    gpus: float
    label: str  # "1 GPU", "0.5 of a GPU"
    note: str  # "free now", "would queue: ...", "not possible: ..."
    startable_now: bool
    possible: bool


def _gpus_of(pool) -> list[dict]:
    from .pool_allocation import iter_pool_gpus  # one parser of api/pool for the whole package

    return iter_pool_gpus(pool)


def _label(gpus: float) -> str:
    if gpus == 0:
        return "No GPU"
    if gpus < 1:
        return f"{gpus:g} of a GPU (shared card)"
    n = int(gpus)
    return f"{n} GPU" + ("s" if n > 1 else "")


def choice_states(
    pool, teams, queue, *, team: str | None, fractions: Iterable[float], max_whole: int
) -> list[ChoiceState]:
    """For every offered GPU count: can it start now, could it ever, and why not."""
    gpus = _gpus_of(pool)
    known = bool(gpus)
    free_whole_by_node: Counter = Counter()
    size_by_node: Counter = Counter()
    largest_free_fraction = 0.0
    for g in gpus:
        node = g.get("node")
        size_by_node[node] += 1
        used = float(g.get("used_fraction") or 0.0)
        if g.get("state") == "free" or used <= FREE_EPSILON:
            free_whole_by_node[node] += 1
        largest_free_fraction = max(largest_free_fraction, 1.0 - used)
    most_free_on_a_node = max(free_whole_by_node.values(), default=0)
    largest_node = max(size_by_node.values(), default=0)
    team_info = next((t for t in (teams or []) if t.get("name") == team), None)
    limit = team_info.get("limit") if team_info else None
    team_usage = float(team_info.get("usage") or 0.0) if team_info else 0.0
    quota = float(team_info.get("quota") or 0.0) if team_info else 0.0
    waiting = len(queue or [])
    # Work within the team's quota takes back GPUs other teams borrowed (preemption), at once:
    # those cards count as free for it.
    lent_by_node, lent_total = _lent_to_others(gpus, teams, team)
    lent_share = any(lent_by_node.values())

    states = []
    for choice in offered_choices(fractions, max_whole):
        label = _label(choice)
        if choice == 0:
            states.append(ChoiceState(choice, label, "starts at once", True, True))
            continue
        if not known:
            states.append(ChoiceState(choice, label, "pool status unknown", True, True))
            continue
        need_whole = choice >= 1
        if need_whole and choice > largest_node:
            states.append(ChoiceState(choice, label, f"not possible: the largest node has {largest_node} GPUs", False, False))
            continue
        if limit is not None and choice > float(limit) + FREE_EPSILON:
            states.append(ChoiceState(choice, label, f"not possible: team {team} is limited to {float(limit):g} GPUs", False, False))
            continue
        now = (most_free_on_a_node >= choice) if need_whole else (largest_free_fraction + FREE_EPSILON >= choice)
        if limit is not None and team_usage + choice > float(limit) + FREE_EPSILON:
            # Free cards do not help a team at its limit: it waits for its own work to end.
            why = f"would queue: team {team} uses {team_usage:g} of its limit of {float(limit):g} GPUs"
            states.append(ChoiceState(choice, label, why, False, True))
            continue
        within_quota = team_info is not None and team_usage + choice <= quota + FREE_EPSILON
        if not now and within_quota and lent_total > FREE_EPSILON:
            if need_whole:
                room = max((free_whole_by_node[n] + lent_by_node[n] for n in size_by_node), default=0)
                reclaim = room >= choice and choice - most_free_on_a_node <= lent_total + FREE_EPSILON
            else:
                reclaim = lent_share
            if reclaim:
                why = (f"starts at once: within team {team}'s quota of {quota:g}, it takes back GPUs "
                       "lent to other teams (their borrowed work is preempted)")
                states.append(ChoiceState(choice, label, why, True, True))
                continue
        if now and waiting == 0:
            states.append(ChoiceState(choice, label, "free now", True, True))
        elif now:
            states.append(ChoiceState(choice, label, f"free now; {waiting} request(s) already queued may go first", True, True))
        else:
            if not need_whole:
                why = "would queue: no card has that share free"
            elif most_free_on_a_node == 0:
                why = "would queue: no GPU is free now"
            else:
                why = f"would queue: at most {most_free_on_a_node} free on one node"
            if waiting:
                why += f", {waiting} request(s) queued"
            states.append(ChoiceState(choice, label, why, False, True))
    return states


def _lent_to_others(gpus: list[dict], teams, team: str | None) -> tuple[Counter, float]:
    """Per node, whole cards held only by other teams that borrow beyond their quota; and how
    many GPUs those teams borrow in all (no more than that can be taken back)."""
    borrowing = {t.get("name"): float(t.get("borrowed") or 0.0) for t in (teams or []) if t.get("name") != team}
    borrowing = {name: b for name, b in borrowing.items() if b > FREE_EPSILON}
    by_node: Counter = Counter()
    if not team or not borrowing:
        return by_node, 0.0
    for g in gpus:
        holders = g.get("holders") or []
        if holders and all(h.get("team") in borrowing for h in holders):
            by_node[g.get("node")] += 1
    return by_node, sum(borrowing.values())


def render_options_form(
    *,
    pool,
    teams,
    queue,
    user_teams: list[str],
    fractions: Iterable[float],
    max_whole: int,
    default_gpus: float,
    offer_models: bool,
) -> str:
    fractions = list(fractions)
    team = user_teams[0] if user_teams else None
    gpus = _gpus_of(pool)
    parts: list[str] = ['<div class="gpupool-options">']
    parts.append(_style())
    parts.append(f'<p class="gpupool-summary">{html.escape(_summary(gpus, queue))}</p>')

    if len(user_teams) > 1:
        parts.append('<div class="mb-3"><label class="form-label" for="gpupool-team">Team</label>')
        parts.append('<select class="form-select" id="gpupool-team" name="team">')
        for name in user_teams:
            parts.append(f'<option value="{html.escape(name)}">{html.escape(name)}</option>')
        parts.append("</select></div>")
    elif team:
        parts.append(f'<input type="hidden" name="team" value="{html.escape(team)}">')
        parts.append(f'<p class="gpupool-team">Team: <strong>{html.escape(team)}</strong></p>')

    parts.append('<fieldset class="mb-3"><legend class="form-label">GPUs</legend>')
    states = choice_states(pool, teams, queue, team=team, fractions=fractions, max_whole=max_whole)
    default = min(states, key=lambda s: abs(s.gpus - default_gpus)).gpus if states else 0
    for i, s in enumerate(states):
        css = "gpupool-choice" + ("" if s.startable_now else " gpupool-later") + ("" if s.possible else " gpupool-never")
        attrs = " disabled" if not s.possible else ""
        attrs += " checked" if s.gpus == default and s.possible else ""
        value = f"{s.gpus:g}"
        parts.append(
            f'<div class="form-check {css}"><input class="form-check-input" type="radio" name="gpus" '
            f'id="gpupool-gpus-{i}" value="{value}"{attrs}>'
            f'<label class="form-check-label" for="gpupool-gpus-{i}">{html.escape(s.label)}'
            f' <small class="gpupool-note">({html.escape(s.note)})</small></label></div>'
        )
    parts.append("</fieldset>")

    models = _models(gpus)
    if offer_models and len(models) > 1:
        parts.append('<div class="mb-3"><label class="form-label" for="gpupool-model">GPU model</label>')
        parts.append('<select class="form-select" id="gpupool-model" name="gpu_model"><option value="">Any model</option>')
        for model, (free, total) in sorted(models.items()):
            parts.append(
                f'<option value="{html.escape(model)}">{html.escape(model)} ({free} of {total} free)</option>'
            )
        parts.append("</select></div>")
    parts.append("</div>")
    return "\n".join(parts)


def _models(gpus: list[dict]) -> dict[str, tuple[int, int]]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for g in gpus:
        model = g.get("model")
        if not model:
            continue
        counts[model][1] += 1
        if float(g.get("used_fraction") or 0.0) <= FREE_EPSILON:
            counts[model][0] += 1
    return {m: (c[0], c[1]) for m, c in counts.items()}


def _summary(gpus: list[dict], queue) -> str:
    if not gpus:
        return "The GPU pool's status is not available right now; you can still ask for GPUs."
    free = sum(1 for g in gpus if float(g.get("used_fraction") or 0.0) <= FREE_EPSILON)
    simulated = all(g.get("simulated") for g in gpus)
    waiting = len(queue or [])
    text = f"{free} of {len(gpus)} GPUs free now"
    if simulated:
        text += " (simulated pool: no real GPUs behind it)"
    text += f"; {waiting} request(s) waiting in the queue." if waiting else "; nobody is waiting."
    return text


def _style() -> str:
    return (
        "<style>"
        ".gpupool-later label{color:#6c757d}"
        ".gpupool-never label{color:#adb5bd;text-decoration:line-through}"
        ".gpupool-note{font-style:italic}"
        "</style>"
    )
