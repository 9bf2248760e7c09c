"""The ab initio atom-resolved expansion of MD frames, to validate a model's monitor.

The monitor expands a model's energy over the isolated sub-clusters of each frame (the
atom-resolved expansion, ``docs/science.md`` sections 2 and 8). Its ab initio
counterpart evaluates the same sub-clusters, for the same order K, radius r_mbe and
(with atom sampling) the same atoms, with an electronic-structure method, each
distinct sub-cluster once, through the resumable store and executor of the reference
pipeline.

An electronic-structure method gives the total energy E(T) of a sub-cluster T, not
atom energies. The reference expansion shares each total among its atoms by
**increments** (``docs/science.md`` section 10): every subset S of T contributes its
many-body increment eps(S) = sum_{R subset of S} (-1)^(|S|-|R|) E(R) in equal parts to
its |S| members,

    e_i(T) = sum over S subset of T with i in S of eps(S) / |S|

(the Shapley value of atom i in the energies of T's subsets). Then the atom-resolved
n-body term of atom i is sum over its (n-1)-neighbour sets U of eps(U + {i}) / n: it is
built from n-body increments only, so a pair potential has no third order whatever the
truncation (r_mbe, atom sampling), and a complete expansion of a cluster gives the
cluster MBE. The former definition, equal shares e_i(T) = E(T)/|T| (``sharing="equal"``),
puts pair energy into E^(3) at finite r_mbe: a triple counted from atom i alone gives
e_i^(3) = v_jk/3 - v_ij/6 - v_ik/6 for a pair potential v. It is kept for comparison.

:class:`IncrementShare` applies a sharing to a model, so that model and reference are
compared under one definition; the model's own sharing (what the monitor reports) is
the model's ``decompose``.

Steps: :func:`frame_jobs` lists the sub-clusters (the plan's, and every subset of each,
which the increments need; one :class:`~.executor.Job` each, centred, so that repeated
shapes, such as the single atoms, are one job); :func:`~.executor.run_jobs` computes
them into a :class:`~.store.ReferenceStore`; :func:`frame_totals` reads each frame's
sub-cluster totals by label (what is shipped); :func:`expansions_from_totals`
assembles each frame's :class:`~ase_bodyorder.BodyOrderResult` from them.
Energies in eV, lengths in Angstrom.
"""

from __future__ import annotations

import gzip
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from ..decompose import BodyOrderResult, decompose, draw_atom_sample, frame_settings, plan_for
from ..expansion import BodyOrderError, parse_subcluster_label, subcluster_label
from ..io import atomic_path
from ..models.base import AtomicModel, FragmentBatch, Model, SystemResult
from ..models.sharing import (
    SHARINGS,
    IncrementShare,
    check_sharing,
    increment_share_weights,
    share_energies,
)
from .executor import Job
from .store import ReferenceStore

__all__ = [
    "SHARINGS",
    "SERIES",
    "IncrementShare",
    "StoredEnergies",
    "expansions_from_totals",
    "fragment_job",
    "frame_expansions",
    "frame_jobs",
    "frame_series",
    "frame_subclusters",
    "frame_totals",
    "increment_share_weights",
    "model_expansions",
    "read_frame_totals",
    "shape_key",
    "share_energies",
    "write_frame_totals",
]


def fragment_job(numbers, positions, calculation, meta: dict | None = None) -> Job:
    """The job of one isolated sub-cluster, translated so that its centroid is at 0.

    The energy of an isolated cluster does not depend on where it is, so centring makes
    the same shape one job wherever (and in whichever periodic image) it sits.
    """
    numbers = np.asarray(numbers, dtype=np.int64)
    positions = np.asarray(positions, dtype=np.float64)
    centred = positions - positions.mean(axis=0)
    label = "-".join(str(int(z)) for z in numbers)
    return Job(
        f"fragment/{len(numbers)}/{label}/{calculation.method}",
        numbers.copy(),
        centred,
        calculation,
        {"kind": "frame-fragment", "size": len(numbers), **(meta or {})},
    )


def _no_system(atoms: Atoms) -> SystemResult:
    """A whole-structure result without a total: the residual is then NaN."""
    return SystemResult(energy=math.nan, energies=np.full(len(atoms), math.nan))


