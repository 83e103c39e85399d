"""``api/workloads``: list, submit, get, cancel, resize workloads, read a job's log; admins preempt and reprioritise."""

from __future__ import annotations

import asyncio
import os
import re
import time

from ..errors import ApiError, bad_request, forbidden
from ..limits import MAX_INTEGER, query_int, query_text
from ..runners.local import read_log
from ..views import STATES, gpu_index, load_workloads
from ..store import TeamRow
from ..sessions import check_restart, start_restart
from ..workloads import get_workload
from .base import APIHandler
from .me import known_teams


class WorkloadsHandler(APIHandler):
    scopes = {"GET": "use", "POST": "use"}

    async def get(self):
        user = query_text(self, "user") or None
        state = query_text(self, "state")
        if state is not None and state not in STATES:
            raise bad_request(f"state must be one of: {', '.join(STATES)}")
        if not self.me.admin:
            if user is not None and user != self.me.name:
                raise forbidden("you may only list your own workloads")
            user = self.me.name
        now = time.time()
        with self.pool.store.read() as db:
            rows = load_workloads(db, user=user, state=state)
            gpus = gpu_index(db) if any(w.state == "running" for w in rows) else {}
            idle = self.pool.reclaim.workload_idle_seconds
            views = [self.workload_view(w, idle(w, gpus, now)) for w in rows]
        self.write_json({"workloads": views})

    async def post(self):
        rules = self.pool.rules
        # Parsing and checking are linear and bounded (InputLimits), and done off the event loop
        # so that the largest accepted body never holds up other requests.
        spec = await asyncio.get_running_loop().run_in_executor(None, lambda: rules.check_shape(self.json_body()))
        key = self._idempotency_key(spec)
        user = spec.pop("user", None) or self.me.name
        if user != self.me.name and not self.me.admin:
            raise forbidden("only gpupool admins may submit on behalf of another user")
        if self.me.kind != "user" and user == self.me.name:
            raise bad_request("a service submitting to the pool must say for which user (\"user\")")
        if user == self.me.name:
            groups = list(self.me.groups)
        else:
            groups = await self.pool.auth.groups_of(user)
            if groups is None:
                raise bad_request(f"the hub has no user {user!r}")
        member_of = self.pool.teams.teams_of(user, groups, known_teams(self.pool))
        digest = rules.digest(spec, user)
        with self.pool.store.write() as db:
            earlier = rules.submitted_before(db, user, key, digest)
            if earlier is not None:
                # A retry of a submission that was stored: the same workload, not a second one.
                self.set_header("Idempotent-Replayed", "true")
                self.write_json(self.workload_view(earlier), status=200)
                return
            team = rules.choose_team(db, spec, user, member_of, caller_is_admin=self.me.admin)
            runner = self.pool.jobs.runner
            rules.check_fits(db, spec, team, job_nodes=(runner.max_nodes, runner.description))
            spec["time_limit_s"] = self.pool.time_limits.limit_for(spec, team.name)
            w = rules.create(db, spec, user, team)
            rules.remember_key(db, w, key, digest)
            seq = w.seq
        await self.pool.loop.cycle()
        with self.pool.store.read() as db:
            w = get_workload(db, f"w-{seq}")
            self.write_json(self.workload_view(w), status=201)


    def _idempotency_key(self, spec: dict) -> str | None:
        """The submission's idempotency key: the ``Idempotency-Key`` header or the body's ``idempotency_key``."""
        header = self.request.headers.get_list("Idempotency-Key")
        body_key = spec.pop("idempotency_key", None)
        if len(header) > 1:
            raise bad_request("send one Idempotency-Key header")
        key = header[0].strip() if header else None
        if key is not None and not re.fullmatch(r"[\x21-\x7e]{1,255}", key):
            raise bad_request("the Idempotency-Key header must be 1-255 printable ASCII characters without spaces (e.g. a UUID)")
        if key and body_key and key != body_key:
            raise bad_request("the Idempotency-Key header and the body's idempotency_key differ; send one of them")
        return key or body_key


