"""Run independent reference jobs on local processes or a dask.distributed cluster.

Both executors have the same interface (``submit`` and ``wait_first``); results are
written to the store by the calling process as each job ends, so the store has a single
writer and a killed run loses only the jobs in flight.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import dataclass, field

from .electronic import Calculation, compute
from .store import ReferenceStore

__all__ = ["DaskExecutor", "Job", "LocalExecutor", "RunSummary", "run_job", "run_jobs"]


@dataclass(frozen=True)
class Job:
    """One electronic-structure calculation: a stable key, the cluster, what to compute."""

    key: str
    numbers: tuple
    positions: tuple
    calculation: Calculation
    meta: dict = field(default_factory=dict)


def run_job(job: Job) -> tuple[str, dict | None, str | None]:
    """Run one job in a worker: ``(key, record, None)`` or ``(key, None, error)``."""
    try:
        from pyscf import lib

        lib.num_threads(1)
        record = compute(job.numbers, job.positions, job.calculation)
        return job.key, record, None
    except Exception as error:  # recorded, never fatal for the other jobs
        detail = traceback.format_exception_only(type(error), error)[-1].strip()
        return job.key, None, detail


def _init_worker():
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = "1"


class LocalExecutor:
    """A pool of local processes (spawned, one thread each)."""

    def __init__(self, workers: int = 1):
        self.workers = max(1, int(workers))
        self._pool = concurrent.futures.ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
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


class DaskExecutor:
    """Jobs on a dask.distributed cluster, given its scheduler address or a Client."""

    def __init__(self, scheduler):
        try:
            import distributed
        except ImportError as error:
            raise ImportError(
                "a dask scheduler needs the 'dask' extra: pip install 'ase-bodyorder[dask]'"
            ) from error
        self._distributed = distributed
        if isinstance(scheduler, distributed.Client):
            self.client, self._own = scheduler, False
        else:
            self.client, self._own = distributed.Client(scheduler), True
        self.workers = max(1, sum(self.client.nthreads().values()))

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
    """What a run did: jobs skipped (already in the store), done, failed, wall time (s)."""

    skipped: int = 0
    done: int = 0
    failed: int = 0
    wall_time_s: float = 0.0
    errors: dict[str, str] = field(default_factory=dict)


class _Progress:
    def __init__(self, total: int, label: str, stream, interval: float = 1.0):
        self.total, self.label, self.stream, self.interval = total, label, stream, interval
        self.start = time.perf_counter()
        self.last = 0.0

    def update(self, done: int, failed: int, final: bool = False):
        now = time.perf_counter()
        if not final and now - self.last < self.interval:
            return
        self.last = now
        finished = done + failed
        elapsed = now - self.start
        rate = finished / elapsed if elapsed > 0 else 0.0
        left = (self.total - finished) / rate if rate > 0 else float("nan")
        eta = f"{left / 60:.1f} min" if left == left else "?"
        self.stream.write(
            f"\r{self.label}: {finished}/{self.total} ({done} done, {failed} failed), "
            f"{rate:.2f} jobs/s, {elapsed / 60:.1f} min elapsed, {eta} left   "
        )
        if final:
            self.stream.write("\n")
        self.stream.flush()


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
) -> RunSummary:
    """Run the jobs not yet in ``store`` and write each result as it arrives.

    ``scheduler``: a dask scheduler address (or ``distributed.Client``); otherwise
    ``workers`` local processes. Failed jobs are recorded with their error and skipped
    on later runs unless ``retry_failed``.
    """
    stream = sys.stderr if stream is None else stream
    start = time.perf_counter()
    if retry_failed:
        store.delete_failed()
    finished = store.finished()
    jobs = list(jobs)
    todo = [job for job in jobs if job.key not in finished]
    unique = {job.key: job for job in todo}
    summary = RunSummary(skipped=len(jobs) - len(todo))
    if not unique:
        return summary
    executor = DaskExecutor(scheduler) if scheduler is not None else LocalExecutor(workers)
    bar = _Progress(len(unique), label, stream) if progress else None
    queue = list(unique.values())[::-1]
    in_flight = {}
    try:
        while queue or in_flight:
            while queue and len(in_flight) < 2 * executor.workers:
                job = queue.pop()
                in_flight[executor.submit(run_job, job)] = job
            done, _ = executor.wait_first(set(in_flight))
            for future in done:
                job = in_flight.pop(future)
                key, record, error = future.result()
                store.write(key, job.numbers, job.positions, record, error=error, meta=job.meta)
                if error is None:
                    summary.done += 1
                else:
                    summary.failed += 1
                    summary.errors[key] = error
            if bar:
                bar.update(summary.done, summary.failed)
    finally:
        executor.close()
        if bar:
            bar.update(summary.done, summary.failed, final=True)
    summary.wall_time_s = time.perf_counter() - start
    return summary
