"""Runs one job command and records how it ended: ``python -m hub_ext.service.runners.local_wrapper EXIT_FILE [--as-user NAME] -- CMD...``.

The service may die (kill -9 included) while a job runs; the job must not.
This small parent outlives the service, passes SIGTERM/SIGINT on to the job
(its chance to checkpoint), and writes the exit code to ``EXIT_FILE`` so a
restarted service can tell how the job ended although it is not its parent.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys


def main(argv: list[str]) -> int:
    as_user = None
    if len(argv) >= 3 and argv[1] == "--as-user":
        as_user, argv = argv[2], [argv[0], *argv[3:]]
    if len(argv) < 3 or argv[1] != "--":
        print("usage: local_wrapper EXIT_FILE [--as-user NAME] -- CMD [ARGS...]", file=sys.stderr)
        return 2
    exit_file, command = argv[0], argv[2:]
    account = {}
    if as_user is not None:
        import pwd

        entry = pwd.getpwnam(as_user)
        account = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": os.getgrouplist(entry.pw_name, entry.pw_gid)}
    # Written first thing, so a service killed before it saved the handle can still find the job.
    with open(os.path.join(os.path.dirname(exit_file), "pid"), "w") as f:
        f.write(str(os.getpid()))
    try:
        child = subprocess.Popen(command, **account)
    except OSError as e:
        print(f"gpupool: cannot run {command[0]!r}: {e}", file=sys.stderr, flush=True)
        code = 127
    else:

        def forward(signum, _frame):
            try:
                child.send_signal(signum)
            except ProcessLookupError:
                pass

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        code = child.wait()
        if code < 0:  # killed by a signal: report it the way shells do
            code = 128 - code
    tmp = exit_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(code))
    os.replace(tmp, exit_file)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
