"""Submitting, cancelling and resizing workloads: the rules behind the handlers.

Everything is checked before anything is written, and all writes of one
request happen in one transaction, so a refused request leaves nothing
behind. Messages say what was wrong and what would be accepted.
"""

from __future__ import annotations

import hashlib
import json
import time

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from traitlets import Float, Integer
from traitlets.config import LoggingConfigurable

from ..scheduler.model import EPSILON
from . import attained, events
from .apply import JobActions, release, stop_process
from .errors import ApiError, bad_request, conflict, not_found
from .limits import InputLimits, is_number, number
from .store import NodeRow, SubmitKeyRow, TeamRow, WorkloadRow, parse_workload_id
from .time_limits import TimeLimits
from .views import FINISHED_STATES

SUBMIT_FIELDS = {
    "name", "kind", "gpus", "min_gpus", "max_gpus", "gpu_model", "min_gpu_memory_mib", "gpu_memory_mib",
    "priority", "preemptible", "command", "env", "workdir", "team", "user",
    "idempotency_key", "time_limit_s",
}

#: No node has more GPUs than this, nor more memory per GPU (MiB): larger requests are typos.
MAX_GPUS = 1024
MAX_GPU_MEMORY_MIB = 1 << 24


def _is_number(v) -> bool:
    return is_number(v)


def _whole(v) -> bool:
    return _is_number(v) and float(v).is_integer()


def _gpus_text(n: float) -> str:
    return f"{n:g} GPU" + ("" if n == 1 else "s")


