"""What the training recipes share: running a trainer with a log, hashes, versions."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import time
from importlib import metadata
from pathlib import Path

from tqdm import tqdm

from .. import __version__
from .._guard import guarded
from ..expansion import BodyOrderError
from ..io import write_text_atomically

__all__ = [
    "WALL_TIME_LEDGER",
    "package_versions",
    "portable_paths",
    "run_logged",
    "total_wall_time",
    "trainer_threads",
]

#: the directory holding the ``ase_bodyorder`` package (the repository root when the
#: package is installed from a checkout)
PACKAGE_PARENT = Path(__file__).resolve().parents[2]

#: file in a trainer's working directory holding the wall time (s) of all its runs so far,
#: kept up to date while it runs, so that a training killed and resumed counts every part
WALL_TIME_LEDGER = "wall_time_s.txt"
#: how often (s) the ledger is rewritten while a trainer runs
_LEDGER_S = 30.0


def portable_paths(data, *directories: str | os.PathLike):
    """``data`` (JSON-like) with the absolute paths in its strings made machine-independent.

    A path under one of ``directories`` (a training's work directory, a study cache)
    becomes ``<directory name>/rest``; one under the directory holding the package becomes
    relative to it (``ase_bodyorder/data/reference/h8-high_test.xyz``). Shipped provenance
    is read on other machines, where the trainer's absolute paths name nothing; the files'
    SHA-256, not their paths, identify the data.
    """
    prefixes = [(f"{Path(d).resolve()}/", f"{Path(d).resolve().name}/") for d in directories]
    prefixes.append((f"{PACKAGE_PARENT}/", ""))

    def fix(value):
        if isinstance(value, dict):
            return {key: fix(item) for key, item in value.items()}
        if isinstance(value, list):
            return [fix(item) for item in value]
        if isinstance(value, str):
            for prefix, replacement in prefixes:
                value = value.replace(prefix, replacement)
        return value

    return fix(data)


def package_versions(names) -> dict:
    """Python, ase-bodyorder and the given packages' versions (None if missing)."""
    out = {"python": platform.python_version(), "ase-bodyorder": __version__}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


#: environment variable giving the number of threads of a trainer (default 1)
THREADS_VARIABLE = "ASE_BODYORDER_TRAINER_THREADS"


def trainer_threads() -> int:
    """Threads a trainer runs with: ``ASE_BODYORDER_TRAINER_THREADS``, or 1.

    One by default: two trainings side by side on a 2-core machine run fastest with one
    thread each, and torch with 2 threads on a busy machine can be many times slower. A
    training alone on an idle machine may gain from more; the thread count may change
    the trained model's last digits (the order of summations), not its recipe or key.
    """
    value = os.environ.get(THREADS_VARIABLE, "1").strip()
    if not value.isdigit() or int(value) < 1:
        raise BodyOrderError(f"{THREADS_VARIABLE} must be a positive integer, got {value!r}")
    return int(value)


def run_logged(
    command,
    *,
    cwd: Path,
    log_path: Path,
    timeout,
    what: str,
    append: bool = False,
    stop_pattern: str | None = None,
    progress=None,
    max_epochs: int | None = None,
):
    """Run a trainer (``[python, ...args]``) with :func:`trainer_threads` threads (one
    unless ``ASE_BODYORDER_TRAINER_THREADS`` says otherwise), its output in ``log_path``
    (appended to if ``append``); the trainer ends when this process dies.

    ``stop_pattern``: a regular expression; when a line of the trainer's output written
    by this run matches it, the trainer is stopped (SIGTERM, then SIGKILL after 30 s).
    ``progress``: a text stream for a tqdm bar (epoch reached of ``max_epochs``,
    time elapsed and left), updated as the trainer logs epochs.
    Returns ``(exit status, wall time in s, log text, stopped)``; raises
    ``BodyOrderError`` when it runs past ``timeout`` (s). The wall time of this run is
    added to the ledger of ``cwd`` (:func:`total_wall_time`; a run that does not
    ``append`` starts it afresh).
    """
    env = dict(os.environ)
    threads = str(trainer_threads())
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env[name] = threads
    start = time.perf_counter()
    # the trainer ends when this process dies, however it dies (kill -9 included)
    command = guarded(command[1:], interpreter=command[:1])
    pattern = None if stop_pattern is None else re.compile(stop_pattern)
    stopped = False
    bar = None if progress is None else _EpochProgress(progress, what, max_epochs)
    before = total_wall_time(cwd) if append else 0.0
    ledger_at = start
    with open(log_path, "a" if append else "w", encoding="utf-8") as log:
        offset = log.tell()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            while process.poll() is None:
                if timeout is not None and time.perf_counter() - start > timeout:
                    raise BodyOrderError(f"{what} did not finish in {timeout} s; see {log_path}")
                if pattern is not None and _log_matches(log_path, offset, pattern):
                    stopped = True
                    break
                if bar is not None:
                    bar.update(log_path, offset)
                if time.perf_counter() - ledger_at > _LEDGER_S:
                    ledger_at = time.perf_counter()
                    _write_ledger(cwd, before + ledger_at - start)
                time.sleep(POLL_S)
        finally:
            if bar is not None:
                bar.close()
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
    wall_time = time.perf_counter() - start
    _write_ledger(cwd, before + wall_time)
    text = log_path.read_text(encoding="utf-8", errors="replace")
    return process.returncode, wall_time, text, stopped


def total_wall_time(directory) -> float:
    """Wall time (s) of every trainer run in ``directory`` since the last fresh start,
    resumed parts and parts that were killed included (to within ``_LEDGER_S``); 0 when
    none ran."""
    try:
        return float((Path(directory) / WALL_TIME_LEDGER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return 0.0


def _write_ledger(directory, seconds: float) -> None:
    write_text_atomically(Path(directory) / WALL_TIME_LEDGER, f"{seconds:.3f}\n")


#: how often (s) a running trainer's log is read for ``stop_pattern``
POLL_S = 2.0


_EPOCH = re.compile(r"Epoch\s+(\d+)")


class _EpochProgress:
    """A tqdm bar on a stream over the epochs a trainer logs (``Epoch N`` lines): the
    epoch reached of ``max_epochs``, time elapsed and left. Nothing is shown before
    the first epoch; a resumed run counts from the first epoch it logs."""

    def __init__(self, stream, what: str, max_epochs: int | None):
        self.stream, self.what, self.max_epochs = stream, what, max_epochs
        self.bar = None

    def update(self, path: Path, offset: int) -> None:
        with open(path, encoding="utf-8", errors="replace") as handle:
            handle.seek(offset)
            found = _EPOCH.findall(handle.read())
        if not found:
            return
        last = int(found[-1])
        if self.bar is None:
            self.bar = tqdm(
                total=self.max_epochs or None,
                initial=int(found[0]),
                desc=self.what,
                unit="epoch",
                file=self.stream,
            )
        self.bar.update(last - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _log_matches(path: Path, offset: int, pattern: re.Pattern) -> bool:
    with open(path, encoding="utf-8", errors="replace") as handle:
        handle.seek(offset)
        return pattern.search(handle.read()) is not None