class WorkloadHandler(APIHandler):
    scopes = {"GET": "use", "DELETE": "use", "PATCH": "admin"}

    async def get(self, workload_id):
        with self.pool.store.read() as db:
            w = get_workload(db, workload_id)
            self.check_owner(w)
            self.write_json(self.workload_view(w, self.pool.reclaim.workload_idle_seconds(w, gpu_index(db), time.time())))

    async def delete(self, workload_id):
        with self.pool.store.write() as db:
            w = get_workload(db, workload_id)
            self.check_owner(w)
            actions = self.pool.rules.cancel(db, w, by=self.me.name)
            seq = w.seq
        await self.pool.loop.cycle(actions)
        with self.pool.store.read() as db:
            self.write_json(self.workload_view(get_workload(db, f"w-{seq}")))

    async def patch(self, workload_id):
        body = self.json_object()
        unknown = sorted(set(body) - {"priority"})
        if unknown or "priority" not in body:
            raise bad_request("admins may change one field here: {\"priority\": N}")
        with self.pool.store.write() as db:
            w = get_workload(db, workload_id)
            self.pool.rules.set_priority(db, w, body["priority"], by=self.me.name)
            seq = w.seq
        await self.pool.loop.cycle()
        with self.pool.store.read() as db:
            self.write_json(self.workload_view(get_workload(db, f"w-{seq}")))


class PreemptHandler(APIHandler):
    scopes = {"POST": "admin"}

    async def post(self, workload_id):
        with self.pool.store.write() as db:
            w = get_workload(db, workload_id)
            actions = self.pool.rules.preempt(db, w, by=self.me.name, notice=self.pool.loop.preemption_rules)
            seq = w.seq
        await self.pool.loop.cycle(actions)
        with self.pool.store.read() as db:
            self.write_json(self.workload_view(get_workload(db, f"w-{seq}")))


class RestartHandler(APIHandler):
    """A session's server, stopped and started again with another number of GPUs (files kept)."""

    scopes = {"POST": "use"}

    async def post(self, workload_id):
        body = self.json_object()
        unknown = sorted(set(body) - {"gpus"})
        if unknown or "gpus" not in body:
            raise bad_request("a restart takes one field: {\"gpus\": N}")
        with self.pool.store.write() as db:
            w = get_workload(db, workload_id)
            self.check_owner(w)
            option, server = check_restart(db, w, body["gpus"], by=self.me.name)
            team_row = db.get(TeamRow, w.team)
            if team_row is not None and body["gpus"] > 0:
                self.pool.rules.check_fits(db, {"gpus": body["gpus"], "gpu_model": w.gpu_model}, team_row)
            user, team, view = w.user, w.team, self.workload_view(w)
        start_restart(self.pool, user, server, {"gpus": option, "team": team})
        self.write_json({"workload": view, "restarting": True, "gpus": body["gpus"]}, status=202)


class ResizeHandler(APIHandler):
    scopes = {"POST": "use"}

    async def post(self, workload_id):
        body = self.json_object()
        unknown = sorted(set(body) - {"gpus"})
        if unknown or "gpus" not in body:
            raise bad_request("a resize takes one field: {\"gpus\": N}")
        with self.pool.store.write() as db:
            w = get_workload(db, workload_id)
            self.check_owner(w)
            actions = self.pool.rules.resize(db, w, body["gpus"], by=self.me.name)
            seq = w.seq
        await self.pool.loop.cycle(actions)
        with self.pool.store.read() as db:
            self.write_json(self.workload_view(get_workload(db, f"w-{seq}")))


class LogsHandler(APIHandler):
    scopes = {"GET": "use"}

    async def get(self, workload_id):
        offset = query_int(self, "offset", 0, 0, MAX_INTEGER)
        with self.pool.store.read() as db:
            w = get_workload(db, workload_id)
            self.check_owner(w)
            if w.kind != "job":
                raise ApiError(409, f"{w.id} is a session; only batch jobs have logs here (see the session's own terminal)")
            log_path, handle = w.log_path, w.runner_handle
        if log_path and os.path.exists(log_path):
            text = read_log(log_path, offset)
        elif handle:
            text = await self.pool.jobs.runner.logs(handle, offset)
        else:
            text = ""
        self.write_json({"text": text, "offset": offset + len(text.encode())})


handlers = [
    (r"api/workloads", WorkloadsHandler),
    (r"api/workloads/([^/]+)", WorkloadHandler),
    (r"api/workloads/([^/]+)/resize", ResizeHandler),
    (r"api/workloads/([^/]+)/preempt", PreemptHandler),
    (r"api/workloads/([^/]+)/restart", RestartHandler),
    (r"api/workloads/([^/]+)/logs", LogsHandler),
]
