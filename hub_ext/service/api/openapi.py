"""``api/openapi.json``: the OpenAPI 3.1 document of this API.

Built here, beside the handlers, from small schema pieces. Every operation
names the scope it needs (``x-gpupool-scope``: use | admin | agent | owner)
so the tests can walk the document and prove that every endpoint refuses
callers without it: a new endpoint cannot escape the check.
"""

from __future__ import annotations

import copy
import functools
import re

from ...states import GPU_STATES, WORKLOAD_KINDS, WORKLOAD_STATES
from .base import APIHandler

NULLABLE_STR = {"type": ["string", "null"]}
NULLABLE_INT = {"type": ["integer", "null"]}
NULLABLE_NUM = {"type": ["number", "null"]}
TIME = {"type": ["string", "null"], "format": "date-time"}

SCHEMAS = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {"error": {"type": "string", "description": "What went wrong, for a person to read."}},
    },
    "Share": {
        "type": "object",
        "required": ["node", "gpu_uuid", "index", "fraction"],
        "properties": {
            "node": {"type": "string"},
            "gpu_uuid": {"type": "string"},
            "index": {"type": "integer"},
            "fraction": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "memory_mib": NULLABLE_INT,
        },
    },
    "Allocation": {
        "type": ["object", "null"],
        "required": ["gpus", "shares"],
        "properties": {"gpus": {"type": "number"}, "shares": {"type": "array", "items": {"$ref": "#/components/schemas/Share"}}},
    },
    "Workload": {
        "type": "object",
        "required": ["id", "user", "team", "kind", "state", "gpus", "submitted_at", "preemptions", "attained_gpu_s"],
        "properties": {
            "id": {"type": "string", "pattern": "^w-[0-9]+$"},
            "name": NULLABLE_STR,
            "user": {"type": "string"},
            "team": {"type": "string"},
            "kind": {"enum": list(WORKLOAD_KINDS)},
            "state": {"enum": list(WORKLOAD_STATES)},
            "gpus": {"type": "number", "exclusiveMinimum": 0},
            "min_gpus": NULLABLE_INT,
            "max_gpus": NULLABLE_INT,
            "gpu_model": NULLABLE_STR,
            "min_gpu_memory_mib": NULLABLE_INT,
            "gpu_memory_mib": NULLABLE_INT,
            "priority": {"type": "integer"},
            "preemptible": {"type": "boolean"},
            "command": {"type": ["array", "null"], "items": {"type": "string"}},
            "allocation": {"$ref": "#/components/schemas/Allocation"},
            "queue_position": NULLABLE_INT,
            "reason": NULLABLE_STR,
            "expected_start": TIME,
            "expected_start_basis": {**NULLABLE_STR, "description": "An estimate's basis, or why no start time is known."},
            "time_limit_s": {**NULLABLE_NUM, "description": "Seconds the job may run; the pool stops it then."},
            "over_quota": {"type": "boolean"},
            "submitted_at": {"type": "string", "format": "date-time"},
            "started_at": TIME,
            "finished_at": TIME,
            "exit_code": NULLABLE_INT,
            "preemptions": {"type": "integer", "minimum": 0},
            "attained_gpu_s": {
                "type": "number", "minimum": 0,
                "description": "GPU-seconds held so far over all its runs (attained service: a fraction counts its fraction, "
                               "a resize the old size until then); least attained service orders a team's work by it.",
            },
            "idle_seconds": NULLABLE_NUM,
            "preempt_at": {**TIME, "description": "preempted with notice: when it loses its GPUs (it runs until then); null otherwise"},
        },
    },
    "QueueEntry": {
        "type": "object",
        "description": "A pending workload; details of other users' workloads are left out.",
        "required": ["id", "user", "team", "kind", "gpus", "state", "queue_position", "reason"],
        "properties": {
            "id": {"type": "string"},
            "user": {"type": "string"},
            "team": {"type": "string"},
            "kind": {"enum": list(WORKLOAD_KINDS)},
            "gpus": {"type": "number"},
            "state": {"const": "pending"},
            "queue_position": NULLABLE_INT,
            "reason": NULLABLE_STR,
            "expected_start": TIME,
        },
    },
    "Submission": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "maxLength": 200},
            "kind": {"enum": list(WORKLOAD_KINDS), "description": "Default: job when a command is given, else session."},
            "gpus": {"type": "number", "exclusiveMinimum": 0, "maximum": 1024, "description": "Whole GPUs, or a fraction of one GPU (0.1 to 1)."},
            "min_gpus": {"type": "integer", "minimum": 1, "maximum": 1024, "description": "Elastic jobs: the fewest GPUs it can run on."},
            "max_gpus": {"type": "integer", "minimum": 1, "maximum": 1024, "description": "Elastic jobs: the most GPUs it can use."},
            "gpu_model": {"type": "string", "minLength": 1, "maxLength": 255},
            "min_gpu_memory_mib": {"type": "integer", "minimum": 1, "maximum": 16777216},
            "gpu_memory_mib": {"type": "integer", "minimum": 1, "maximum": 16777216, "description": "For a fraction: its memory share."},
            "priority": {"type": "integer", "minimum": -1000, "maximum": 1000, "description": "Between -WorkloadRules.max_priority and max_priority (default 1000)."},
            "preemptible": {"type": "boolean"},
            "command": {"oneOf": [{"type": "array", "items": {"type": "string"}, "maxItems": 4096}, {"type": "string", "maxLength": 65536}],
                        "description": "At most 64 KiB and 4,096 words (InputLimits); no NUL characters."},
            "env": {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 256,
                    "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]*$"}, "description": "At most 256 variables, 64 KiB."},
            "workdir": {"type": "string", "minLength": 1, "maxLength": 4096},
            "team": {"type": "string", "minLength": 1, "maxLength": 255, "description": "Needed when the user is in several teams."},
            "user": {"type": "string", "minLength": 1, "maxLength": 255, "description": "Admins only: submit on behalf of this user."},
            "idempotency_key": {"type": "string", "minLength": 1, "maxLength": 255,
                                "description": "As the Idempotency-Key header: a retry with the same key returns the first workload."},
            "time_limit_s": {
                "type": "number", "exclusiveMinimum": 0, "maximum": 365 * 86400,
                "description": "Jobs: seconds the job may run (at most the team's maximum); stopped and failed past it.",
            },
        },
    },
    "Holder": {
        "type": "object",
        "required": ["workload_id", "user", "team", "fraction"],
        "properties": {
            "workload_id": {"type": "string"},
            "user": {"type": "string"},
            "team": {"type": "string"},
            "kind": {"enum": list(WORKLOAD_KINDS)},
            "fraction": {"type": "number"},
        },
    },
    "Gpu": {
        "type": "object",
        "required": ["node", "index", "uuid", "model", "memory_mib", "simulated", "state", "used_fraction", "holders"],
        "properties": {
            "node": {"type": "string"},
            "index": {"type": "integer"},
            "uuid": {"type": "string"},
            "model": {"type": "string"},
            "memory_mib": {"type": "integer"},
            "simulated": {"type": "boolean", "description": "True for a declared GPU with no hardware behind it."},
            "state": {"enum": list(GPU_STATES)},
            "used_fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "holders": {"type": "array", "items": {"$ref": "#/components/schemas/Holder"}},
            "utilization": NULLABLE_NUM,
            "memory_used_mib": NULLABLE_INT,
            "idle_seconds": NULLABLE_NUM,
            "reading_at": TIME,
        },
    },
    "Node": {
        "type": "object",
        "required": ["name", "simulated", "schedulable", "gpus"],
        "properties": {
            "name": {"type": "string"},
            "simulated": {"type": "boolean"},
            "schedulable": {"type": "boolean"},
            "source": {"enum": ["declared", "nvml", "agent"]},
            "last_reading_at": TIME,
            "agent_errors": {"type": ["array", "null"], "items": {"type": "string"}, "description": "NVML errors with the last readings"},
            "gpus": {"type": "array", "items": {"$ref": "#/components/schemas/Gpu"}},
        },
    },
    "Pool": {
        "type": "object",
        "required": ["nodes", "totals", "simulated"],
        "properties": {
            "nodes": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            "totals": {
                "type": "object",
                "required": ["gpus", "free", "used", "idle"],
                "properties": {"gpus": {"type": "integer"}, "free": {"type": "number"}, "used": {"type": "number"}, "idle": {"type": "integer"}},
            },
            "simulated": {"type": "boolean", "description": "True if any node of the pool is simulated."},
        },
    },
    "Team": {
        "type": "object",
        "required": ["name", "quota", "over_quota_weight", "limit", "usage", "borrowed"],
        "properties": {
            "name": {"type": "string"},
            "quota": {"type": "number", "minimum": 0},
            "over_quota_weight": {"type": "number", "minimum": 0},
            "limit": NULLABLE_NUM,
            "usage": {"type": "number", "minimum": 0},
            "borrowed": {"type": "number", "minimum": 0},
            "pending": {"type": "integer"},
            "updated_at": TIME,
            "decayed_usage": {**NULLABLE_NUM, "description": "GPUs in use on average over the recent past (exponential decay with UsageDecay.half_life_seconds); null before the first record"},
            "default_time_limit_s": {**NULLABLE_NUM, "description": "Time limit of its jobs that declare none (TimeLimits)."},
            "max_time_limit_s": {**NULLABLE_NUM, "description": "Longest time limit its jobs may declare (TimeLimits)."},
            "max_session_s": {**NULLABLE_NUM, "description": "Longest its sessions may run (TimeLimits); null: no maximum."},
        },
    },
    "TeamChange": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "quota": {"type": "number", "minimum": 0, "maximum": 100000},
            "over_quota_weight": {"type": "number", "minimum": 0, "maximum": 1000},
            "limit": {"type": ["number", "null"], "minimum": 0, "maximum": 100000},
        },
    },
    "Event": {
        "type": "object",
        "required": ["id", "at", "kind", "message"],
        "properties": {
            "id": {"type": "integer"},
            "at": {"type": "string", "format": "date-time"},
            "kind": {"type": "string"},
            "workload_id": NULLABLE_STR,
            "user": NULLABLE_STR,
            "team": NULLABLE_STR,
            "message": {"type": "string"},
            "details": {"type": ["object", "null"]},
        },
    },
    "UsageReportRow": {
        "type": "object",
        "required": ["team", "period_start", "period_end", "gpu_hours_held", "gpu_hours_busy"],
        "properties": {
            "team": {"type": "string"},
            "period_start": TIME,
            "period_end": TIME,
            "gpu_hours_held": {"type": "number", "description": "GPU-hours allocated to the team's workloads"},
            "gpu_hours_busy": {"type": "number", "description": "measured: held GPU-hours x utilisation, from the agents' readings"},
            "busy_percent_of_held": NULLABLE_NUM,
            "gpu_hours_measured": {"type": "number", "description": "held GPU-hours the agents reported readings for"},
            "reclaims": {"type": "integer"},
            "preemptions": {"type": "integer"},
            "starts": {"type": "integer"},
            "mean_wait_minutes": NULLABLE_NUM,
            "max_wait_minutes": NULLABLE_NUM,
        },
    },
    "Readings": {
        "type": "object",
        "required": ["gpus"],
        "properties": {
            "simulated": {"type": "boolean"},
            "errors": {"type": "array", "items": {"type": "string"}, "description": "what the agent could not read (NVML errors): shown as node health"},
            "gpus": {
                "type": "array",
                "maxItems": 64,
                "items": {
                    "type": "object",
                    "required": ["uuid", "index"],
                    "properties": {
                        "uuid": {"type": "string", "minLength": 1, "maxLength": 255},
                        "index": {"type": "integer", "minimum": 0, "maximum": 1023},
                        "model": {"type": "string"},
                        "memory_total_mib": {"type": ["number", "null"], "minimum": 0, "maximum": 16777216},
                        "memory_used_mib": {"type": ["number", "null"], "minimum": 0, "maximum": 16777216},
                        "utilization": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
                        "processes": {"type": "array", "items": {"type": "object"}},
                    },
                },
            },
        },
    },
}


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict, description: str) -> dict:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERROR = _ref("Error")


