"""i-PI and its drivers as child processes: start, watch and stop them (:class:`IPISession`).

An :class:`IPISession` starts ``i-pi input.xml`` in a run directory, waits (bounded) for
its UNIX socket, starts the drivers (any Python program: our client,
``python -m ase_bodyorder.ipi.client``, or another), watches them until i-PI exits or a
deadline passes, and stops them, whatever happens, when the ``with`` block ends: i-PI
first, with SIGTERM (it writes ``RESTART``), then the drivers; a process that does not
stop within ``STOP_WAIT_S`` is killed.

Every child runs in a session (process group) of its own, through
:mod:`ase_bodyorder._guard`, so that it ends when this process dies, ``kill -9``
included: i-PI then gets SIGTERM, a driver SIGKILL. The guard's parent-death signal
fires when the *thread* that started the child ends: start the children from the thread
that runs the session.

The session knows nothing of run directories' manifests or of our driver's settings:
:mod:`~ase_bodyorder.ipi.runner` builds a run on it, and ``benchmarks/bench_md.py`` times
i-PI with other drivers on it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from .._guard import guarded
from ..runs import MDRunError

__all__ = [
    "ChildProcess",
    "IPISession",
    "MDRunError",
    "child_environment",
    "find_python_script",
    "sigterm_as_interrupt",
    "start_guarded",
    "unique_address",
]

#: seconds to wait for i-PI's socket to appear, and for processes to stop
SOCKET_WAIT_S = 60.0
STOP_WAIT_S = 10.0
POLL_S = 0.2
#: what i-PI and the drivers get when this process dies: i-PI writes RESTART on SIGTERM
IPI_DEATH_SIGNAL = signal.SIGTERM
DRIVER_DEATH_SIGNAL = signal.SIGKILL
#: seconds an orphaned process may take to stop after that signal before it is ended
ORPHAN_GRACE_S = 5.0


# ---------------------------------------------------------------- commands


def find_python_script(name: str, missing: str | None = None) -> tuple[list[str], str]:
    """``(interpreter, script)`` of an installed Python script such as ``i-pi``: the one
    next to this interpreter, else on ``PATH``; the interpreter from its ``#!`` line (this
    one when that line names no Python). ``missing``: the error when it is not found."""
    local = Path(sys.executable).with_name(name)
    found = str(local) if local.is_file() else shutil.which(name)
    if found is None:
        raise MDRunError(missing or f"`{name}` not found")
    try:
        with open(found, "rb") as handle:
            first = handle.readline().decode("utf-8", errors="replace").strip()
    except OSError as error:
        raise MDRunError(f"cannot read the script {found}: {error}") from None
    interpreter = shlex.split(first[2:]) if first.startswith("#!") else []
    if not any("python" in Path(word).name for word in interpreter):
        interpreter = [sys.executable]
    return interpreter, found


def ipi_command() -> tuple[list[str], str]:
    """``(interpreter, script)`` of i-PI (``i-pi``)."""
    return find_python_script("i-pi", "i-PI (`i-pi`) not found: pip install 'ase-bodyorder[ipi]'")


def child_environment(threads: int) -> dict:
    """The parent's environment, with this package importable and torch's threads set."""
    env = os.environ.copy()
    package_root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = str(threads)
    return env


def unique_address() -> str:
    """A UNIX socket name of its own for a run (pid and a random part)."""
    return f"bo-{os.getpid()}-{uuid.uuid4().hex[:10]}"


# ---------------------------------------------------------------- processes


@dataclass
class ChildProcess:
    """A started program: its name (for messages), process and log file."""

    name: str
    popen: subprocess.Popen
    log: Path
    log_file: object = field(repr=False, default=None)

    def stop(self, sig=signal.SIGTERM, wait_s: float = STOP_WAIT_S) -> None:
        """Signal the process group, wait up to ``wait_s`` seconds, then kill the group."""
        if self.popen.poll() is None:
            _signal_group(self.popen, sig)
            try:
                self.popen.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.popen, signal.SIGKILL)
                self.popen.wait(timeout=wait_s)
        if self.log_file is not None:
            self.log_file.close()
            self.log_file = None

    def last_words(self) -> str:
        """The last non-empty line of its log, and where the log is."""
        try:
            lines = [line.strip() for line in self.log.read_text().splitlines() if line.strip()]
        except OSError:
            lines = []
        said = f": {lines[-1]}" if lines else ""
        return f"{said} (log: {self.log})"


def _signal_group(popen: subprocess.Popen, sig) -> None:
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def start_guarded(
    name: str,
    interpreter: Sequence[str],
    program: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: dict,
    death_signal: signal.Signals,
) -> ChildProcess:
    """Start the Python ``program`` (a script or ``-m MODULE``, and its arguments) with
    ``interpreter`` in a session of its own, through :mod:`ase_bodyorder._guard`: it gets
    ``death_signal`` when this process dies. Output and errors go to ``log``."""
    command = guarded(list(program), death_signal.name, ORPHAN_GRACE_S, list(interpreter))
    log_file = open(log, "w")  # noqa: SIM115 - closed by ChildProcess.stop
    popen = subprocess.Popen(
        command,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    return ChildProcess(name, popen, Path(log), log_file)


@contextmanager
def sigterm_as_interrupt():
    """In the main thread, SIGTERM raises KeyboardInterrupt (so that i-PI and the drivers,
    in their own sessions, are stopped too); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# ---------------------------------------------------------------- the session