def shape_key(numbers, positions) -> bytes:
    """Key of an isolated sub-cluster's geometry: species and centred positions to
    1e-6 Angstrom (the energy does not depend on where the sub-cluster sits)."""
    positions = np.asarray(positions, dtype=np.float64)
    centred = np.round(positions - positions.mean(axis=0), 6) + 0.0  # + 0.0: no -0.0
    return np.asarray(numbers, dtype=np.int64).tobytes() + centred.tobytes()


def _frame_plan(atoms: Atoms, own: dict, r_mbe: float | None):
    """The plan :func:`~ase_bodyorder.decompose` makes for ``own`` (one frame's
    :func:`~ase_bodyorder.decompose.frame_settings`), without screening."""
    centres = None
    if own.get("sample_atoms") is not None:
        centres = draw_atom_sample(len(atoms), own["sample_atoms"], own["seed"])
    return plan_for(
        atoms, StoredEnergies({}), max_order=own["max_order"], r_mbe=r_mbe, centres=centres
    )


def frame_subclusters(
    frames: Sequence[Atoms],
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per frame, ``{label: (numbers, positions)}`` of every sub-cluster whose total the
    expansion needs: those :func:`~ase_bodyorder.decompose` evaluates for order ``order``,
    radius ``r_mbe`` (Angstrom) and, with ``sample_atoms``, the atoms drawn from ``seed``
    (as :func:`~ase_bodyorder.decompose.decompose_frames` draws them), without screening
    (an electronic-structure method has no cutoff), and every subset of each (the
    increments need them). Labels are :func:`~ase_bodyorder.expansion.subcluster_label`
    with the first atom in the home cell."""
    if sample_atoms is not None and seed is None:
        raise BodyOrderError("an atom-sampled frame expansion needs a seed (to draw it again)")
    out = []
    settings = frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed)
    for atoms, own in zip(frames, settings, strict=True):
        needed: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        numbers = atoms.numbers
        for sub in _frame_plan(atoms, own, r_mbe).subclusters():
            m = len(sub.atoms)
            for mask in range(1, 1 << m):
                members = [b for b in range(m) if mask >> b & 1]
                shifts = sub.shifts[members] - sub.shifts[members[0]]
                label = subcluster_label(sub.atoms[members], shifts)
                if label not in needed:
                    needed[label] = (numbers[sub.atoms[members]], sub.positions[members])
        out.append(needed)
    return out


def frame_jobs(
    frames: Sequence[Atoms],
    calculation,
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    dataset: str = "frames",
) -> list[Job]:
    """One job per distinct sub-cluster geometry of :func:`frame_subclusters` (same
    arguments), for ``calculation``."""
    needed = frame_subclusters(
        frames, order=order, r_mbe=r_mbe, sample_atoms=sample_atoms, seed=seed
    )
    jobs, _ = _jobs_and_keys(needed, calculation, dataset)
    return list(jobs.values())


def _jobs_and_keys(
    needed: list[dict[str, tuple[np.ndarray, np.ndarray]]], calculation, dataset: str = "frames"
) -> tuple[dict[str, Job], list[dict[str, str]]]:
    """The distinct jobs of ``needed`` (:func:`frame_subclusters`) by content key, and per
    frame the content key of each label."""
    jobs: dict[str, Job] = {}
    keys = []
    for k, subclusters in enumerate(needed):
        frame_keys = {}
        for label, (numbers, positions) in subclusters.items():
            job = fragment_job(numbers, positions, calculation, {"dataset": dataset, "frame": k})
            jobs.setdefault(job.content_key, job)
            frame_keys[label] = job.content_key
        keys.append(frame_keys)
    return jobs, keys


class StoredEnergies(AtomicModel):
    """Atom energies of sub-clusters from known totals, shared by ``sharing``.

    ``totals``: ``{shape_key(numbers, positions): E (eV)}`` of every sub-cluster (and,
    for ``"increment"``, every subset of each) that an expansion evaluates. A missing
    sub-cluster is an error naming its size. Evaluation only: no forces (the totals are
    numbers, not functions of the positions).
    """

    cutoff = math.inf

    def __init__(self, totals: dict[bytes, float], sharing: str = "increment") -> None:
        self.totals = dict(totals)
        self.sharing = check_sharing(sharing)

    def _lookup(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        positions = batch.positions.detach().cpu().numpy()
        out = np.empty(batch.n_fragments)
        for f, (a, b) in enumerate(zip(batch.offsets[:-1], batch.offsets[1:], strict=True)):
            energy = self.totals.get(shape_key(batch.numbers[a:b], positions[a:b]))
            if energy is None:
                raise BodyOrderError(
                    f"the reference energy of a {b - a}-atom sub-cluster is not known "
                    "(compute the frame's jobs first: frame_jobs, then run_jobs)"
                )
            out[f] = energy
        return torch.as_tensor(out, dtype=torch.float64)

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        if batch.positions.requires_grad:
            raise BodyOrderError("stored reference energies have no forces; expand without them")
        return share_energies(batch, self._lookup, self.sharing)

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        return _no_system(atoms)


def frame_totals(
    frames: Sequence[Atoms],
    store: ReferenceStore,
    calculation,
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
) -> list[dict[str, float]]:
    """Per frame, ``{label: E (eV)}`` of the sub-clusters of :func:`frame_subclusters`
    from ``store`` (the jobs of :func:`frame_jobs` for ``calculation`` must be done)."""
    needed = frame_subclusters(
        frames, order=order, r_mbe=r_mbe, sample_atoms=sample_atoms, seed=seed
    )
    jobs, keys = _jobs_and_keys(needed, calculation)
    records = store.matching_records(list(jobs.values()))
    missing = len(jobs) - len(records)
    if missing:
        raise BodyOrderError(
            f"{store.path}: {missing} of the {len(jobs)} sub-cluster jobs of these frames are "
            "not done (run them with run_jobs, or `ase-bodyorder reference frames`)"
        )
    return [
        {label: float(records[key]["energy_eV"]) for label, key in frame_keys.items()}
        for frame_keys in keys
    ]


def _positions_of(atoms: Atoms, label: str) -> tuple[np.ndarray, np.ndarray]:
    indices, shifts = parse_subcluster_label(label)
    if indices.max(initial=-1) >= len(atoms):
        raise BodyOrderError(f"sub-cluster {label!r} names an atom beyond the frame's {len(atoms)}")
    return atoms.numbers[indices], atoms.positions[indices] + shifts @ np.asarray(atoms.cell)


def expansions_from_totals(
    frames: Sequence[Atoms],
    totals: Sequence[dict[str, float]],
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    sharing: str = "increment",
    totals_eV: Sequence[float] | None = None,
) -> list[BodyOrderResult]:
    """The expansion of each frame from its sub-cluster totals by label (those of
    :func:`frame_totals`, or read back from a shipped file), shared by ``sharing``.

    ``totals_eV``: the reference energies of the whole frames, if known (then the
    residual is ``E - sum_n E^(n)``; otherwise NaN).
    """
    if len(totals) != len(frames):
        raise BodyOrderError(f"{len(totals)} sets of sub-cluster totals for {len(frames)} frames")
    out = []
    settings = frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed)
    for k, (atoms, own) in enumerate(zip(frames, settings, strict=True)):
        known = {
            shape_key(*_positions_of(atoms, label)): energy for label, energy in totals[k].items()
        }
        system = _no_system(atoms)
        if totals_eV is not None:
            total = float(totals_eV[k])
            system = SystemResult(energy=total, energies=np.full(len(atoms), total / len(atoms)))
        model = StoredEnergies(known, sharing)
        out.append(decompose(atoms, model, r_mbe=r_mbe, system=system, **own))
    return out


def frame_expansions(
    frames: Sequence[Atoms],
    store: ReferenceStore,
    calculation,
    *,
    sharing: str = "increment",
    totals_eV: Sequence[float] | None = None,
    **options: Any,
) -> list[BodyOrderResult]:
    """The reference expansion of each frame, from the sub-cluster energies in ``store``:
    :func:`frame_totals` then :func:`expansions_from_totals`. ``options``: ``order``,
    ``r_mbe`` and, for atom sampling, ``sample_atoms`` and ``seed``, as in
    :func:`frame_subclusters`."""
    totals = frame_totals(frames, store, calculation, **options)
    return expansions_from_totals(frames, totals, sharing=sharing, totals_eV=totals_eV, **options)


def model_expansions(
    frames: Sequence[Atoms],
    model: Model,
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
) -> list[BodyOrderResult]:
    """``model``'s expansions of the same frames and atoms as :func:`frame_expansions`."""
    return [
        decompose(atoms, model, r_mbe=r_mbe, **own)
        for atoms, own in zip(
            frames,
            frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed),
            strict=True,
        )
    ]


