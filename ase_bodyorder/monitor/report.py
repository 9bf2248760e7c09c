"""Reports of body-order statistics along a trajectory: tables, plots, a watch mode."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np

from ..expansion import BodyOrderError
from ..runs import MANIFEST, MDRun, MDRunError, last_step_in_outputs
from .readers import BodyOrderTrace, read_ase_log, read_run
from .statistics import SeriesStatistics, mean_and_error

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

__all__ = [
    "WatchResult",
    "check_source",
    "load_trace",
    "order_statistics",
    "report_text",
    "run_manifest",
    "share_ranges",
    "status_line",
    "watch",
    "write_plots",
]


def check_source(source: str | os.PathLike[str]) -> Path:
    """``source`` as a path; ``BodyOrderError`` when it is missing or an empty directory."""
    source = Path(source)
    if not source.exists():
        raise BodyOrderError(
            f"{source} does not exist: give an i-PI run directory or a BodyOrderLogger file"
        )
    if source.is_dir() and not any(source.iterdir()):
        raise BodyOrderError(f"{source} is an empty directory: no run to read")
    return source


def load_trace(source: str | os.PathLike[str]) -> BodyOrderTrace:
    """A run directory of i-PI (``simulation.out`` + extras) or a BodyOrderLogger file."""
    source = check_source(source)
    if source.is_dir():
        return read_run(source)
    return read_ase_log(source)


def run_manifest(source: str | os.PathLike[str]) -> MDRun | None:
    """The :class:`~ase_bodyorder.ipi.MDRun` of a run directory made by ``md`` (its
    ``run.json``; status ``killed`` when its runner is gone; ``last_step`` of a running
    run read from its property file), else None; a manifest that cannot be read is a
    ``BodyOrderError``."""
    source = Path(source)
    if not (source / MANIFEST).is_file():
        return None
    try:
        run = MDRun.load(source)
    except (OSError, ValueError, KeyError, TypeError, MDRunError) as error:
        raise BodyOrderError(
            f"cannot read the run manifest {source / MANIFEST} ({error}): run status unknown"
        ) from None
    if run.status == "running":
        run = replace(run, last_step=last_step_in_outputs(run))
    return run


def status_line(run: MDRun) -> str:
    """One line on an :class:`~ase_bodyorder.ipi.MDRun`'s state: status, steps, message."""
    line = f"run {run.status}: steps {run.first_step}..{run.last_step} of {run.total_steps}"
    return f"{line} ({run.message})" if run.message and run.status != "completed" else line


def order_statistics(trace: BodyOrderTrace, order: int) -> SeriesStatistics:
    """:class:`~ase_bodyorder.monitor.SeriesStatistics` of E^(n)/N (eV/atom) over the
    frames, ``order`` = n: the time average of the per-frame values (estimates, with
    atom sampling), its error including the atom-sampling errors where the trace has
    them (see :func:`~ase_bodyorder.monitor.mean_and_error`)."""
    stderr = trace.energies_per_atom_stderr_eV
    return mean_and_error(
        trace.energies_per_atom_eV[:, order - 1],
        stderr=None if stderr is None else stderr[:, order - 1],
    )


def report_text(trace: BodyOrderTrace) -> str:
    """Mean and statistical error (from the autocorrelation time) of every order.

    Where the trace carries atom-sampling standard errors, the error column is the total
    error of the time average (time correlation and atom sampling, combined as in
    :func:`~ase_bodyorder.monitor.mean_and_error`) and a ``sampling`` column gives the
    atom-sampling part.
    """
    if len(trace) == 0:
        raise BodyOrderError(f"{trace.source}: no monitored frames yet")
    # sampled only where some frame has a non-zero sampling error (unsampled runs and
    # loggers write zeros)
    stderr = trace.energies_per_atom_stderr_eV
    sampled = stderr is not None and bool(np.nan_to_num(np.asarray(stderr)).any())
    header = f"{'order':>8} {'per atom/eV':>14} {'+-':>10}"
    header += f" {'sampling':>10}" if sampled else ""
    lines = [
        f"{trace.source}: {len(trace)} monitored frames, steps {trace.step[0]}..{trace.step[-1]}",
        f"{header} {'tau':>6} {'share':>9} {'+-':>8}",
    ]
    for n in range(trace.max_order):
        e = order_statistics(trace, n + 1)
        share = mean_and_error(trace.shares[:, n])
        share_text = f"{share.mean:9.4f} {share.error:8.4f}" if share.n else f"{'-':>9} {'-':>8}"
        sampling = f" {e.sampling_error:10.6f}" if sampled else ""
        lines.append(
            f"{n + 1:>8} {e.mean:14.6f} {e.error:10.6f}{sampling} {e.tau:6.1f} {share_text}"
        )
    residual = mean_and_error(trace.residual_eV, stderr=trace.residual_stderr_eV)
    sampling = ""
    if sampled and trace.residual_stderr_eV is not None:
        sampling = f" (sampling {residual.sampling_error:.6f})"
    lines.append(
        f"{'residual':>8} {residual.mean:14.6f} {residual.error:10.6f} (eV per cell){sampling}"
    )
    if sampled:
        lines.append(
            "atom-sampled estimates: +- combines the time correlation and the atom "
            "sampling; 'sampling' is the sampling part, sqrt(mean(stderr^2) / frames)"
        )
    for name, unit in (("temperature_K", "K"), ("conserved_eV", "eV")):
        if name in trace.properties:
            stats = mean_and_error(trace.properties[name])
            lines.append(
                f"{name}: {stats.mean:.4f} +- {stats.error:.4f} {unit} (tau {stats.tau:.1f} frames)"
            )
    if "conserved_eV" in trace.properties and len(trace.properties["conserved_eV"]) > 1:
        conserved = trace.properties["conserved_eV"]
        lines.append(
            f"conserved drift: {conserved[-1] - conserved[0]:+.6f} eV over "
            f"{len(conserved) - 1} frames"
        )
    return "\n".join(lines)


