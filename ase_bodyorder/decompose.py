"""Plan -> evaluate -> assemble: the body-order decomposition of one structure
(:func:`decompose`) or of the frames of a trajectory (:func:`decompose_frames`).

The result is :class:`~ase_bodyorder.result.BodyOrderResult`, the evaluation
:mod:`ase_bodyorder.evaluate`, atom sampling :mod:`ase_bodyorder.sampling`; their public
names are importable from here too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from .evaluate import DEFAULT_CHUNK_ATOMS, evaluate_atomic, evaluate_cluster, forces_per_order
from .expansion import DEFAULT_MAX_SUBCLUSTERS, BodyOrderError, ExpansionPlan, plan_expansion
from .models import as_model
from .models.base import AtomicModel, ClusterModel, Model, SystemResult
from .precision import check_roundoff, evaluation_model
from .result import BodyOrderResult
from .sampling import (
    check_sample_size,
    draw_atom_sample,
    frame_seeds,
    fresh_seed,
    sample_mean_and_stderr,
    sampled_result,
)
from .settings import ExpansionSettings, resolve_settings

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "DEFAULT_CHUNK_ATOMS",
    "DEFAULT_PERIODIC_ORDER",
    "BodyOrderResult",
    "decompose",
    "decompose_frames",
    "default_order",
    "draw_atom_sample",
    "expansion_per_frame",
    "forces_per_order",
    "frame_settings",
    "plan_for",
    "sample_mean_and_stderr",
    "split_settings",
]

#: truncation order of periodic cells when none is given
DEFAULT_PERIODIC_ORDER = 3
#: decompose's name of a setting that it calls otherwise
_DECOMPOSE_NAMES = {"order": "max_order"}


def plan_for(
    atoms: Atoms,
    model: Model,
    *,
    max_order: int,
    r_mbe: float | None = None,
    screening: bool = True,
    max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
    min_distance: float = 0.3,
    max_memory_GiB: float | None = None,
    centres: ArrayLike | None = None,
) -> ExpansionPlan:
    """Check ``atoms`` against ``model`` and plan the expansion (of the atoms
    ``centres`` only, when given: see :func:`~ase_bodyorder.expansion.plan_expansion`)."""
    model.check_species(atoms.numbers)
    if not model.per_atom and atoms.pbc.any():
        raise BodyOrderError(
            f"{model!r} gives total energies only: its expansion needs an isolated cluster "
            "(the atom-resolved expansion of a periodic system needs per-atom energies)"
        )
    return plan_expansion(
        atoms.positions,
        cell=np.asarray(atoms.cell),
        pbc=atoms.pbc,
        max_order=max_order,
        r_mbe=r_mbe,
        screening=model.screening if screening else None,
        max_subclusters=max_subclusters,
        min_distance=min_distance,
        max_memory_GiB=max_memory_GiB,
        centres=centres,
    )


def decompose(
    atoms: Atoms,
    model: Model | str | os.PathLike[str],
    *,
    max_order: int | None = None,
    r_mbe: float | None = None,
    forces: bool = False,
    screening: bool = True,
    max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
    min_distance: float = 0.3,
    system: SystemResult | None = None,
    chunk_atoms: int = DEFAULT_CHUNK_ATOMS,
    max_memory_GiB: float | None = None,
    progress: str | None = None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    precision: str | None = None,
    max_roundoff_eV: float | None = None,
    settings: ExpansionSettings | None = None,
) -> BodyOrderResult:
    """Expand the energy of ``model`` on ``atoms`` into body orders 1..``max_order``.

    Parameters
    ----------
    atoms
        An ``ase.Atoms``: an isolated cluster, or a periodic cell (then ``r_mbe`` is
        required).
    model
        An :class:`~ase_bodyorder.models.AtomicModel` (atom-resolved expansion, clusters
        and periodic cells) or :class:`~ase_bodyorder.models.ClusterModel` (cluster MBE),
        or a model spec (:func:`~ase_bodyorder.models.resolve_model`: a registered name,
        a plug-in, a ``.model``/``.pt`` file).
    max_order
        Truncation order K (``None``: :func:`default_order`, N for a cluster, 3 for a
        periodic cell).
    r_mbe
        Radius (Angstrom) of each atom's expansion; ``None``: the whole cluster.
    forces
        Also compute forces per order (autograd for atomic models).
    screening
        Skip sub-clusters that vanish exactly by the model's cutoff and layers.
    system
        The model's result on the whole structure, if already computed.
    chunk_atoms
        Most sub-cluster atoms per model call: memory stays bounded whatever the number
        of sub-clusters (a larger chunk is faster only where a model's calls are small).
    max_memory_GiB
        Refuse a plan whose estimated memory exceeds this (default: half the memory
        available when planning; see :func:`~ase_bodyorder.expansion.plan_expansion`).
    progress
        A label: show a progress bar with the time left (stderr, tqdm) over the chunks
        of sub-clusters when there are several; ``None``: silent.
    sample_atoms
        The atom-sampled expansion (``docs/science.md`` section 9): expand the
        energies of only this many atoms m (1..N), drawn uniformly without replacement,
        and estimate E^(n)/N with its standard error (see :class:`BodyOrderResult`);
        ``None``: every atom. Needs an atomic model (per-atom energies); no forces.
    seed
        Seed of ``numpy.random.default_rng`` that draws the sample; ``None``: a fresh
        seed, drawn and recorded in the result (``sample_seed``), so that every sample
        can be drawn again.
    precision
        ``"float32"``: evaluate the sub-clusters with the model cast to float32 (faster;
        an error naming the model if it cannot be cast), the whole structure and the
        sums staying in float64; ``roundoff_eV`` then includes a measured bound on the
        float32 error of each order (:mod:`ase_bodyorder.precision`). ``"float64"``, or
        ``None`` (default): the model's own dtype, unchanged.
    max_roundoff_eV
        Refuse (``BodyOrderError``) a result with an order's ``roundoff_eV`` above this
        (eV); ``None`` (default): warn only, above
        :data:`~ase_bodyorder.precision.DEFAULT_ROUNDOFF_WARNING_EV`.
    settings
        The expansion's settings in one object (:class:`~ase_bodyorder.ExpansionSettings`:
        order, r_mbe, screening, limits, sampling and its seed, precision); then none of
        those keywords may be given as well.

    The keywords that are settings become one :class:`~ase_bodyorder.ExpansionSettings`,
    checked once (a bad value: one :class:`BodyOrderError` line naming the keyword).
    """
    keywords = {
        "max_order": max_order,
        "r_mbe": r_mbe,
        "screening": screening,
        "max_subclusters": max_subclusters,
        "min_distance": min_distance,
        "max_memory_GiB": max_memory_GiB,
        "sample_atoms": sample_atoms,
        "seed": seed,
        "precision": precision,
        "max_roundoff_eV": max_roundoff_eV,
    }
    settings = resolve_settings(settings, keywords, _DECOMPOSE_NAMES)
    model = as_model(model)
    order = default_order(atoms) if settings.order is None else settings.order
    evaluator = evaluation_model(model, settings.precision)
    centres: np.ndarray | None = None
    sample_seed: int | None = None
    if settings.sample_atoms is not None:
        check_sample_size(settings.sample_atoms, len(atoms))
        if forces:
            raise BodyOrderError(
                "forces per order are not available with atom sampling (sample_atoms): "
                "the forces need every atom's expansion; drop sample_atoms or forces"
            )
        if not isinstance(model, AtomicModel):
            raise BodyOrderError(
                f"{model!r} gives total energies only: atom sampling needs per-atom energies "
                "(an AtomicModel)"
            )
        # no seed: a fresh one, recorded in the result (sample_seed) to draw it again
        sample_seed = fresh_seed() if settings.seed is None else settings.seed
        centres = draw_atom_sample(len(atoms), settings.sample_atoms, sample_seed)
    plan = plan_for(
        atoms,
        model,
        max_order=order,
        r_mbe=settings.r_mbe,
        screening=settings.screening,
        max_subclusters=settings.max_subclusters,
        min_distance=settings.min_distance,
        max_memory_GiB=settings.max_memory_GiB,
        centres=centres,
    )
    if system is None:
        system = model.system(atoms, forces=False)
    if isinstance(model, AtomicModel):
        mixed = evaluator.dtype == torch.float32 and model.dtype == torch.float64
        reference = model if mixed else None
        assert isinstance(evaluator, AtomicModel)  # with_dtype keeps the kind of model
        result = evaluate_atomic(
            plan, atoms, evaluator, forces, system, chunk_atoms, progress, reference
        )
        if centres is not None:
            assert sample_seed is not None  # drawn with the centres
            result = sampled_result(result, plan, system, sample_seed)
    elif isinstance(model, ClusterModel):
        assert isinstance(evaluator, ClusterModel)  # with_dtype keeps the kind of model
        result = evaluate_cluster(plan, atoms, evaluator, forces, system)
    else:
        raise TypeError(f"{model!r} is neither an AtomicModel nor a ClusterModel")
    check_roundoff(result.roundoff_eV, settings.max_roundoff_eV)
    return result


def default_order(atoms: Atoms) -> int:
    """The truncation order K used when none is given: N (the full expansion) for an
    isolated cluster of N atoms, :data:`DEFAULT_PERIODIC_ORDER` for a periodic cell."""
    return DEFAULT_PERIODIC_ORDER if atoms.pbc.any() else len(atoms)


def expansion_per_frame(
    frames: Sequence[Atoms], settings: ExpansionSettings, indices: Sequence[int] | None = None
) -> list[ExpansionSettings]:
    """Each frame's own settings in a run with ``settings``: its order (``settings.order``,
    or :func:`default_order` of the frame) and, with atom sampling, the seed of its own
    sample (:func:`~ase_bodyorder.sampling.frame_seeds`: from the run's seed and the
    frame's index in its file, ``indices``, default 0, 1, ...; a run without a seed draws
    one). Every route through the frames, local or distributed, draws the same samples,
    and a frame selected alone (same index, same run seed) draws the one it drew in the
    whole file."""
    indices = list(range(len(frames))) if indices is None else [int(i) for i in indices]
    if len(indices) != len(frames):
        raise BodyOrderError(f"{len(indices)} indices for {len(frames)} frames")
    seeds: list[int | None] = [settings.seed] * len(frames)
    if settings.sample_atoms is not None:
        seeds = list(frame_seeds(fresh_seed() if settings.seed is None else settings.seed, indices))
    return [
        settings.replace(
            order=default_order(atoms) if settings.order is None else settings.order, seed=seed
        )
        for atoms, seed in zip(frames, seeds, strict=True)
    ]


def frame_settings(
    frames: Sequence[Atoms],
    settings: ExpansionSettings | None = None,
    *,
    order: int | None = None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    indices: Sequence[int] | None = None,
) -> list[dict[str, Any]]:
    """Each frame's own :func:`decompose` keywords (:func:`expansion_per_frame` of
    ``settings``, or of ``order``, ``sample_atoms`` and ``seed``): ``max_order`` and,
    with ``sample_atoms``, the sample size and the frame's seed (``seed`` is ignored
    without ``sample_atoms``)."""
    seed = None if sample_atoms is None else seed  # a seed of nothing (as callers pass it)
    run = resolve_settings(settings, {"order": order, "sample_atoms": sample_atoms, "seed": seed})
    out = []
    for own in expansion_per_frame(frames, run, indices):
        keywords: dict[str, Any] = {"max_order": own.order}
        if own.sample_atoms is not None:
            keywords.update(sample_atoms=own.sample_atoms, seed=own.seed)
        out.append(keywords)
    return out


def decompose_frames(
    frames: Sequence[Atoms],
    model: Model,
    *,
    order: int | None = None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    settings: ExpansionSettings | None = None,
    indices: Sequence[int] | None = None,
    **options: Any,
) -> Iterator[BodyOrderResult]:
    """:func:`decompose` each structure of ``frames`` in turn, yielding its result.

    ``settings`` (:class:`~ase_bodyorder.ExpansionSettings`), or as keywords: ``order``,
    the truncation order K of every structure (``None``: :func:`default_order` of each),
    ``sample_atoms`` and ``seed``, the atom-sampled expansion, and the settings among
    ``options`` (``r_mbe``, ``precision``, ...). Each structure draws its own sample,
    seeded from ``seed`` and its index in its file, ``indices`` (default 0, 1, ...; see
    :func:`expansion_per_frame`: reproducible, and recorded in each result).
    ``progress``: a progress bar per structure (``structure k/n``). ``options``: further
    keyword arguments of :func:`decompose` (``forces``, ``chunk_atoms``, ...).
    """
    run, rest = split_settings(
        settings, {"order": order, "sample_atoms": sample_atoms, "seed": seed, **options}
    )
    for k, (atoms, own) in enumerate(
        zip(frames, expansion_per_frame(frames, run, indices), strict=True)
    ):
        yield decompose(
            atoms,
            model,
            settings=own,
            progress=f"structure {k + 1}/{len(frames)}" if progress else None,
            **rest,
        )


def split_settings(
    settings: ExpansionSettings | None, keywords: dict[str, Any]
) -> tuple[ExpansionSettings, dict[str, Any]]:
    """``(settings, the other keywords)`` of a door over frames that takes the settings
    as ``settings`` or among ``keywords`` (the settings' names; :func:`resolve_settings`)."""
    fields = ExpansionSettings.model_fields
    run = resolve_settings(settings, {k: v for k, v in keywords.items() if k in fields})
    return run, {k: v for k, v in keywords.items() if k not in fields}
