"""Child processes that do not outlive the one that started them.

A launcher killed with `kill -9` cannot stop its children; on Linux the kernel can: a child armed
with PR_SET_PDEATHSIG gets SIGTERM when its parent dies, so no Redis or service is left running
under PID 1 to block the next start. Elsewhere the children are stopped the ordinary way only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def tied_to_this_process() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen: the child is sent SIGTERM when this process dies."""
    if not sys.platform.startswith("linux"):
        return None
    parent = os.getpid()

    def arm() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)

    return arm