def _op(summary: str, scope: str, ok: dict, *, ok_status: str = "200", body: dict | None = None, params=None, errors=("400",)) -> dict:
    responses = {ok_status: ok, "401": _json(ERROR, "no valid token or session"), "403": _json(ERROR, "the token lacks the scope")}
    for status in errors:
        responses[status] = _json(ERROR, {"400": "bad input", "404": "no such thing (or not yours)", "409": "conflicts with its state"}[status])
    op = {"summary": summary, "x-gpupool-scope": scope, "responses": responses}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        # Every body: strict JSON (no NaN/Infinity), nested at most 32 deep, no NUL (InputLimits).
        responses.setdefault("400", _json(ERROR, "bad input"))
        responses["413"] = _json(ERROR, "the body is larger than InputLimits.max_body_bytes (1 MiB)")
    if params:
        op["parameters"] = params
    return op


def _created_too(op: dict) -> dict:
    op["responses"]["201"] = _json(_ref("Team"), "the team, newly created")
    return op


def _idempotent(op: dict) -> dict:
    """Submissions take an idempotency key; a retry with it answers 200 with the first workload."""
    op["parameters"] = op.get("parameters", []) + [{
        "name": "Idempotency-Key", "in": "header", "required": False,
        "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x21-\\x7e]+$"},
        "description": "Any unique text per submission (e.g. a UUID); a retry with the same key returns the first "
                       "workload (200) instead of submitting again; the same key with a different submission: 409.",
    }]
    op["responses"]["200"] = op["responses"]["201"] | {"description": "a retry: the workload this key submitted before"}
    return op


