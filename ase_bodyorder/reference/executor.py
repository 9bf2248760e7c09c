"""Run independent reference jobs on local processes or a dask.distributed cluster.

Both executors have the same interface (``submit`` and ``wait_first``); results are
written to the store by the calling process as each job ends, so a killed run loses only
the jobs in flight. Several runs may share one store: each job is claimed in the store
before it is submitted (see :class:`~.store.ReferenceStore`), so it is computed once.

Local workers die with the process that started them: on Linux through
``prctl(PR_SET_PDEATHSIG, SIGKILL)`` (set in the worker initializer; the signal follows
the thread that started the pool, which is the thread calling :func:`run_jobs`), and on
every platform through a watchdog thread that exits the worker when its parent changes.
"""

from __future__ import annotations

import concurrent.futures
import functools
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field

from tqdm import tqdm

from .._guard import ORPHAN_EXIT, set_parent_death_signal
from ..expansion import BodyOrderError
from .electronic import Calculation
from .store import Claimant, ReferenceStore, content_key

__all__ = ["DaskExecutor", "Job", "LocalExecutor", "RunSummary", "run_job", "run_jobs"]

#: how often a worker checks that its parent is alive, s (fallback to PR_SET_PDEATHSIG)
PARENT_CHECK_INTERVAL_S = 1.0
#: the error recorded for a job whose worker process died while running it
WORKER_DIED = (
    "the worker process died while running this job (killed by a signal, e.g. a "
    "segmentation fault in a C library or the out-of-memory killer)"
)


@dataclass(frozen=True)
class Job:
    """One electronic-structure calculation: a readable key, the structure, what to compute.

    ``key`` is readable (e.g. ``{dataset}/{index}/{method}/{basis}/{spin_policy}``) but
    not unique; the store looks jobs up by :attr:`content_key`. ``calculation``: a
    :class:`~.electronic.Calculation` (clusters) or a
    :class:`~.periodic.PeriodicDFT` (cells); its ``run(numbers, positions, cell)`` gives
    the record. ``cell``: the lattice vectors (3 x 3, Angstrom) of a periodic cell, None
    for a cluster.
    """

    key: str
    numbers: tuple
    positions: tuple
    calculation: Calculation
    meta: dict = field(default_factory=dict)
    cell: tuple | None = None

    @functools.cached_property
    def content_key(self) -> str:
        """Digest of species, positions and cell (to 1e-6 Angstrom) and settings
        (:func:`~.store.content_key`)."""
        return content_key(self.numbers, self.positions, self.calculation, self.cell)


def run_job(job: Job) -> tuple[str, dict | None, str | None]:
    """Run one job in a worker: ``(key, record, None)`` or ``(key, None, error)``."""
    try:
        from pyscf import lib  # pyscf

        lib.num_threads(1)
        record = job.calculation.run(job.numbers, job.positions, job.cell)
        return job.key, record, None
    except Exception as error:  # recorded, never fatal for the other jobs
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return job.key, None, detail


def _watch_parent(parent_pid: int) -> None:
    """Exit this worker as soon as its parent is gone (it is then reparented)."""
    while True:
        time.sleep(PARENT_CHECK_INTERVAL_S)
        if os.getppid() != parent_pid:
            os._exit(ORPHAN_EXIT)


def _die_with_parent(parent_pid: int) -> None:
    """Make this process die with ``parent_pid`` (its parent)."""
    set_parent_death_signal(signal.SIGKILL)  # Linux; elsewhere the watchdog remains
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(ORPHAN_EXIT)
    threading.Thread(
        target=_watch_parent, args=(parent_pid,), name="parent-watchdog", daemon=True
    ).start()


def _init_worker(parent_pid: int | None = None) -> None:
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"
    if parent_pid is not None:
        _die_with_parent(parent_pid)


