"""The monitored frames of an i-PI run, expanded again atom by atom, as a chemiscope
dataset.

The driver's extras carry per-frame averages (E^(n)/N, shares, residual), not the
per-atom terms e_i^(n). :func:`write_run_chemiscope` reads the positions the run wrote
at its monitored steps (bead 0), expands them after the run with the run's model, order
and r_mbe (every atom: each has its e_i^(n)), and writes them with
:func:`~ase_bodyorder.chemiscope.write_chemiscope` as a trajectory, with each frame's
i-PI step and time as structure properties.
"""

from __future__ import annotations

import os
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..chemiscope import check_chemiscope_path, write_chemiscope
from ..decompose import BodyOrderResult, decompose_frames
from ..expansion import BodyOrderError
from ..models import load_model
from ..runs import MANIFEST, MDRun
from .pimd import _step
from .readers import read_run

__all__ = ["expand_run_frames", "write_run_chemiscope"]


def _evenly(count: int, most: int) -> np.ndarray:
    """Indices of at most ``most`` of ``count`` items, evenly spread, first and last kept."""
    if count <= most:
        return np.arange(count)
    return np.unique(np.round(np.linspace(0, count - 1, most)).astype(int))


def expand_run_frames(
    run_dir: str | os.PathLike[str], *, max_frames: int = 20, first_step: int = 0
) -> tuple[list[Atoms], list[BodyOrderResult], np.ndarray, np.ndarray]:
    """``(frames, results, steps, times_fs)``: at most ``max_frames`` monitored frames
    of the run at steps ``>= first_step`` (evenly spread over the run), each expanded in
    full with the run's driver settings (model, order, r_mbe; no atom sampling)."""
    if isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1:
        raise BodyOrderError(f"the number of frames must be a positive integer, got {max_frames}")
    run_dir = Path(run_dir)
    if not (run_dir / MANIFEST).is_file():
        raise BodyOrderError(
            f"{run_dir}: not a run directory of `ase-bodyorder md` (no {MANIFEST}); a "
            "chemiscope view of a run needs the positions it wrote"
        )
    run = MDRun.load(run_dir)
    trace = read_run(run_dir).from_step(first_step)
    by_step = {_step(atoms): atoms for atoms in ase.io.read(run.positions[0], ":")}
    monitored = [
        (int(step), float(time))
        for step, time in zip(trace.step, trace.time_fs, strict=True)
        if int(step) in by_step
    ]
    if not monitored:
        raise BodyOrderError(
            f"{run_dir}: no monitored step >= {first_step} with positions in {run.positions[0]}"
        )
    chosen = [monitored[k] for k in _evenly(len(monitored), max_frames)]
    frames = [by_step[step] for step, _ in chosen]
    for atoms in frames:
        atoms.info.clear()  # i-PI's comment fields are not properties of the view
    model, expansion = load_model(run.driver.model), run.driver.expansion
    results = list(decompose_frames(frames, model, order=expansion.order, r_mbe=expansion.r_mbe))
    steps = np.array([step for step, _ in chosen], dtype=float)
    times = np.array([time for _, time in chosen])
    return frames, results, steps, times


def write_run_chemiscope(
    run_dir: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    max_frames: int = 20,
    first_step: int = 0,
) -> Path:
    """Write the frames of :func:`expand_run_frames` as a chemiscope trajectory to
    ``path`` (``.json`` or ``.json.gz``): atoms coloured by e_i^(3) (or the highest
    order below), the map E^(3)/N (or E^(K)/N) against time; returns the path."""
    path = check_chemiscope_path(path)
    frames, results, steps, times = expand_run_frames(
        run_dir, max_frames=max_frames, first_step=first_step
    )
    driver = MDRun.load(run_dir).driver
    extra = {
        "step": {"target": "structure", "values": steps, "description": "i-PI step"},
        "time": {
            "target": "structure",
            "values": times,
            "units": "fs",
            "description": "simulation time of the frame",
        },
    }
    k = results[0].max_order
    return write_chemiscope(
        path,
        frames,
        results,
        name=f"{Path(run_dir).name}: body orders of {driver.model} along the run",
        description=(
            f"{len(frames)} monitored frames of the i-PI run {Path(run_dir).name} (model "
            f"{driver.model}, K = {driver.expansion.order}, r_mbe = {driver.expansion.r_mbe} "
            "Angstrom), each "
            "expanded in full after the run"
        ),
        properties=extra,
        axes=("time", f"E^({min(k, 3)})/N"),
        trajectory=True,
    )
