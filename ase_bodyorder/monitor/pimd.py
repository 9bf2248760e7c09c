"""Body-order statistics of a path-integral run: per bead, averaged over the beads, and
of the centroid.

The drivers expand every bead of every monitored step (the bead files
``simulation.bo*_<k>``). The quantum average of E^(n)/N is the average over the beads;
the centroid (the beads' mean positions, ``simulation.xc.extxyz``, written at the
monitored steps) is a classical-like structure whose expansion is computed here, after
the run, with the run's model, order, radius and atom sampling. The difference between
the two shows how much the quantum spread of the protons changes each order.
Energies in eV/atom.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..decompose import decompose_frames
from ..expansion import BodyOrderError
from ..models import load_model
from ..runs import CENTROID_FILE, MDRun
from .readers import read_run
from .statistics import SeriesStatistics, mean_and_error

__all__ = ["centroid_statistics", "pimd_statistics", "pimd_text"]


def _per_order(series: np.ndarray, stderr: np.ndarray | None) -> list[SeriesStatistics]:
    return [
        mean_and_error(series[:, n], stderr=None if stderr is None else stderr[:, n])
        for n in range(series.shape[1])
    ]


def pimd_statistics(run_dir: str | os.PathLike[str], nbeads: int, first_step: int = 0) -> dict:
    """``{"beads": [per-order statistics of bead k, ...], "bead_average": [...]}`` over
    the frames at steps ``>= first_step``.

    The bead average is taken frame by frame (frames monitored on every bead), then
    averaged in time; its atom-sampling error per frame is the beads' errors combined
    (``sqrt(sum se^2) / P``; the beads draw their atoms independently).
    """
    traces = [read_run(run_dir, bead=k).from_step(first_step) for k in range(nbeads)]
    common = sorted(set.intersection(*(set(t.step.tolist()) for t in traces)))
    if not common:
        raise BodyOrderError(f"{run_dir}: no step >= {first_step} monitored on all {nbeads} beads")
    rows, errors = [], []
    for trace in traces:
        keep = np.isin(trace.step, common)
        rows.append(trace.energies_per_atom_eV[keep])
        stderr = trace.energies_per_atom_stderr_eV
        errors.append(np.zeros_like(rows[-1]) if stderr is None else stderr[keep])
    stacked, stacked_errors = np.stack(rows), np.stack(errors)  # (P, F, K)
    average = stacked.mean(axis=0)
    average_error = np.sqrt((stacked_errors**2).sum(axis=0)) / nbeads
    return {
        "steps": common,
        "beads": [
            _per_order(trace.energies_per_atom_eV, trace.energies_per_atom_stderr_eV)
            for trace in traces
        ],
        "bead_average": _per_order(average, average_error),
    }


def centroid_statistics(
    run_dir: str | os.PathLike[str], steps: Sequence[int] | None = None
) -> list[SeriesStatistics]:
    """Per-order statistics of the centroid's E^(n)/N: the centroid frames of the run
    (at ``steps``, default every frame of ``simulation.xc.extxyz``) expanded with the
    run's driver settings (model, order, r_mbe, atom sampling and its seed)."""
    run = MDRun.load(run_dir)
    path = Path(run.run_dir) / CENTROID_FILE
    if not path.is_file():
        raise BodyOrderError(
            f"{path} not found: the run wrote no centroid positions (path-integral runs of "
            "this version write them at the monitored steps)"
        )
    frames = [_centroid_frame(atoms) for atoms in ase.io.read(path, ":")]
    if steps is not None:
        by_step = {_step(a): a for a in frames}
        frames = [by_step[s] for s in steps if s in by_step]
    if not frames:
        raise BodyOrderError(f"{path}: no centroid frame at the monitored steps")
    expansion = run.driver.expansion
    model = load_model(run.driver.model)
    sample = expansion.sample_atoms
    seed = None if sample is None else expansion.seed  # it seeds a sample, if any
    results = list(
        decompose_frames(
            frames,
            model,
            order=expansion.order,
            r_mbe=expansion.r_mbe,
            sample_atoms=sample,
            seed=seed,
        )
    )
    means = np.array([r.energies_per_atom_mean_eV for r in results])
    stderr = np.array([r.energies_per_atom_stderr_eV for r in results])
    return _per_order(means, stderr)


def _centroid_frame(atoms: Atoms) -> Atoms:
    """i-PI's ``ase`` format writes the centroid as an ``x_centroid`` column beside zero
    positions: make it the positions (Angstrom)."""
    if "x_centroid" in atoms.arrays:
        atoms.positions = atoms.arrays.pop("x_centroid")
    return atoms


def _step(atoms: Atoms) -> int:
    """i-PI's step of an extxyz frame (its ``ipi_comment``: ``Step: N ...``)."""
    comment = str(atoms.info.get("ipi_comment", ""))
    try:
        return int(comment.split("Step:")[1].split()[0])
    except (IndexError, ValueError):
        raise BodyOrderError(f"an i-PI frame without a step in its comment: {comment!r}") from None


def pimd_text(
    run_dir: str | os.PathLike[str], nbeads: int, centroid: bool = False, first_step: int = 0
) -> str:
    """A table of E^(n)/N (eV/atom) per bead, averaged over the beads and (``centroid``)
    of the centroid, with their errors, over the frames at steps ``>= first_step``."""
    stats = pimd_statistics(run_dir, nbeads, first_step)
    rows = [(f"bead {k}", s) for k, s in enumerate(stats["beads"])]
    rows.append(("bead average", stats["bead_average"]))
    if centroid:
        rows.append(("centroid", centroid_statistics(run_dir, stats["steps"])))
    orders = len(stats["bead_average"])
    header = f"{'':>13}" + "".join(
        f" {'E^(' + str(n + 1) + ')/N':>12} {'+-':>8}" for n in range(orders)
    )
    lines = [f"path integrals, {nbeads} beads, {len(stats['steps'])} frames (eV/atom)", header]
    for label, per_order in rows:
        cells = "".join(f" {s.mean:12.5f} {s.error:8.5f}" for s in per_order)
        lines.append(f"{label:>13}{cells}")
    return "\n".join(lines)