def _path_param(name: str, example: str) -> dict:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "example": example}


def _query(name: str, schema: dict, description: str) -> dict:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


WID = _path_param("workload_id", "w-1")


def build_document(server_url: str = "/services/gpupool/") -> dict:
    workload = _ref("Workload")
    paths = {
        "/api/me": {"get": _op("Who am I: user, teams, admin", "use", _json({
            "type": "object", "required": ["user", "teams", "admin"],
            "properties": {"user": {"type": "string"}, "kind": {"type": "string"}, "teams": {"type": "array", "items": {"type": "string"}}, "admin": {"type": "boolean"}},
        }, "the caller"), errors=())},
        "/api/pool": {"get": _op("Nodes and per-GPU state", "use", _json(_ref("Pool"), "the pool"), errors=())},
        "/api/workloads": {
            "get": _op("My workloads (all for admins)", "use", _json({
                "type": "object", "required": ["workloads"], "properties": {"workloads": {"type": "array", "items": workload}},
            }, "workloads"), params=[
                _query("user", {"type": "string"}, "admins: only this user's workloads"),
                _query("state", {"enum": list(WORKLOAD_STATES)}, "only this state"),
            ]),
            "post": _idempotent(_op("Submit a workload", "use", _json(workload, "the new workload, after one scheduling cycle"), ok_status="201",
                                    body=_ref("Submission"), errors=("400", "409"))),
        },
        "/api/workloads/{workload_id}": {
            "get": _op("One workload", "owner", _json(workload, "the workload"), params=[WID], errors=("404",)),
            "delete": _op("Cancel (pending) or stop (running); releases its GPUs", "owner", _json(workload, "the cancelled workload"), params=[WID], errors=("404", "409")),
            "patch": _op("Change a workload's priority (admins); recorded as a priority-changed event", "admin", _json(workload, "the workload"), params=[WID], errors=("400", "404", "409"),
                         body={"type": "object", "required": ["priority"], "additionalProperties": False, "properties": {"priority": {"type": "integer"}}}),
        },
        "/api/workloads/{workload_id}/restart": {
            "post": _op("Restart a notebook session's server with another number of GPUs (files kept)", "owner", _json({
                "type": "object", "required": ["workload", "restarting"],
                "properties": {"workload": workload, "restarting": {"type": "boolean"}, "gpus": {"type": "number"}},
            }, "the session, as it was; the hub stops and starts its server"), ok_status="202", params=[WID], errors=("400", "404", "409"),
                        body={"type": "object", "required": ["gpus"], "additionalProperties": False, "properties": {"gpus": {"type": "number", "minimum": 0}}}),
        },
        "/api/workloads/{workload_id}/preempt": {
            "post": _op("Preempt a running workload back into the queue (admins); recorded as a preempted event", "admin", _json(workload, "the workload, pending again"), params=[WID], errors=("404", "409")),
        },
        "/api/workloads/{workload_id}/resize": {
            "post": _op("Resize an elastic job", "owner", _json(workload, "the workload"), params=[WID], errors=("400", "404", "409"),
                        body={"type": "object", "required": ["gpus"], "additionalProperties": False, "properties": {"gpus": {"type": "integer", "minimum": 1}}}),
        },
        "/api/workloads/{workload_id}/logs": {
            "get": _op("A batch job's output from a byte offset", "owner", _json({
                "type": "object", "required": ["text", "offset"], "properties": {"text": {"type": "string"}, "offset": {"type": "integer"}},
            }, "log text and the offset to read from next"), params=[WID, _query("offset", {"type": "integer", "minimum": 0, "maximum": 2**53}, "byte offset")], errors=("400", "404", "409")),
        },
        "/api/queue": {"get": _op("Pending workloads in start order", "use", _json({
            "type": "object", "required": ["queue", "length"],
            "properties": {"queue": {"type": "array", "items": _ref("QueueEntry")}, "length": {"type": "integer"}},
        }, "the queue"), errors=())},
        "/api/teams": {"get": _op("Teams with quota, weight, limit, usage", "use", _json({
            "type": "object", "required": ["teams"], "properties": {"teams": {"type": "array", "items": _ref("Team")}},
        }, "teams"), errors=())},
        "/api/teams/{team}": {
            "get": _op("One team", "use", _json(_ref("Team"), "the team"), params=[_path_param("team", "vision")], errors=("404",)),
            "put": _created_too(_op("Create or replace a team (admins)", "admin", _json(_ref("Team"), "the team"), body=_ref("TeamChange"), params=[_path_param("team", "vision")])),
            "patch": _created_too(_op("Change a team's quota, weight or limit; creates it given a quota (admins)", "admin", _json(_ref("Team"), "the team"), body=_ref("TeamChange"), params=[_path_param("team", "vision")])),
        },
        "/api/events": {"get": _op("Event log (own workloads; all for admins)", "use", _json({
            "type": "object", "required": ["events", "last_id"],
            "properties": {"events": {"type": "array", "items": _ref("Event")}, "last_id": {"type": "integer"},
                           "next_before": {"type": ["integer", "null"], "description": "order=desc: `before` of the next older page; null at the first event"}},
        }, "events after `since`"), params=[
            _query("since", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "only events with a larger id"),
            _query("workload", {"type": "string"}, "only this workload's events"),
            _query("limit", {"type": "integer", "minimum": 1, "maximum": 1000}, "at most this many"),
            _query("before", {"type": "integer", "minimum": 0, "maximum": 2**31 - 1}, "only events with a smaller id (paging backwards)"),
            _query("order", {"enum": ["asc", "desc"]}, "asc: oldest first (default); desc: newest first"),
            _query("kind", {"type": "string"}, "only events of this kind"),
            _query("user", {"type": "string"}, "only events of this user"),
            _query("team", {"type": "string"}, "only events of this team"),
            _query("q", {"type": "string", "maxLength": 200}, "text search in message, kind, user and team"),
        ])},
        "/api/history": {"get": _op("GPUs in use per team over time, from the event log (admins: every team; others: their own teams)", "use", _json({
            "type": "object", "required": ["window", "start", "end", "bucket_seconds", "times", "teams"],
            "properties": {
                "window": {"enum": ["day", "40d"]}, "start": TIME, "end": TIME, "bucket_seconds": {"type": "number"},
                "times": {"type": "array", "items": TIME, "description": "start of each bucket"},
                "teams": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}},
                          "description": "team -> average GPUs held in each bucket"},
                "now": {"type": "object", "additionalProperties": {"type": "number"}, "description": "team -> GPUs held now"},
                "busy": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "number"}},
                         "description": "team -> average GPUs busy in each bucket, measured by the node agents (held x utilisation)"},
            },
        }, "usage per team"), params=[_query("window", {"enum": ["day", "40d"]}, "last day (15-minute buckets) or last 40 days (daily)")])},
        "/api/report": {"get": _op("Usage report per team and period: GPU-hours held and busy, reclaims, waits (admins)", "admin", {
            "description": "one row per team",
            "content": {
                "application/json": {"schema": {"type": "object", "required": ["teams"], "properties": {"teams": {"type": "array", "items": _ref("UsageReportRow")}}}},
                "text/csv": {"schema": {"type": "string", "description": "the same rows as CSV, with a header line"}},
            },
        }, params=[
            _query("start", {"type": "string"}, "first day or time (UTC unless it says otherwise); default: 7 days before end"),
            _query("end", {"type": "string"}, "end of the period (excluded); default: now"),
            _query("format", {"enum": ["json", "csv"]}, "json (default) or csv (a download)"),
        ])},
        "/api/nodes/{node}/readings": {
            "post": _op("Report per-GPU readings of a node (agents)", "agent", _json({
                "type": "object", "required": ["node", "accepted"],
                "properties": {"node": {"type": "string"}, "accepted": {"type": "integer"}, "unknown_gpus": {"type": "array", "items": {"type": "string"}}},
            }, "readings stored"), body=_ref("Readings"), params=[_path_param("node", "dgx1-a")], errors=("400", "404")),
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "jupyterhub-gpupool pool service",
            "version": "1",
            "description": "The GPU pool: nodes and GPUs, teams and quotas, workloads and the queue. See docs/api.md.",
        },
        "servers": [{"url": server_url}],
        "components": {
            "schemas": copy.deepcopy(SCHEMAS),
            "securitySchemes": {"hubToken": {"type": "apiKey", "in": "header", "name": "Authorization", "description": "token <JupyterHub API token>"}},
        },
        "security": [{"hubToken": []}],
        "paths": paths,
    }


@functools.lru_cache(maxsize=8)
def _query_parameters_by_operation(server_url: str) -> list[tuple[re.Pattern, str, frozenset[str]]]:
    out = []
    for template, item in build_document(server_url)["paths"].items():
        pattern = re.compile("^" + re.escape(server_url.rstrip("/")) + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")
        for method, op in item.items():
            names = frozenset(p["name"] for p in op.get("parameters", []) if p.get("in") == "query")
            out.append((pattern, method.upper(), names))
    return out


def query_parameters(server_url: str, path: str, method: str) -> frozenset[str] | None:
    """The query arguments the document lists for this request's operation; None if it is not one."""
    for pattern, op_method, names in _query_parameters_by_operation(server_url):
        if op_method == method and pattern.match(path):
            return names
    return None


class OpenAPIHandler(APIHandler):
    """Served without authentication: it describes the API, it reveals nothing of the pool."""

    scopes = {"GET": "public"}

    async def prepare(self):
        if self.request.method != "GET":
            await super().prepare()

    async def get(self):
        self.write_json(build_document(self.settings.get("service_prefix", "/services/gpupool/")))


handlers = [(r"api/openapi.json", OpenAPIHandler)]