class LocalExecutor:
    """A pool of local processes (spawned, one thread each, dying with this process)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(os.getpid(),),
        )

    def submit(self, function, argument):
        return self._pool.submit(function, argument)

    def wait_first(self, futures):
        done, pending = concurrent.futures.wait(
            futures, return_when=concurrent.futures.FIRST_COMPLETED
        )
        return done, pending

    def close(self):
        self._pool.shutdown(wait=False, cancel_futures=True)

    def restarted(self) -> LocalExecutor:
        """A new pool of as many workers, after a worker died (this one is broken)."""
        self.close()
        return LocalExecutor(self.workers)


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


class DaskExecutor:
    """Jobs on a dask.distributed cluster, given its scheduler address or a Client.

    An address that cannot be parsed or reached within ``timeout_s`` is a
    :class:`BodyOrderError` naming it.
    """

    def __init__(self, scheduler, timeout_s: float = 10.0):
        try:
            import distributed  # dask
        except ImportError as error:
            raise ImportError(
                "a dask scheduler needs the 'dask' extra: pip install 'ase-bodyorder[dask]'"
            ) from error
        self._distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self._own = scheduler, False
        else:
            self.client, self._own = self._connect(str(scheduler), timeout_s), True
        self.workers = max(1, sum(self.client.nthreads().values()))

    def _connect(self, address: str, timeout_s: float):
        from distributed.comm.addressing import parse_address, parse_host_port  # dask

        try:
            scheme, location = parse_address(address)
            if scheme in ("tcp", "tls"):  # a plain connection fails fast where nothing listens
                host, port = parse_host_port(location)
                if port is None:
                    raise ValueError("missing port number")
                socket.create_connection((host.strip("[]"), port), timeout=timeout_s).close()
            return self._distributed.Client(address, timeout=timeout_s)
        except (OSError, ValueError, TypeError) as error:
            raise BodyOrderError(
                f"cannot use dask scheduler address {address!r}: {_one_line(error)}"
            ) from None

    def submit(self, function, argument):
        return self.client.submit(function, argument, pure=False)

    def wait_first(self, futures):
        result = self._distributed.wait(list(futures), return_when="FIRST_COMPLETED")
        return set(result.done), set(result.not_done)

    def close(self):
        if self._own:
            self.client.close()


@dataclass
class RunSummary:
    """What a run did: jobs skipped (already in the store), done, failed, wall time (s).

    ``elsewhere``: jobs computed meanwhile by another run on the same store.
    """

    skipped: int = 0
    done: int = 0
    failed: int = 0
    wall_time_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)
    elsewhere: int = 0

    def line(self, store, *, elsewhere: bool = True) -> str:
        """The run in one line: ``N done, M failed, K already in STORE, L by another run,
        T s`` (``store``: the database's name; ``elsewhere=False`` leaves out the jobs
        computed by other runs)."""
        counts = [
            f"{self.done} done",
            f"{self.failed} failed",
            f"{self.skipped} already in {store}",
        ]
        if elsewhere:
            counts.append(f"{self.elsewhere} by another run")
        return ", ".join([*counts, f"{self.wall_time_s:.1f} s"])


def _job_bar(total: int, label: str, stream, enabled: bool):
    """A tqdm bar over the jobs on ``stream`` (done and failed jobs, rate, time left);
    silent when not ``enabled``."""
    return tqdm(total=total, desc=label, unit="job", file=stream, disable=not enabled)


def _count(bar, summary: RunSummary) -> None:
    """Move ``bar`` to the jobs finished so far, done and failed named."""
    bar.set_postfix_str(f"{summary.done} done, {summary.failed} failed", refresh=False)
    bar.update(summary.done + summary.failed - bar.n)


def run_jobs(
    jobs: Iterable[Job],
    store: ReferenceStore,
    *,
    workers: int = 1,
    scheduler=None,
    retry_failed: bool = False,
    progress: bool = True,
    label: str = "jobs",
    stream=None,
    poll_interval_s: float = 1.0,
) -> RunSummary:
    """Run the jobs not yet in ``store`` and write each result as it arrives.

    Jobs are identified by content (:attr:`Job.content_key`); each is claimed in the
    store before it is submitted. Jobs claimed by another live run are left to it and
    waited for (checked every ``poll_interval_s``), and taken over if it dies, so that
    on return every job is in the store. ``scheduler``: a dask scheduler address (or
    ``distributed.Client``); otherwise ``workers`` local processes. Failed jobs are
    recorded with their error and skipped on later runs unless ``retry_failed``. A local
    worker that dies (a signal, a crash in C) fails its job with :data:`WORKER_DIED`: the
    pool is started again, and where several jobs were in flight they run again one at
    a time to find the one that kills its worker; the other jobs go on.
    ``progress``: a tqdm bar labelled ``label`` on ``stream`` (stderr by default) with
    the jobs done and failed and the time left.
    """
    stream = sys.stderr if stream is None else stream
    start = time.perf_counter()
    if retry_failed:
        store.delete_failed()
    finished = store.finished()
    jobs = list(jobs)
    todo = [job for job in jobs if job.content_key not in finished]
    unique = {job.content_key: job for job in todo}
    summary = RunSummary(skipped=len(jobs) - len(todo))
    if not unique:
        return summary
    executor = DaskExecutor(scheduler) if scheduler is not None else LocalExecutor(workers)
    claimant = Claimant()
    bar = _job_bar(len(unique), label, stream, progress)
    queue = list(unique.values())[::-1]
    waiting: list[Job] = []  # claimed by other live runs
    suspects: list[Job] = []  # in flight when a worker died: run one at a time
    in_flight = {}

    def finish(job: Job, record: dict | None, error: str | None) -> None:
        if not store.write(job, record, error=error):
            summary.elsewhere += 1
        elif error is None:
            summary.done += 1
        else:
            summary.failed += 1
            summary.errors[job.key] = error

    try:
        while queue or in_flight or waiting or suspects:
            if suspects and not in_flight:  # claimed already
                job = suspects.pop()
                in_flight[executor.submit(run_job, job)] = job
            while not suspects and queue and len(in_flight) < 2 * executor.workers:
                job = queue.pop()
                state = store.claim(job, claimant)
                if state == "claimed":
                    in_flight[executor.submit(run_job, job)] = job
                elif state == "finished":
                    summary.elsewhere += 1
                else:
                    waiting.append(job)
            if not in_flight:
                if waiting and not queue:
                    time.sleep(poll_interval_s)
                    queue, waiting = waiting[::-1], []
                continue
            done, _ = executor.wait_first(set(in_flight))
            lost = []
            for future in done:
                job = in_flight.pop(future)
                try:
                    _, record, error = future.result()
                except BrokenProcessPool:
                    lost.append(job)
                    continue
                except Exception as failure:  # a dask worker lost, a result not unpickled
                    record, error = None, f"the job's worker failed: {_one_line(failure)}"
                finish(job, record, error)
            if lost:  # the pool is broken: every job in flight is lost with it
                lost += in_flight.values()
                in_flight.clear()
                executor = executor.restarted()
                if len(lost) == 1:
                    finish(lost[0], None, WORKER_DIED)
                else:
                    suspects += lost[::-1]
            _count(bar, summary)
    finally:
        executor.close()
        store.release(claimant)
        _count(bar, summary)
        bar.close()
    summary.wall_time_s = time.perf_counter() - start
    return summary