#: the series of a frame validation: name -> (what is expanded, sharing)
SERIES = {
    "reference": ("reference", "increment"),
    "reference_equal_share": ("reference", "equal"),
    "model": ("model", None),
    "model_increment_share": ("model", "increment"),
    "model_equal_share": ("model", "equal"),
}


def _summary(result: BodyOrderResult) -> dict:
    atoms = np.arange(result.n_atoms) if result.sample_indices is None else result.sample_indices
    assert result.energies_per_atom_eV is not None  # atomic models give them
    return {
        "per_atom_mean_eV": result.energies_per_atom_mean_eV.tolist(),
        "per_atom_stderr_eV": result.energies_per_atom_stderr_eV.tolist(),
        "atoms": atoms.tolist(),
        "atom_terms_eV": result.energies_per_atom_eV[atoms].tolist(),
    }


def frame_series(
    frames: Sequence[Atoms],
    totals: Sequence[dict[str, float]],
    model: Model | None = None,
    **options: Any,
) -> list[dict[str, dict]]:
    """Per frame, the summary (E^(n)/N, its standard error, the expanded atoms and their
    e_i^(n), eV) of every series of :data:`SERIES`: the reference from ``totals`` by
    increments and by equal shares, and, with ``model``, its own expansion (the monitor's)
    and its totals shared both ways. ``options``: order, r_mbe, sample_atoms, seed."""
    results = {
        name: expansions_from_totals(frames, totals, sharing=sharing, **options)
        for name, (kind, sharing) in SERIES.items()
        if kind == "reference"
    }
    if model is not None:
        results["model"] = model_expansions(frames, model, **options)
        for name, (kind, sharing) in SERIES.items():
            if kind == "model" and sharing is not None:
                results[name] = model_expansions(frames, IncrementShare(model, sharing), **options)
    return [{name: _summary(results[name][k]) for name in results} for k in range(len(frames))]