class WorkloadRules(LoggingConfigurable):
    """Limits on what a workload may ask for."""

    min_fraction = Float(
        0.1,
        help="""The smallest share of one GPU a workload may ask for (``gpus`` between this and 1).
        Smaller shares leave too little memory and time to be useful.""",
    ).tag(config=True)

    max_priority = Integer(
        1000,
        help="Priorities must lie between -max_priority and max_priority.",
    ).tag(config=True)

    max_name_length = Integer(200, help="Longest workload name accepted.").tag(config=True)

    def __init__(self, limits: InputLimits | None = None, **kwargs):
        super().__init__(**kwargs)
        self.limits = limits or InputLimits(parent=self.parent)

    # ------------------------------------------------------------ submit

    def check_shape(self, body: dict) -> dict:
        """Check a submission's fields on their own (no database); return them normalised."""
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object describing the workload, e.g. {\"gpus\": 1, \"command\": [\"python\", \"train.py\"]}")
        unknown = sorted(set(body) - SUBMIT_FIELDS)
        if unknown:
            raise bad_request(f"unknown field(s): {', '.join(unknown)}; a workload has: {', '.join(sorted(SUBMIT_FIELDS))}")
        spec = dict(body)
        limits = self.limits
        command = limits.check_command(spec.get("command"))
        spec["command"] = command or None
        kind = spec.get("kind") or ("job" if command else "session")
        if kind not in ("job", "session"):
            raise bad_request(f"kind must be \"job\" or \"session\", not {kind!r}")
        spec["kind"] = kind
        if kind == "job" and not command:
            raise bad_request("a job needs a command to run, e.g. \"command\": [\"python\", \"train.py\"]")
        if kind == "session" and command:
            raise bad_request("a session is started by the hub's spawner and takes no command; submit a job to run a command")

        gpus = spec.get("gpus", 1)
        if not _is_number(gpus) or gpus > MAX_GPUS:
            raise bad_request(
                f"gpus must be a number up to {MAX_GPUS} (a whole number of GPUs, or a fraction of one), not {str(gpus)[:40]}"
            )
        if gpus <= 0:
            raise bad_request(f"gpus must be more than 0 (got {gpus:g}); a workload without GPUs does not need the pool")
        if gpus < 1 and gpus < self.min_fraction - EPSILON:
            raise bad_request(
                f"{gpus:g} of a GPU is not a sensible share: the smallest share is {self.min_fraction:g} of a GPU"
            )
        if gpus > 1 and not _whole(gpus):
            raise bad_request(
                f"{gpus:g} GPUs is not a sensible share: ask for a whole number of GPUs, or for a fraction of one GPU (between {self.min_fraction:g} and 1)"
            )
        spec["gpus"] = float(gpus)

        for field in ("min_gpus", "max_gpus", "min_gpu_memory_mib", "gpu_memory_mib"):
            top = MAX_GPUS if field.endswith("gpus") else MAX_GPU_MEMORY_MIB
            spec[field] = number(spec.get(field), field, 1, top, whole=True, nullable=True)
        lo, hi = spec.get("min_gpus"), spec.get("max_gpus")
        if (lo is None) != (hi is None):
            raise bad_request("an elastic job needs both min_gpus and max_gpus")
        if lo is not None:
            if kind != "job":
                raise bad_request("only jobs are elastic: min_gpus and max_gpus are for jobs")
            if gpus < 1:
                raise bad_request("an elastic job uses whole GPUs: gpus, min_gpus and max_gpus must be whole numbers")
            if not (lo <= gpus <= hi):
                raise bad_request(f"gpus ({gpus:g}) must lie between min_gpus ({lo}) and max_gpus ({hi})")
        if spec.get("gpu_memory_mib") is not None and gpus >= 1:
            raise bad_request("gpu_memory_mib is the memory share of a fraction of a GPU; a whole GPU has all its memory")

        priority = spec.get("priority", 0)
        if priority is None:
            priority = 0
        if not _whole(priority) or not -self.max_priority <= priority <= self.max_priority:
            raise bad_request(f"priority must be a whole number between -{self.max_priority} and {self.max_priority}")
        spec["priority"] = int(priority)
        preemptible = spec.get("preemptible", True)
        if not isinstance(preemptible, bool):
            raise bad_request("preemptible must be true or false")
        spec["preemptible"] = preemptible
        limits.check_text(spec.get("name"), "name", self.max_name_length, allow_empty=True)
        for field in ("team", "user", "gpu_model", "idempotency_key"):
            limits.check_text(spec.get(field), field)
        limits.check_text(spec.get("workdir"), "workdir", limits.max_path_length)
        env = limits.check_env(spec.get("env"))
        if env and kind != "job":
            raise bad_request("env is for jobs; a session's environment comes from its spawner")
        spec["time_limit_s"] = TimeLimits.check_value(spec.get("time_limit_s"))
        if spec["time_limit_s"] is not None and kind != "job":
            raise bad_request("time_limit_s is for jobs; a session's length is bounded by its team's session maximum, if any")
        return spec

    def choose_team(self, db: Session, spec: dict, user: str, member_of: list[str], caller_is_admin: bool) -> TeamRow:
        teams = {t.name: t for t in db.scalars(select(TeamRow))}
        wanted = spec.get("team")
        if wanted is not None:
            team = teams.get(wanted)
            if team is None:
                known = ", ".join(sorted(teams)) or "none yet"
                raise bad_request(f"unknown team {wanted!r}; teams are: {known}")
            if wanted not in member_of and not caller_is_admin:
                mine = ", ".join(member_of) or "none"
                raise ApiError(403, f"{user} is not a member of team {wanted!r} (your teams: {mine})")
            return team
        if len(member_of) == 1:
            return teams[member_of[0]]
        if not member_of:
            raise bad_request(
                f"{user} belongs to no team, so the pool cannot account for this workload; "
                "ask an admin to add you to a team's JupyterHub group"
            )
        raise bad_request(f"{user} is in several teams ({', '.join(member_of)}): say which one with \"team\"")

    def check_fits(self, db: Session, spec: dict, team: TeamRow, job_nodes: tuple[int | None, str] = (1, "")) -> None:
        """Refuse what could never run: more GPUs than any node has (than the nodes a job may span,
        ``job_nodes``: the runner's ``max_nodes`` and its description), no matching card, over the team's limit."""
        gpus = spec["gpus"]
        model, min_mem = spec.get("gpu_model"), spec.get("min_gpu_memory_mib")
        biggest = 0
        models: set[str] = set()
        per_node: list[int] = []
        for node in db.scalars(select(NodeRow).options(selectinload(NodeRow.gpus)).where(NodeRow.schedulable.is_(True))):
            fitting = [g for g in node.gpus if (model is None or g.model == model) and (min_mem is None or g.memory_mib >= min_mem)]
            models.update(g.model for g in node.gpus)
            biggest = max(biggest, len(fitting))
            per_node.append(len(fitting))
            if spec.get("gpu_memory_mib") is not None and fitting and all(g.memory_mib < spec["gpu_memory_mib"] for g in fitting):
                raise bad_request(f"gpu_memory_mib ({spec['gpu_memory_mib']}) is more than any matching GPU has")
        wanted = max(gpus, spec.get("min_gpus") or 0)
        what = " ".join(
            filter(None, [f"of model {model!r}" if model else "", f"with at least {min_mem} MiB" if min_mem else ""])
        )
        if biggest == 0:
            if model and model not in models:
                raise bad_request(f"no GPU in the pool is of model {model!r}; models here: {', '.join(sorted(models)) or 'none'}")
            raise bad_request(f"no schedulable node has GPUs {what}".strip() if what else "the pool has no schedulable GPUs")
        max_nodes, runner = job_nodes
        if spec.get("kind") == "job" and max_nodes != 1 and wanted > biggest and wanted == int(wanted):
            # A gang of whole GPUs across nodes (fractions live on one card).
            spread = sum(sorted(per_node, reverse=True)[:max_nodes] if max_nodes else per_node)
            if wanted > spread:
                raise bad_request(
                    f"asks for {_gpus_text(wanted)} but the pool's nodes together have {spread} GPUs"
                    + (f" {what}" if what else "") + f"; ask for at most {spread}"
                )
        elif wanted > biggest:
            if spec.get("kind") == "job" and runner:
                raise bad_request(
                    f"asks for {_gpus_text(wanted)} but the largest node has {biggest} GPU{'s' if biggest != 1 else ''}"
                    + (f" {what}" if what else "")
                    + f"; {runner} runs a job on one node, so ask for at most {biggest}"
                )
            raise bad_request(
                f"asks for {_gpus_text(wanted)} but the largest node has {biggest} GPU{'s' if biggest != 1 else ''}"
                + (f" {what}" if what else "")
                + f"; a workload runs on one node, so ask for at most {biggest}"
            )
        if team.limit is not None and wanted > team.limit + EPSILON:
            raise bad_request(
                f"asks for {_gpus_text(wanted)} but team {team.name} has a limit of {team.limit:g}; it could never start"
            )

    def create(self, db: Session, spec: dict, user: str, team: TeamRow, now: float | None = None) -> WorkloadRow:
        now = time.time() if now is None else now
        w = WorkloadRow(
            name=spec.get("name"),
            user=user,
            team=team.name,
            kind=spec["kind"],
            state="pending",
            gpus=spec["gpus"],
            min_gpus=spec.get("min_gpus"),
            max_gpus=spec.get("max_gpus"),
            gpu_model=spec.get("gpu_model"),
            min_gpu_memory_mib=spec.get("min_gpu_memory_mib"),
            gpu_memory_mib=spec.get("gpu_memory_mib"),
            priority=spec["priority"],
            preemptible=spec["preemptible"],
            command=spec.get("command"),
            env=spec.get("env"),
            workdir=spec.get("workdir"),
            time_limit_s=spec.get("time_limit_s"),
            submitted_at=now,
            reason="waiting for the scheduler",
            preemptions=0,
            over_quota=False,
        )
        db.add(w)
        db.flush()
        events.record(
            db, "submitted", f"{w.kind} asks for {_gpus_text(w.gpus)}", w,
            details={"gpus": w.gpus, "kind": w.kind, "name": w.name}, at=now,
        )
        return w

    # ------------------------------------------------------------ idempotency

    @staticmethod
    def digest(spec: dict, user: str) -> str:
        """A fingerprint of a checked submission (without its key), to tell a retry from a different request."""
        same = {k: v for k, v in spec.items() if k != "idempotency_key"}
        return hashlib.sha256(json.dumps([user, same], sort_keys=True).encode()).hexdigest()

    def submitted_before(self, db: Session, user: str, key: str | None, digest: str) -> WorkloadRow | None:
        """The workload an earlier submission with this idempotency key made, if any (inside the write)."""
        if not key:
            return None
        row = db.get(SubmitKeyRow, (user, key))
        if row is None:
            return None
        if row.digest != digest:
            raise conflict(
                f"the idempotency key {key!r} was already used for a different submission ({format_id(row.workload_seq)}); "
                "use a new key for a new workload"
            )
        return get_workload(db, format_id(row.workload_seq))

    def remember_key(self, db: Session, w: WorkloadRow, key: str | None, digest: str, now: float | None = None) -> None:
        if key:
            db.add(SubmitKeyRow(user=w.user, key=key, workload_seq=w.seq, digest=digest, created_at=now or time.time()))

    # ------------------------------------------------------------ cancel

    def cancel(self, db: Session, w: WorkloadRow, by: str, now: float | None = None) -> JobActions:
        now = time.time() if now is None else now
        actions = JobActions()
        if w.state in FINISHED_STATES:
            raise conflict(f"{w.id} has already {'been cancelled' if w.state == 'cancelled' else w.state}; nothing to cancel")
        was = w.state
        release(w, actions, now)
        w.state = "cancelled"
        w.finished_at = now
        w.queue_position = None
        w.expected_start = None
        w.expected_start_basis = None
        said = f"cancelled by {by}" if was == "pending" else f"stopped by {by}"
        # When the pool itself is already ending it (a preemption's notice is over, or its team's maximum
        # session length is reached) the server's stop is what brought it here: its user keeps reading
        # the pool's reason, which the preemption completes once it sees the server gone
        # (preemption.finish_session). A stop during the notice is its user's own.
        if w.preempt_at is None or w.preempt_at > now or was == "pending":
            w.reason = said
        events.record(db, "cancelled", said, w, details={"was": was, "by": by}, at=now)
        return actions

    # ------------------------------------------------------------ resize

    def resize(self, db: Session, w: WorkloadRow, gpus, by: str, now: float | None = None) -> JobActions:
        """Set an elastic job's size. Shrinking happens at once; growing waits for the scheduler."""
        now = time.time() if now is None else now
        actions = JobActions()
        if w.state in FINISHED_STATES:
            raise conflict(f"cannot resize {w.id}: it has already {'been cancelled' if w.state == 'cancelled' else w.state}")
        if w.kind != "job" or w.min_gpus is None or w.max_gpus is None:
            raise conflict(f"{w.id} is not elastic: only jobs submitted with min_gpus and max_gpus can be resized")
        if not _whole(gpus):
            raise bad_request(f"gpus must be a whole number of GPUs between {w.min_gpus} and {w.max_gpus}")
        gpus = int(gpus)
        if not (w.min_gpus <= gpus <= w.max_gpus):
            raise bad_request(f"{w.id} can run on {w.min_gpus} to {w.max_gpus} GPUs; {gpus} is outside that range")
        before_target = w.gpus
        w.gpus = float(gpus)
        # The core grows elastic jobs up to their maximum: the user's size caps that.
        w.gpus_cap = gpus
        held = w.allocated_gpus
        if w.state == "running" and gpus < held - EPSILON:
            keep = list(w.shares)[:gpus]
            stop_process(w, actions)  # while the shares still say which GPUs the process is on
            attained.settle(w, now, sum(s.fraction for s in keep))
            w.shares[:] = keep
            actions.start.append(w.seq)
            events.record(
                db, "resized", f"{held:g} -> {gpus} GPUs, asked by {by}", w, details={"from": held, "to": gpus, "by": by}, at=now
            )
        elif gpus != before_target:
            events.record(
                db, "resize-requested", f"asked for {gpus} GPUs (holds {held:g}); grows when GPUs are free", w,
                details={"from": held, "to": gpus, "by": by}, at=now,
            )
        return actions

    # ------------------------------------------------------------ admin actions

    def preempt(self, db: Session, w: WorkloadRow, by: str, now: float | None = None, notice=None) -> JobActions:
        """An admin takes a running workload's GPUs back, as a scheduler preemption does.

        With ``notice`` (the service's ``Preemption``) it gets the same notice: a job SIGTERM and
        its team's grace, then back to the queue; a session's server is stopped. It keeps its
        GPUs until its process or server is gone, so no card is used twice."""
        now = time.time() if now is None else now
        actions = JobActions()
        if w.state != "running":
            raise conflict(f"only a running workload can be preempted; {w.id} is {w.state}")
        if w.preempt_at is not None:
            raise conflict(f"{w.id} is already being preempted; it lets go of its GPUs by its notice's end")
        held = w.allocated_gpus
        if notice is not None:
            reason = f"preempted by admin {by}; {_gpus_text(held)} back to the pool"
            at = notice.notice(db, w, reason, None, now)
            if w.kind == "job" and w.runner_handle:
                actions.notices.append((w.seq, w.runner_handle, at, reason, {s.gpu_uuid for s in w.shares}))
            return actions
        release(w, actions, now)
        w.state = "pending"
        w.preemptions += 1
        w.started_at = None
        w.over_quota = False
        w.reason = f"preempted and back in the queue: by admin {by}"
        events.record(
            db, "preempted", f"preempted by admin {by}; {_gpus_text(held)} back to the pool", w,
            details={"by": by, "gpus": held}, at=now,
        )
        return actions

    def set_priority(self, db: Session, w: WorkloadRow, priority, by: str, now: float | None = None) -> None:
        """An admin changes where a workload stands among its team's work (higher goes first)."""
        now = time.time() if now is None else now
        if w.state in FINISHED_STATES:
            raise conflict(f"{w.id} has already {'been cancelled' if w.state == 'cancelled' else w.state}; its priority no longer matters")
        if not _whole(priority) or abs(priority) > self.max_priority:
            raise bad_request(f"priority must be a whole number between -{self.max_priority} and {self.max_priority}")
        before, w.priority = w.priority, int(priority)
        if before != w.priority:
            events.record(
                db, "priority-changed", f"priority {before} -> {w.priority}, set by admin {by}", w,
                details={"from": before, "to": w.priority, "by": by}, at=now,
            )


def format_id(seq: int) -> str:
    return f"w-{seq}"


def get_workload(db: Session, workload_id: str) -> WorkloadRow:
    seq = parse_workload_id(workload_id)
    w = db.get(WorkloadRow, seq, options=[selectinload(WorkloadRow.shares)]) if seq is not None else None
    if w is None:
        raise not_found(f"no workload {workload_id!r}")
    return w