def write_plots(trace: BodyOrderTrace, directory: str | os.PathLike[str]) -> list[Path]:
    """PNG plots: energies and shares per order against time, and their distributions.

    Error bars: each frame's atom-sampling standard error on the energies (when the
    trace has them), and on each distribution the mean over frames with its error bar
    (time correlation and atom sampling, :func:`order_statistics`).
    """
    import matplotlib  # matplotlib: the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    k = trace.max_order
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    stderr = trace.energies_per_atom_stderr_eV
    n_atoms = max(1, _n_atoms(trace))
    for n in range(1, k):
        values = trace.energies_per_atom_eV[:, n]
        if stderr is None:
            top.plot(trace.time_fs, values, label=f"{n + 1}-body")
        else:
            top.errorbar(trace.time_fs, values, yerr=stderr[:, n], capsize=2, label=f"{n + 1}-body")
        bottom.plot(trace.time_fs, trace.shares[:, n], label=f"{n + 1}-body")
    if trace.residual_stderr_eV is None:
        top.plot(trace.time_fs, trace.residual_eV / n_atoms, "k--", label="residual")
    else:
        top.errorbar(
            trace.time_fs,
            trace.residual_eV / n_atoms,
            yerr=trace.residual_stderr_eV / n_atoms,
            fmt="k--",
            capsize=2,
            label="residual",
        )
    top.set_ylabel("energy per atom / eV")
    bottom.set_ylabel("share of E - E^(1)")
    bottom.set_xlabel("time / fs")
    top.legend(fontsize=8)
    fig.tight_layout()
    series = directory / "body_order_vs_time.png"
    fig.savefig(series, dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, max(1, k - 1), figsize=(3.2 * max(1, k - 1), 3), squeeze=False)
    for n in range(1, k):
        ax = axes[0, n - 1]
        values = trace.energies_per_atom_eV[:, n]
        ax.hist(values[np.isfinite(values)], bins=20)
        stats = order_statistics(trace, n + 1)
        if stats.n:
            top_y = ax.get_ylim()[1]
            ax.errorbar(
                [stats.mean],
                [0.5 * top_y],
                xerr=[stats.error if np.isfinite(stats.error) else 0.0],
                fmt="ko",
                capsize=4,
                label="mean +- error",
            )
            ax.legend(fontsize=7)
        ax.set_title(f"{n + 1}-body")
        ax.set_xlabel("energy per atom / eV")
    fig.tight_layout()
    histograms = directory / "body_order_distributions.png"
    fig.savefig(histograms, dpi=120)
    plt.close(fig)
    return [series, histograms]


def _n_atoms(trace: BodyOrderTrace) -> int:
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = trace.energies_eV[:, 0] / trace.energies_per_atom_eV[:, 0]
    ratio = ratio[np.isfinite(ratio)]
    return int(round(ratio[0])) if len(ratio) else 1


def share_ranges(
    traces_or_shares: Iterable[BodyOrderTrace | ArrayLike], margin: float = 0.0
) -> dict[int, tuple[float, float]]:
    """Range of each order's share (order -> (min, max)) seen in reference data.

    Accepts traces or arrays of shares (frames x K), e.g. the shares of the model's
    expansion on its training structures.
    """
    arrays = [
        t.shares if isinstance(t, BodyOrderTrace) else np.asarray(t) for t in traces_or_shares
    ]
    shares = np.concatenate(arrays, axis=0)
    out: dict[int, tuple[float, float]] = {}
    for n in range(1, shares.shape[1]):
        column = shares[:, n][np.isfinite(shares[:, n])]
        if len(column):
            width = column.max() - column.min()
            out[n + 1] = (
                float(column.min() - margin * width),
                float(column.max() + margin * width),
            )
    return out


