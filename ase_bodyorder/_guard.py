"""Run a Python program so that it ends when the process that started it dies.

The MD runner starts i-PI and the drivers, and the training recipes start the trainers,
through this file, run by its path (it imports nothing but the standard library, so
that it starts fast and works under any Python 3 interpreter)::

    python _guard.py PARENT_PID SIGNAL GRACE_S (SCRIPT | -m MODULE) [ARGS ...]

The program (a script, as ``python SCRIPT``, or a module, as ``python -m MODULE``) runs
in this same process, after two guards are set up:

* Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG, SIGNAL)``): the kernel sends
  ``SIGNAL`` the moment the parent dies, however it dies (``kill -9`` included). It
  fires when the *thread* that started this process ends: the runner starts its
  processes from the thread that runs the simulation, which lives until it has stopped
  them.
* a watcher thread, for where the first is missing or comes too late: when the parent
  pid changes (the process was re-parented), it sends ``SIGNAL`` to this process, and
  ends the process with exit status 137 (as SIGKILL would) if it is still there
  ``GRACE_S`` seconds later.

``SIGTERM`` lets i-PI write its ``RESTART`` file before it exits; ``SIGKILL`` ends a
driver at once.
"""

from __future__ import annotations

import ctypes
import os
import runpy
import signal
import sys
import threading
import time

PR_SET_PDEATHSIG = 1
POLL_S = 0.5
#: exit status when the watcher ends the process (the shell's status after SIGKILL)
ORPHAN_EXIT = 137


def set_parent_death_signal(sig: int) -> bool:
    """Ask the kernel for ``sig`` when the parent dies (Linux); False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent: int, sig: int, grace_s: float) -> None:
    """Until the parent pid changes; then ``sig`` to this process, and exit after ``grace_s``."""
    while os.getppid() == parent:
        time.sleep(POLL_S)
    os.kill(os.getpid(), sig)
    time.sleep(grace_s)
    os._exit(ORPHAN_EXIT)


def guarded(
    program: list[str], sig: str = "SIGTERM", grace_s: float = 5.0, interpreter=None
) -> list[str]:
    """The command line that runs ``program`` (``[SCRIPT, ...]`` or ``["-m", MODULE, ...]``)
    under this guard, as a child of the calling process (and of its calling thread)."""
    python = [sys.executable] if interpreter is None else list(interpreter)
    return [*python, os.path.abspath(__file__), str(os.getpid()), sig, repr(grace_s), *program]


def main(argv: list[str]) -> None:
    """Set up the guards, then run the program given in ``argv`` (see the module doc)."""
    if len(argv) < 4 or (argv[3] == "-m" and len(argv) < 5):
        sys.exit(f"usage: {__file__} PARENT_PID SIGNAL GRACE_S (SCRIPT | -m MODULE) [ARGS]")
    parent, sig, grace_s = int(argv[0]), signal.Signals[argv[1]], float(argv[2])
    set_parent_death_signal(sig)
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(ORPHAN_EXIT)
    threading.Thread(
        target=_watch_parent, args=(parent, sig, grace_s), name="parent-watch", daemon=True
    ).start()
    program = argv[3:]
    del sys.path[0]  # this file's directory: its modules must not shadow the program's
    if program[0] == "-m":
        sys.argv = [program[1], *program[2:]]
        runpy.run_module(program[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(program)
        sys.path.insert(0, os.path.dirname(os.path.abspath(program[0])))
        runpy.run_path(program[0], run_name="__main__")


if __name__ == "__main__":
    main(sys.argv[1:])
