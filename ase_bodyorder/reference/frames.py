"""The ab initio atom-resolved expansion of MD frames, to validate a model's monitor.

The monitor expands a model's energy over the isolated sub-clusters of each frame (the
atom-resolved expansion, ``docs/science.md`` sections 2 and 8). Its ab initio
counterpart evaluates the same sub-clusters, for the same order K, radius r_mbe and
(with atom sampling) the same atoms, with an electronic-structure method, each
distinct sub-cluster once, through the resumable store and executor of the reference
pipeline.

An electronic-structure method gives the total energy E(T) of a sub-cluster T, not
atom energies. The reference expansion therefore shares each total equally among its
atoms, e_i(T) = E(T)/|T|. Summed over the atoms of a complete expansion of a cluster,
any sharing gives the same E^(n) (the cluster MBE); per atom, and at finite r_mbe where
an n-body set counts from each of its atoms whose radius holds the others, the sharing
matters. :class:`EqualShare` applies the same sharing to a model, so that model and
reference are compared under one definition; the model's own sharing (what the monitor
reports) is the model's ``decompose``.

Steps: :func:`frame_jobs` lists the sub-clusters (one :class:`~.executor.Job` each,
centred, so that repeated shapes, such as the single atoms, are one job);
:func:`~.executor.run_jobs` computes them into a :class:`~.store.ReferenceStore`;
:func:`frame_expansions` assembles each frame's :class:`~ase_bodyorder.BodyOrderResult`.
Energies in eV, lengths in Angstrom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms

from ..decompose import BodyOrderResult, decompose, frame_settings
from ..expansion import BodyOrderError
from ..models.base import AtomicModel, FragmentBatch, Model, SystemResult
from .executor import Job
from .store import ReferenceStore

__all__ = [
    "EqualShare",
    "StoredEnergies",
    "fragment_job",
    "frame_expansions",
    "frame_jobs",
    "model_expansions",
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


class _Collector(AtomicModel):
    """Records the sub-clusters an expansion evaluates (and gives them zero energy)."""

    cutoff = math.inf

    def __init__(self) -> None:
        self.fragments: list[tuple[np.ndarray, np.ndarray]] = []

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        positions = batch.positions.detach().cpu().numpy()
        for a, b in zip(batch.offsets[:-1], batch.offsets[1:], strict=True):
            self.fragments.append((np.asarray(batch.numbers[a:b]), positions[a:b].copy()))
        return torch.zeros(len(batch.numbers), dtype=batch.positions.dtype)

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        return SystemResult(energy=0.0, energies=np.zeros(len(atoms)))


def _no_system(atoms: Atoms) -> SystemResult:
    """A whole-structure result without a total: the residual is then NaN."""
    return SystemResult(energy=math.nan, energies=np.full(len(atoms), math.nan))


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
    """One job per distinct sub-cluster of the expansions of ``frames``.

    The sub-clusters are those :func:`~ase_bodyorder.decompose` evaluates for order
    ``order``, radius ``r_mbe`` (Angstrom) and, with ``sample_atoms``, the atoms drawn
    from ``seed`` (as :func:`~ase_bodyorder.decompose.decompose_frames` draws them),
    without screening (an electronic-structure method has no cutoff).
    """
    if sample_atoms is not None and seed is None:
        raise BodyOrderError("an atom-sampled frame expansion needs a seed (to draw it again)")
    jobs: dict[str, Job] = {}
    for k, (atoms, own) in enumerate(
        zip(
            frames,
            frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed),
            strict=True,
        )
    ):
        collector = _Collector()
        decompose(atoms, collector, r_mbe=r_mbe, system=_no_system(atoms), **own)
        for numbers, positions in collector.fragments:
            job = fragment_job(numbers, positions, calculation, {"dataset": dataset, "frame": k})
            jobs.setdefault(job.content_key, job)
    return list(jobs.values())


class StoredEnergies(AtomicModel):
    """Atom energies of sub-clusters from stored reference totals, shared equally.

    ``energies``: ``{content_key: E (eV)}`` of :func:`fragment_job` jobs of
    ``calculation``. A sub-cluster missing from it is an error naming it. Evaluation
    only: no forces (the totals are numbers, not functions of the positions).
    """

    cutoff = math.inf

    def __init__(self, energies: dict[str, float], calculation) -> None:
        self.energies = dict(energies)
        self.calculation = calculation

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        if batch.positions.requires_grad:
            raise BodyOrderError("stored reference energies have no forces; expand without them")
        positions = batch.positions.detach().cpu().numpy()
        out = np.empty(len(batch.numbers))
        for a, b in zip(batch.offsets[:-1], batch.offsets[1:], strict=True):
            job = fragment_job(batch.numbers[a:b], positions[a:b], self.calculation)
            energy = self.energies.get(job.content_key)
            if energy is None:
                raise BodyOrderError(
                    f"the reference energy of a {b - a}-atom sub-cluster is not in the store "
                    "(compute the frame's jobs first: frame_jobs, then run_jobs)"
                )
            out[a:b] = energy / (b - a)
        return torch.as_tensor(out, dtype=batch.positions.dtype)

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        return _no_system(atoms)


class EqualShare(AtomicModel):
    """``model`` with each sub-cluster's total shared equally among its atoms.

    The model's total energies are unchanged; only the atom energies are replaced by
    E(T)/|T|, the sharing of :class:`StoredEnergies`. No screening (like the
    reference), so that both expand the same sub-clusters.
    """

    cutoff = math.inf

    def __init__(self, model: AtomicModel) -> None:
        if not isinstance(model, AtomicModel):
            raise BodyOrderError(f"EqualShare needs an atomic model, got {model!r}")
        self.model = model
        self.atomic_numbers = model.atomic_numbers
        self.dtype = model.dtype

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        energies = self.model.fragment_energies(batch)
        sizes = torch.as_tensor(np.diff(batch.offsets), dtype=torch.long)
        owner = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
        totals = torch.zeros(len(sizes), dtype=energies.dtype).index_add(0, owner, energies)
        return (totals / sizes.to(energies.dtype))[owner]

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        result = self.model.system(atoms, forces=forces, stress=stress)
        share = np.full(len(atoms), result.energy / len(atoms))
        return SystemResult(result.energy, share, result.forces, result.stress)


def frame_expansions(
    frames: Sequence[Atoms],
    store: ReferenceStore,
    calculation,
    *,
    order: int,
    r_mbe: float | None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    totals_eV: Sequence[float] | None = None,
) -> list[BodyOrderResult]:
    """The reference expansion of each frame, from the sub-cluster energies in ``store``.

    Same arguments as :func:`frame_jobs` (whose jobs must be done). ``totals_eV``: the
    reference energies of the whole frames, if known (then the residual is
    ``E - sum_n E^(n)``; otherwise NaN).
    """
    jobs = frame_jobs(
        frames, calculation, order=order, r_mbe=r_mbe, sample_atoms=sample_atoms, seed=seed
    )
    records = store.matching_records(jobs)
    missing = len(jobs) - len(records)
    if missing:
        raise BodyOrderError(
            f"{store.path}: {missing} of the {len(jobs)} sub-cluster jobs of these frames are "
            "not done (run them with run_jobs, or `ase-bodyorder reference frames`)"
        )
    model = StoredEnergies({key: r["energy_eV"] for key, r in records.items()}, calculation)
    out = []
    settings = frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed)
    for k, (atoms, own) in enumerate(zip(frames, settings, strict=True)):
        system = _no_system(atoms)
        if totals_eV is not None:
            total = float(totals_eV[k])
            system = SystemResult(energy=total, energies=np.full(len(atoms), total / len(atoms)))
        out.append(decompose(atoms, model, r_mbe=r_mbe, system=system, **own))
    return out


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