#: what ``watch`` compares with its ranges: shares or energies per atom (eV/atom)
QUANTITIES = ("shares", "energies_per_atom")


def check_quantity(quantity: str) -> None:
    """``BodyOrderError`` unless ``quantity`` is one of :data:`QUANTITIES`."""
    if quantity not in QUANTITIES:
        raise BodyOrderError(f"quantity must be 'shares' or 'energies_per_atom', got {quantity!r}")


class WatchResult(list[str]):
    """What :func:`watch` found: the flag messages (this list of str), and what it
    checked: ``frames`` (monitored frames read), ``flagged_frames`` (frames with at least
    one value out of range), ``first_step`` and ``last_step`` of the frames read (None
    without frames), and ``run`` (the run's :class:`~ase_bodyorder.ipi.MDRun` when it
    was made by ``md``, as last read; None otherwise)."""

    def __init__(self, source: Path) -> None:
        super().__init__()
        self.source = source
        self.frames = 0
        self.flagged_frames = 0
        self.first_step: int | None = None
        self.last_step: int | None = None
        self.run: MDRun | None = None

    def summary(self) -> str:
        """One line: frames checked, their steps, frames flagged."""
        steps = f" (steps {self.first_step}..{self.last_step})" if self.frames else ""
        return (
            f"{self.source}: {self.frames} frame(s) checked{steps}, {self.flagged_frames} flagged"
        )


def _check_orders(ranges: dict[int, tuple[float, float]], trace: BodyOrderTrace) -> None:
    for order in ranges:
        if not 1 <= order <= trace.max_order:
            raise BodyOrderError(
                f"the ranges name order {order}, but {trace.source} holds orders "
                f"1..{trace.max_order}"
            )


def watch(
    run_dir: str | os.PathLike[str],
    ranges: dict[int, tuple[float, float]],
    *,
    interval_s: float = 2.0,
    timeout_s: float = 3600.0,
    idle_s: float = 60.0,
    stream: TextIO | None = None,
    quantity: str = "shares",
) -> WatchResult:
    """Follow a simulation and flag frames whose shares leave ``ranges``.

    ``run_dir``: an i-PI run directory, or the JSON-lines file of a
    :class:`~ase_bodyorder.monitor.BodyOrderLogger`. ``quantity``: ``"shares"``
    (E^(n) / (E - E^(1))) or ``"energies_per_atom"`` (E^(n) / N, eV/atom; robust where
    E - E^(1) comes close to zero). Polls every ``interval_s``, reading complete frames
    only; stops once a run made by ``md`` is no longer running (its ``run.json``) and
    its frames are read, after ``timeout_s``, or when no new frame arrived for
    ``idle_s``. Returns the flag messages (also printed) with what was checked
    (:class:`WatchResult`).

    Raises ``BodyOrderError`` when ``run_dir`` is missing or an empty directory, when it
    gave no frame to check, and when ``ranges`` name orders the trajectory lacks.
    """
    check_quantity(quantity)
    what = "share" if quantity == "shares" else "energy per atom (eV)"
    stream = sys.stdout if stream is None else stream
    source = check_source(run_dir)
    result = WatchResult(source)
    error = None
    start = last_new = time.monotonic()
    while True:
        run = run_manifest(source)  # before the frames: a finished run has written them all
        try:
            trace, error = load_trace(source), None
        except BodyOrderError as failure:
            trace, error = None, failure
        if trace is not None and len(trace) > result.frames:
            _check_orders(ranges, trace)
            values = trace.shares if quantity == "shares" else trace.energies_per_atom_eV
            for i in range(result.frames, len(trace)):
                step = int(trace.step[i])
                flagged = False
                for order, (low, high) in ranges.items():
                    value = values[i, order - 1]
                    if np.isfinite(value) and not low <= value <= high:
                        message = (
                            f"step {step}: {order}-body {what} {value:.4f} outside the "
                            f"training range [{low:.4f}, {high:.4f}]"
                        )
                        result.append(message)
                        print(message, file=stream, flush=True)
                        flagged = True
                result.flagged_frames += flagged
            result.frames = len(trace)
            result.first_step, result.last_step = int(trace.step[0]), int(trace.step[-1])
            last_new = time.monotonic()
        result.run = run
        now = time.monotonic()
        if (run is not None and run.status != "running") or now - start >= timeout_s:
            break
        if now - last_new >= idle_s:
            break
        time.sleep(interval_s)
    if result.frames == 0:
        why = f"the run is {run.status}" if run is not None else f"waited {now - start:.0f} s"
        said = f"; last reading: {error}" if error is not None else ""
        raise BodyOrderError(f"{source}: no monitored frames to check ({why}{said})")
    return result