class IPISession:
    """i-PI and its drivers in ``run_dir``, stopped when the ``with`` block ends.

    ``address`` and ``sockets_prefix``: i-PI's UNIX socket (``sockets_prefix + address``,
    as the input names it); ``threads``: ``OMP_NUM_THREADS`` of every child;
    ``ipi_log``: i-PI's output (default ``run_dir/ipi.log``). Typical use::

        with IPISession(run_dir, address=address, sockets_prefix=prefix) as session:
            session.start()  # i-PI, and its socket
            session.add_driver("driver 0", ["-m", "ase_bodyorder.ipi.client", ...], log=...)
            session.wait(deadline)  # until i-PI exits; MDRunError if anything fails
            session.wait_for_drivers()
    """

    def __init__(
        self,
        run_dir,
        *,
        address: str,
        sockets_prefix: str,
        threads: int = 1,
        ipi_log=None,
        input_name: str = "input.xml",
    ):
        self.run_dir = Path(run_dir)
        self.address = address
        self.sockets_prefix = sockets_prefix
        self.ipi_log = self.run_dir / "ipi.log" if ipi_log is None else Path(ipi_log)
        self.input_name = input_name
        self.env = child_environment(threads)
        self.ipi: ChildProcess | None = None
        self.drivers: list[ChildProcess] = []

    @property
    def socket_path(self) -> Path:
        return Path(self.sockets_prefix + self.address)

    def __enter__(self) -> IPISession:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self, *, socket_wait_s: float = SOCKET_WAIT_S) -> ChildProcess:
        """Start i-PI and wait up to ``socket_wait_s`` seconds for its socket; raise
        :class:`MDRunError` if i-PI exits first or the socket does not appear."""
        if self.ipi is not None:
            raise MDRunError("this session has started i-PI already")
        interpreter, script = ipi_command()
        self.ipi = start_guarded(
            "i-PI",
            interpreter,
            [script, self.input_name],
            cwd=self.run_dir,
            log=self.ipi_log,
            env=self.env,
            death_signal=IPI_DEATH_SIGNAL,
        )
        self._wait_for_socket(socket_wait_s)
        return self.ipi

    def _wait_for_socket(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.socket_path.exists():
            if self.ipi.popen.poll() is not None:
                raise MDRunError(
                    f"i-PI exited with status {self.ipi.popen.returncode} before opening its "
                    f"socket{self.ipi.last_words()}"
                )
            if time.monotonic() > deadline:
                raise MDRunError(
                    f"i-PI did not open its socket {self.socket_path} within {timeout_s:g} s"
                )
            time.sleep(POLL_S)

    def add_driver(
        self, name: str, program: Sequence[str], *, log, interpreter: Sequence[str] = ()
    ) -> ChildProcess:
        """Start a driver: the Python ``program`` (``["-m", MODULE, ...]`` or
        ``[SCRIPT, ...]``) run by ``interpreter`` (default: this one), output to ``log``."""
        driver = start_guarded(
            name,
            list(interpreter) or [sys.executable],
            program,
            cwd=self.run_dir,
            log=Path(log),
            env=self.env,
            death_signal=DRIVER_DEATH_SIGNAL,
        )
        self.drivers.append(driver)
        return driver

    def finished(self) -> bool:
        """Whether i-PI has exited (with status 0); :class:`MDRunError` if i-PI or a
        driver exited with an error."""
        code = self.ipi.popen.poll()
        if code is not None:
            if code != 0:
                raise MDRunError(f"i-PI exited with status {code}{self.ipi.last_words()}")
            return True
        for driver in self.drivers:
            code = driver.popen.poll()
            if code not in (None, 0):
                raise MDRunError(
                    f"{driver.name} (pid {driver.popen.pid}) exited with status {code}, "
                    f"i-PI stopped{driver.last_words()}"
                )
        return False

    def wait(
        self,
        deadline: float,
        *,
        on_poll: Callable[[], None] | None = None,
        timeout_message: str = "the run did not finish in time",
        poll_s: float = POLL_S,
    ) -> None:
        """Until i-PI exits; :class:`MDRunError` when i-PI or a driver fails, or when
        ``time.monotonic()`` passes ``deadline`` (``timeout_message``). ``on_poll`` is
        called before every look (every ``poll_s`` seconds)."""
        while True:
            if on_poll is not None:
                on_poll()
            if self.finished():
                return
            if time.monotonic() > deadline:
                raise MDRunError(timeout_message)
            time.sleep(poll_s)

    def wait_for_drivers(self, wait_s: float = STOP_WAIT_S) -> None:
        """After i-PI's exit (it has sent EXIT, the drivers stop by themselves): wait up to
        ``wait_s`` seconds for each, then stop it."""
        for driver in self.drivers:
            try:
                driver.popen.wait(timeout=wait_s)
            except subprocess.TimeoutExpired:
                driver.stop()

    def stop(self) -> None:
        """Stop i-PI first (SIGTERM lets it write RESTART), then the drivers; remove the
        socket. Safe to call more than once."""
        for process in [self.ipi, *self.drivers]:
            if process is not None:
                process.stop()
        self.socket_path.unlink(missing_ok=True)
