"""Reports of body-order statistics along a trajectory: tables, plots, a watch mode."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError
from .readers import BodyOrderTrace, read_ase_log, read_run
from .statistics import mean_and_error

__all__ = ["load_trace", "report_text", "share_ranges", "watch", "write_plots"]


def load_trace(source) -> BodyOrderTrace:
    """A run directory of i-PI (``simulation.out`` + extras) or a BodyOrderLogger file."""
    source = Path(source)
    if source.is_dir():
        return read_run(source)
    return read_ase_log(source)


def report_text(trace: BodyOrderTrace) -> str:
    """Mean and statistical error (from the autocorrelation time) of every order."""
    if len(trace) == 0:
        raise BodyOrderError(f"{trace.source}: no monitored frames yet")
    lines = [
        f"{trace.source}: {len(trace)} monitored frames, steps {trace.step[0]}..{trace.step[-1]}",
        f"{'order':>8} {'per atom/eV':>14} {'+-':>10} {'tau':>6} {'share':>9} {'+-':>8}",
    ]
    for n in range(trace.max_order):
        e = mean_and_error(trace.energies_per_atom_eV[:, n])
        share = mean_and_error(trace.shares[:, n])
        share_text = f"{share.mean:9.4f} {share.error:8.4f}" if share.n else f"{'-':>9} {'-':>8}"
        lines.append(f"{n + 1:>8} {e.mean:14.6f} {e.error:10.6f} {e.tau:6.1f} {share_text}")
    residual = mean_and_error(trace.residual_eV)
    lines.append(f"{'residual':>8} {residual.mean:14.6f} {residual.error:10.6f} (eV per cell)")
    for name, unit in (("temperature_K", "K"), ("conserved_eV", "eV")):
        if name in trace.properties:
            stats = mean_and_error(trace.properties[name])
            lines.append(
                f"{name}: {stats.mean:.4f} +- {stats.error:.4f} {unit} (tau {stats.tau:.1f} steps)"
            )
    if "conserved_eV" in trace.properties and len(trace.properties["conserved_eV"]) > 1:
        conserved = trace.properties["conserved_eV"]
        lines.append(
            f"conserved drift: {conserved[-1] - conserved[0]:+.6f} eV over "
            f"{len(conserved) - 1} steps"
        )
    return "\n".join(lines)


def write_plots(trace: BodyOrderTrace, directory) -> list[Path]:
    """PNG plots: energies and shares per order against time, and their distributions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    k = trace.max_order
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 6), sharex=True)
    for n in range(1, k):
        top.plot(trace.time_fs, trace.energies_per_atom_eV[:, n], label=f"{n + 1}-body")
        bottom.plot(trace.time_fs, trace.shares[:, n], label=f"{n + 1}-body")
    top.plot(trace.time_fs, trace.residual_eV / max(1, _n_atoms(trace)), "k--", label="residual")
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


def share_ranges(traces_or_shares, margin: float = 0.0) -> dict[int, tuple[float, float]]:
    """Range of each order's share (order -> (min, max)) seen in reference data.

    Accepts traces or arrays of shares (frames x K), e.g. the shares of the model's
    expansion on its training structures.
    """
    arrays = [
        t.shares if isinstance(t, BodyOrderTrace) else np.asarray(t) for t in traces_or_shares
    ]
    shares = np.concatenate(arrays, axis=0)
    out = {}
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


def watch(
    run_dir,
    ranges: dict[int, tuple[float, float]],
    *,
    interval_s: float = 2.0,
    timeout_s: float = 3600.0,
    idle_s: float = 60.0,
    stream=None,
    quantity: str = "shares",
) -> list[str]:
    """Follow a running simulation and flag frames whose shares leave ``ranges``.

    ``quantity``: ``"shares"`` (E^(n) / (E - E^(1))) or ``"energies_per_atom"``
    (E^(n) / N, eV/atom; robust where E - E^(1) comes close to zero). Polls ``run_dir``
    every ``interval_s``; stops after ``timeout_s`` or when no new frame arrived for
    ``idle_s``. Returns the flag messages (also printed).
    """
    check_quantity(quantity)
    what = "share" if quantity == "shares" else "energy per atom (eV)"
    stream = sys.stdout if stream is None else stream
    seen = set()
    flags = []
    start = last_new = time.monotonic()
    while time.monotonic() - start < timeout_s and time.monotonic() - last_new < idle_s:
        try:
            trace = read_run(run_dir)
        except BodyOrderError:
            trace = None
        if trace is not None:
            for i, step in enumerate(trace.step):
                if step in seen:
                    continue
                seen.add(int(step))
                last_new = time.monotonic()
                values = trace.shares if quantity == "shares" else trace.energies_per_atom_eV
                for order, (low, high) in ranges.items():
                    value = values[i, order - 1]
                    if np.isfinite(value) and not low <= value <= high:
                        message = (
                            f"step {step}: {order}-body {what} {value:.4f} outside the "
                            f"training range [{low:.4f}, {high:.4f}]"
                        )
                        flags.append(message)
                        print(message, file=stream, flush=True)
        time.sleep(interval_s)
    return flags