def write_frame_totals(path, totals: Sequence[dict[str, float]], meta: dict) -> None:
    """Write the sub-cluster totals of frames (labels and energies, eV, per frame) with
    ``meta`` (trajectory, index, calculation, settings, command) as gzipped JSON,
    through a temporary file (:func:`~ase_bodyorder.io.atomic_path`)."""
    payload = {
        **meta,
        "units": "energy_eV: total energy (eV) of the isolated sub-cluster of each label "
        "(ase_bodyorder.expansion.subcluster_label: atom indices in the frame, integer "
        "cell shifts in brackets)",
        "frames": [
            {"labels": list(frame), "energy_eV": [frame[label] for label in frame]}
            for frame in totals
        ],
    }
    # the gzip header names the file ``<name>.tmp`` and carries the time, as it always has
    with atomic_path(path) as tmp, tmp.open("wb") as raw:
        header_name = f"{Path(path).name}.tmp"
        with (
            gzip.GzipFile(header_name, "wb", fileobj=raw) as packed,
            io.TextIOWrapper(packed, encoding="utf-8") as handle,
        ):
            json.dump(payload, handle)


def read_frame_totals(path) -> tuple[dict, list[dict[str, float]]]:
    """``(meta, totals)`` of a file of :func:`write_frame_totals`."""
    try:
        with gzip.open(path, "rt") as handle:
            payload = json.load(handle)
        totals = [
            dict(zip(frame["labels"], frame["energy_eV"], strict=True))
            for frame in payload.pop("frames")
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise BodyOrderError(f"{path}: not a file of sub-cluster totals ({error})") from None
    return payload, totals
