"""The steps of ``ase-bodyorder reference`` on periodic cells and MD frames as functions:
``periodic`` (DFT of sampled cells), ``cell-fragments`` (isolated sub-clusters cut from
cells), ``frames`` (the ab initio atom-resolved expansion of MD frames) and the reader of
the frame expansions that ``validation`` compares.

Each runs the jobs that the store (an ASE SQLite database, ``db``) does not hold yet
(:func:`~.executor.run_jobs`; ``executor``: its ``workers``, ``scheduler`` and
``retry_failed``), writes its outputs and returns what the command line prints.
Energies in eV, lengths in Angstrom.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ase.io

from ..expansion import BodyOrderError
from ..io import read_structures
from ..models.registry import load_model_spec
from ..structures import (
    CrossoverBulk,
    DenseBulk,
    cell_fragments,
    sample_bulk,
    sample_crossover_bulk,
)
from .executor import RunSummary, run_jobs
from .fragments import parse_sizes
from .frames import frame_jobs, frame_series, frame_totals, write_frame_totals
from .isolated import IsolatedDFT, cell_fragment_jobs, export_cell_fragments
from .periodic import PeriodicDFT, export_bulk, periodic_records, run_periodic
from .store import ReferenceStore

__all__ = [
    "FramesRun",
    "compute_cell_fragments",
    "compute_periodic_cells",
    "expand_frames",
    "read_frame_expansions",
]

#: how the frame expansions share sub-cluster energies among atoms (``reference frames``)
FRAMES_SHARING = (
    "reference and model_increment_share: each subset's many-body increment "
    "in equal parts to its members (docs/science.md section 10); *_equal_share: "
    "E(T)/|T| (leaks pair energy into E^(3) at finite r_mbe); model: the model's own "
    "atom energies (the monitor)"
)
#: the units of the frame expansions (``reference frames``)
FRAMES_UNITS = (
    "eV/atom: E^(n)/N (per_atom_mean_eV) with its atom-sampling standard "
    "error, and e_i^(n) of the expanded atoms (atom_terms_eV, one row per atom)"
)


def compute_periodic_cells(
    settings: PeriodicDFT,
    db,
    *,
    protocol: str = "dense",
    count: int = 300,
    seed: int = 3001,
    n_atoms: int = 16,
    dataset: str = "hbulk-high",
    out_dir=None,
    split_seed: int = 7,
    **executor: Any,
) -> tuple[RunSummary, dict | None]:
    """Periodic DFT of ``count`` cells of ``n_atoms`` atoms sampled from ``seed`` by the
    ``dense`` or ``crossover`` protocol, cheapest k-point meshes first (an interrupted
    run then holds as many cells as it can), into the store ``db``. With ``out_dir``:
    every sampled cell to ``{dataset}_cells.xyz`` there (the input of
    ``cell-fragments``) and the train/validation/test split of the cells done
    (:func:`~.periodic.export_bulk`). Returns the run and the split's metadata (None
    without ``out_dir``)."""
    if protocol == "crossover":
        cells = sample_crossover_bulk(CrossoverBulk(n_atoms=n_atoms), count, seed)
    else:
        cells = sample_bulk(DenseBulk(n_atoms=n_atoms), count, seed)
    store = ReferenceStore(db)
    order = sorted(cells, key=lambda a: math.prod(settings.kmesh(a.cell, len(a))))
    summary = run_periodic(order, store, settings, dataset=dataset, **executor)
    if out_dir is None:
        return summary, None
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    ase.io.write(Path(out_dir) / f"{dataset}_cells.xyz", cells, format="extxyz")
    records = periodic_records(store, cells, dataset, settings)
    return summary, export_bulk(cells, records, dataset, out_dir, settings, split_seed=split_seed)


def compute_cell_fragments(
    cells_file,
    db,
    output,
    *,
    dataset: str | None = None,
    sizes: str = "1..4",
    per_cell: int = 20,
    radius: float = 2.5,
    seed: int = 0,
    command: str = "",
    **executor: Any,
) -> tuple[RunSummary, dict]:
    """Isolated sub-clusters of ``sizes`` (e.g. ``1..4``) cut from the periodic cells of
    ``cells_file`` (``per_cell`` of size 2+ per cell, neighbours of the centre within
    ``radius`` Angstrom, drawn from ``seed``), computed at the cells' level of theory
    (:class:`~.isolated.IsolatedDFT`) into the store ``db`` and written to ``output``
    (:func:`~.isolated.export_cell_fragments`, with ``command``). ``dataset``: default
    the file stem. Returns the run and the provenance."""
    cells = read_structures(cells_file)
    if not all(atoms.pbc.all() for atoms in cells):
        raise BodyOrderError(f"{cells_file}: cell-fragments cuts from periodic cells only")
    dataset = dataset or Path(cells_file).stem
    fragments = cell_fragments(cells, tuple(parse_sizes(sizes)), per_cell, radius, seed)
    if not fragments:
        raise BodyOrderError(
            f"no fragment of sizes {sizes} in {cells_file}: no atom has enough "
            f"neighbours within {radius:g} Angstrom (nothing computed or written)"
        )
    calculation = IsolatedDFT()
    store = ReferenceStore(db)
    summary = run_jobs(
        cell_fragment_jobs(fragments, dataset, calculation),
        store,
        label=f"cell fragments {dataset}",
        **executor,
    )
    meta = export_cell_fragments(
        store, fragments, dataset, calculation, output, command=command, cells_file=cells_file
    )
    return summary, meta


@dataclass(frozen=True)
class FramesRun:
    """What :func:`expand_frames` did: the distinct sub-cluster ``jobs``, their run, the
    sub-cluster totals written (``totals``, 0 without a totals file) and the frames."""

    jobs: int
    summary: RunSummary
    totals: int
    frames: int


def expand_frames(
    trajectory,
    db,
    output,
    *,
    r_mbe: float,
    index: str = ":",
    order: int = 3,
    sample_atoms: int | None = None,
    seed: int = 0,
    model: str | None = None,
    totals=None,
    command: str = "",
    **executor: Any,
) -> FramesRun:
    """The ab initio atom-resolved expansion of the frames ``index`` of ``trajectory``
    (order ``order``, radius ``r_mbe`` Angstrom, ``sample_atoms`` atoms per frame drawn
    from ``seed``): isolated LDA sub-clusters into the store ``db``
    (:mod:`.frames`), then E^(n)/N per frame to ``output`` (JSON), beside the model's
    (``model``: NAME or LABEL=PATH, loaded before any job runs). ``totals``: also write
    the sub-cluster totals there (:func:`~.frames.write_frame_totals`, with ``command``
    in their provenance)."""
    frames = read_structures(trajectory, index)
    calculation = IsolatedDFT(forces=False)
    options = {"order": order, "r_mbe": r_mbe, "sample_atoms": sample_atoms, "seed": seed}
    loaded = None if model is None else load_model_spec(model)[1]  # a bad name fails at once
    store = ReferenceStore(db)
    jobs = frame_jobs(frames, calculation, **options)
    summary = run_jobs(jobs, store, label="frame sub-clusters", **executor)
    found = frame_totals(frames, store, calculation, **options)
    meta = {
        "trajectory": trajectory,
        "index": index,
        "calculation": {"method": calculation.method, **calculation.to_dict()},
        **options,
    }
    if totals is not None:
        write_frame_totals(totals, found, {**meta, "command": command})
    out = {
        **meta,
        "model": None if model is None else model.partition("=")[0],
        "sharing": FRAMES_SHARING,
        "units": FRAMES_UNITS,
        "frames": frame_series(frames, found, loaded, **options),
    }
    Path(output).write_text(json.dumps(out, indent=1) + "\n")
    written = 0 if totals is None else sum(map(len, found))
    return FramesRun(jobs=len(jobs), summary=summary, totals=written, frames=len(frames))


def read_frame_expansions(cases: list[str]) -> dict[str, dict]:
    """``{label: expansions}`` of ``LABEL=FILE.json`` items, each file written by
    :func:`expand_frames` with a model (what ``reference validation`` compares)."""
    out = {}
    for item in cases:
        label, _, path = item.partition("=")
        if not path:
            raise BodyOrderError(f"case {item!r}: write LABEL=FILE.json")
        try:
            out[label] = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise BodyOrderError(f"cannot read the frame expansions of {path}: {error}") from None
    return out
