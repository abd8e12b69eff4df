"""Child processes that do not outlive the one that started them.

A launcher killed with `kill -9` cannot stop its children; on Linux the kernel can: a process
armed with PR_SET_PDEATHSIG gets SIGTERM when its parent dies, so no Redis or service is left
running under PID 1 to block the next start. The arming is done by a small exec shim
(`python -m services.common.process PARENT_PID COMMAND...`), not in a `preexec_fn`: code run
between fork and exec in a process with gRPC's threads can deadlock on a lock one of them held.
The setting survives the exec into the real command. Elsewhere than Linux the command runs as
it is and children are stopped the ordinary way only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def tied(command: list[str]) -> list[str]:
    """`command`, started so that it gets SIGTERM when this process dies."""
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-m", "services.common.process", str(os.getpid()), *command]


def _arm_and_exec(parent: int, command: list[str]) -> None:
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the parent died before the line above took effect
        sys.exit(1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    _arm_and_exec(int(sys.argv[1]), sys.argv[2:])
