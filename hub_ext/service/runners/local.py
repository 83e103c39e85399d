"""Batch jobs as local processes on the machine the service runs on (the embedded default).

Each attempt of a job gets a folder under ``jobs_dir`` holding its pid and,
once it ends, its exit code (written by ``local_wrapper``). The handle the
service stores names that folder, so a restarted service finds its jobs
again, and a job survives the service being killed: processes are started in
their own session, not as part of the service's process group.

The job sees its GPUs through ``CUDA_VISIBLE_DEVICES`` and the ``GPUPOOL_*``
variables (docs/service.md); its output goes to one log file per job.
Stopping sends SIGTERM, waits ``grace_seconds`` for a checkpoint, then kills
the job's whole process group.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time

from traitlets import Bool, Enum, Unicode
from traitlets.config import LoggingConfigurable

from ...gpus.mps import daemon_running, mps_env
from .base import JobLaunch, JobStatus, Runner

# The service's own token must not leak into users' jobs.
_SCRUBBED_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN", "JUPYTERHUB_CLIENT_ID", "JUPYTERHUB_OAUTH_CALLBACK_URL")


NOTICE_FILE = "preempt-notice.json"


def _proc_start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks: tells a live job from a recycled pid."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def _alive(pid: int, start_ticks: int | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        if state == "Z":
            return False
    except OSError:
        pass
    if start_ticks is not None:
        return _proc_start_ticks(pid) == start_ticks
    return True


class _ConfigurableRunnerMeta(type(LoggingConfigurable), type(Runner)):
    """Lets a runner be both a traitlets Configurable and a ``Runner`` (an ABC)."""


class LocalRunner(LoggingConfigurable, Runner, metaclass=_ConfigurableRunnerMeta):
    max_nodes = 1  # a process runs on this one machine
    description = "the local runner (processes on the service's machine; multi-node jobs need the Kubernetes runner)"
    jobs_dir = Unicode(
        "",
        help="Folder for the jobs' pid and exit-code files (default: <state_dir>/jobs).",
    ).tag(config=True)

    log_dir = Unicode(
        "",
        help="Folder for the jobs' log files, one per job (default: <state_dir>/logs).",
    ).tag(config=True)

    python = Unicode(
        sys.executable,
        help="Python that runs the small wrapper process around each job.",
    ).tag(config=True)

    run_as_user = Bool(
        True,
        help="""When the service runs as root and a job's user has a system account, run the job as
        that account (its uid, groups, HOME), in its home unless the job names a workdir. Otherwise
        (the demo, tests, users with no system account) jobs run as the service's own account.""",
    ).tag(config=True)

    mps = Enum(
        ["auto", "on", "off"],
        default_value="auto",
        help="""NVIDIA MPS limits for jobs on a fraction of a card (CUDA_MPS_ACTIVE_THREAD_PERCENTAGE,
        CUDA_MPS_PINNED_DEVICE_MEM_LIMIT, as sessions get them): "auto" where an MPS control daemon
        listens on this machine (its pipe directory has a "control" pipe), "on" always, "off" never.
        See docs/batch-jobs.md for starting the daemon.""",
    ).tag(config=True)

    mps_pipe_directory = Unicode(
        "",
        help="The MPS daemon's CUDA_MPS_PIPE_DIRECTORY, where not the default (/tmp/nvidia-mps or $CUDA_MPS_PIPE_DIRECTORY).",
    ).tag(config=True)

    def mps_active(self) -> bool:
        if self.mps == "auto":
            return daemon_running(self.mps_pipe_directory)
        return self.mps == "on"

    def __init__(self, state_dir: str = ".gpupool", **kwargs):
        super().__init__(**kwargs)
        self.jobs_dir = self.jobs_dir or os.path.join(state_dir, "jobs")
        self.log_dir = self.log_dir or os.path.join(state_dir, "logs")
        os.makedirs(self.jobs_dir, exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        self._procs: dict[int, asyncio.subprocess.Process] = {}

    def _account(self, user: str):
        """The job user's system account when jobs should run as it, else None."""
        if not self.run_as_user or os.geteuid() != 0:
            return None
        import pwd

        try:
            return pwd.getpwnam(user)
        except KeyError:
            return None

    def log_path_for(self, workload_id: str) -> str:
        return os.path.abspath(os.path.join(self.log_dir, f"{workload_id}.log"))

    # ------------------------------------------------------------ handles

    @staticmethod
    def _decode(handle: str) -> dict:
        return json.loads(handle)

    @staticmethod
    def _exit_code(folder: str) -> int | None:
        try:
            with open(os.path.join(folder, "exit")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    # ------------------------------------------------------------ Runner

    async def start(self, launch: JobLaunch) -> str:
        if not launch.command:
            raise RuntimeError("the job has no command to run")
        if len(launch.gpus_by_node) > 1:
            raise RuntimeError(
                "the local runner runs a job on this one machine; the allocation spans nodes "
                + ", ".join(launch.gpus_by_node)
            )
        folder = os.path.abspath(os.path.join(self.jobs_dir, launch.workload_id, str(time.time_ns())))
        os.makedirs(folder)
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED_ENV and not k.startswith("GPUPOOL_")}
        env.update(launch.env)
        indices = next(iter(launch.gpus_by_node.values()), ())
        env["CUDA_VISIBLE_DEVICES"] = ",".join(indices)
        if 0 < launch.gpu_count < 1 and self.mps_active():
            # The same MPS limits as a notebook server on a fraction (hub_ext/gpus/mps.py).
            memory = launch.env.get("GPUPOOL_GPU_MEMORY_MIB")
            env.update(mps_env(launch.gpu_count, int(memory) if memory else None, self.mps_pipe_directory))
        # Written when the job is preempted (notice): the time of its stop, for the script to read.
        env["GPUPOOL_PREEMPT_NOTICE_FILE"] = os.path.join(folder, NOTICE_FILE)
        account = self._account(launch.user)
        workdir = launch.workdir
        as_user: list[str] = []
        if account is not None:
            # The wrapper stays the service's (it writes the job's bookkeeping in the service's
            # folders); only the job itself becomes the user.
            as_user = ["--as-user", account.pw_name]
            env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)
            workdir = workdir or account.pw_dir
        log_path = launch.log_path or self.log_path_for(launch.workload_id)
        os.makedirs(os.path.dirname(log_path), exist_ok=True)
        with open(log_path, "ab") as log:
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            log.write(f"--- gpupool: {launch.workload_id} started {stamp} UTC on GPU(s) {env['CUDA_VISIBLE_DEVICES'] or '-'}\n".encode())
            log.flush()
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "hub_ext.service.runners.local_wrapper",
                os.path.join(folder, "exit"),
                *as_user,
                "--",
                *launch.command,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                cwd=workdir or None,
                env=env,
                start_new_session=True,
            )
        self._procs[proc.pid] = proc
        handle = {"dir": folder, "pid": proc.pid, "start": _proc_start_ticks(proc.pid), "log": log_path}
        if launch.env.get("GPUPOOL_GPU_UUIDS"):
            # Which cards the process uses, so a later stop (even after a restart) holds up only their next job.
            handle["gpu_uuids"] = launch.env["GPUPOOL_GPU_UUIDS"]
        with open(os.path.join(folder, "handle.json"), "w") as f:
            json.dump(handle, f)
        return json.dumps(handle, sort_keys=True)

    def notice(self, handle: str, preempt_at: float, reason: str) -> None:
        path = os.path.join(self._decode(handle)["dir"], NOTICE_FILE)
        with open(path + ".tmp", "w") as f:
            json.dump({"preempt_at": preempt_at, "seconds_left": max(0.0, preempt_at - time.time()), "reason": reason}, f)
        os.replace(path + ".tmp", path)  # the job never reads half a file

    async def status(self, handle: str) -> JobStatus:
        h = self._decode(handle)
        proc = self._procs.get(h["pid"])
        if proc is not None and proc.returncode is None:
            return JobStatus(handle=handle, running=True)
        if proc is None and _alive(h["pid"], h.get("start")):
            return JobStatus(handle=handle, running=False if self._exit_code(h["dir"]) is not None else True)
        code = self._exit_code(h["dir"])
        if code is None and proc is not None:
            code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return JobStatus(handle=handle, running=False, exit_code=code)

    async def wait(self, handle: str, poll_seconds: float = 1.0) -> JobStatus:
        h = self._decode(handle)
        proc = self._procs.get(h["pid"])
        if proc is not None:
            await proc.wait()
            self._procs.pop(h["pid"], None)
            code = self._exit_code(h["dir"])
            if code is None:
                code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
            return JobStatus(handle=handle, running=False, exit_code=code)
        return await super().wait(handle, poll_seconds)

    async def stop(self, handle: str, grace_seconds: float) -> None:
        h = self._decode(handle)
        pid, start = h["pid"], h.get("start")
        proc = self._procs.get(pid)
        if _alive(pid, start):
            try:
                os.kill(pid, signal.SIGTERM)  # the wrapper passes it to the job
            except ProcessLookupError:
                pass
            deadline = time.monotonic() + grace_seconds
            while time.monotonic() < deadline and _alive(pid, start) and (proc is None or proc.returncode is None):
                await asyncio.sleep(0.1)
        # Whatever the job left behind in its process group goes too.
        if start is None or _proc_start_ticks(pid) in (None, start):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if proc is not None:
            try:
                await asyncio.wait_for(proc.wait(), 5)
            except asyncio.TimeoutError:
                self.log.warning("job process %s did not go away after SIGKILL", pid)
            self._procs.pop(pid, None)

    async def find(self, workload_id: str) -> list[str]:
        folder = os.path.join(self.jobs_dir, workload_id)
        found = []
        try:
            attempts = sorted(os.listdir(folder))
        except OSError:
            return []
        for attempt in attempts:
            attempt_dir = os.path.join(folder, attempt)
            try:
                with open(os.path.join(attempt_dir, "handle.json")) as f:
                    h = json.load(f)
            except (OSError, ValueError):
                try:  # killed before the handle was written: the wrapper's own pid file
                    with open(os.path.join(attempt_dir, "pid")) as f:
                        pid = int(f.read().strip())
                except (OSError, ValueError):
                    continue
                h = {"dir": attempt_dir, "pid": pid, "start": _proc_start_ticks(pid), "log": self.log_path_for(workload_id)}
            if _alive(h["pid"], h.get("start")) and self._exit_code(h["dir"]) is None:
                found.append(json.dumps(h, sort_keys=True))
        return found

    async def logs(self, handle: str, offset: int = 0) -> str:
        return read_log(self._decode(handle).get("log", ""), offset)


def read_log(path: str, offset: int = 0, limit: int = 1 << 20) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, offset))
            return f.read(limit).decode("utf-8", "replace")
    except OSError:
        return ""
