"""Plan -> evaluate -> assemble: the body-order decomposition of one structure."""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from numpy.typing import ArrayLike

from .expansion import (
    DEFAULT_MAX_SUBCLUSTERS,
    BodyOrderError,
    ExpansionPlan,
    OrderTerms,
    atomic_orders,
    atomic_orders_torch,
    cluster_order_forces,
    cluster_orders,
    order_coefficients,
    plan_expansion,
)
from .models.base import AtomicModel, ClusterModel, FragmentBatch, Model, SystemResult
from .precision import check_roundoff, evaluation_model, mixed_precision_roundoff
from .settings import ExpansionSettings

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "DEFAULT_CHUNK_ATOMS",
    "DEFAULT_PERIODIC_ORDER",
    "BodyOrderResult",
    "decompose",
    "decompose_frames",
    "frame_settings",
    "default_order",
    "draw_atom_sample",
    "forces_per_order",
    "plan_for",
    "sample_mean_and_stderr",
]

#: most sub-cluster atoms (flat entries) per model call of :func:`decompose`
DEFAULT_CHUNK_ATOMS = 1 << 16


@dataclass
class BodyOrderResult:
    """The many-body expansion of a model's energy for one structure (eV, Angstrom).

    ``energies_eV[n-1]`` is the n-body energy E^(n); ``residual_eV`` is
    ``energy_eV - sum(energies_eV)``: zero to round-off for a complete cluster expansion,
    otherwise what lies beyond the truncation order or beyond ``r_mbe``.
    ``roundoff_eV`` estimates the round-off of each order: machine epsilon of the
    model's dtype times ``cancellation_eV``, the sum of absolute values of its terms;
    for sub-clusters evaluated in float32 (``decompose(..., precision="float32")``) of a
    float64 model, plus a bound on what float32 changes, measured on a few sub-clusters
    (:mod:`ase_bodyorder.precision`).

    ``energies_per_atom_mean_eV`` (K,) is E^(n)/N and ``energies_per_atom_stderr_eV``
    (K,) its standard error from atom sampling (zeros when every atom was expanded);
    ``residual_per_atom_mean_eV`` and ``residual_per_atom_stderr_eV`` likewise for the
    residual per atom. ``n_atoms`` is N.

    **Atom-sampled results** (``decompose(..., sample_atoms=m)``, ``sampled`` true; see
    ``docs/science.md`` section 9): only the m atoms ``sample_indices`` (sorted, drawn
    uniformly without replacement by ``numpy.random.default_rng(sample_seed)``) were
    expanded, each exactly. Then

    - ``energies_per_atom_mean_eV[n-1]`` is the sample mean of e_i^(n), an unbiased
      estimate of E^(n)/N, with standard error ``s_n / sqrt(m) * sqrt(1 - m/N)``
      (``s_n`` the sample standard deviation of e_i^(n); finite-population correction:
      0 for m = N, NaN for m = 1 < N);
    - ``energies_eV`` is the estimate ``N * energies_per_atom_mean_eV`` (its standard
      error is ``N * energies_per_atom_stderr_eV``), ``cancellation_eV`` and
      ``roundoff_eV`` are scaled by N/m likewise;
    - ``energies_per_atom_eV`` (N, K) and ``residual_per_atom_eV`` (N,) hold the exact
      terms of the sampled atoms and NaN for the other atoms;
    - ``residual_eV`` is ``N * residual_per_atom_mean_eV``, estimated from the residuals
      ``e_i - sum_n e_i^(n)`` of the sampled atoms (``e_i`` the model's per-atom energy
      in the whole structure); ``energy_eV`` stays the model's exact total energy, so
      ``energy_eV - sum(energies_eV) - residual_eV`` is a sampling error, not zero;
    - forces per order are not available.
    """

    max_order: int
    energy_eV: float
    energies_eV: np.ndarray
    residual_eV: float
    cancellation_eV: np.ndarray
    roundoff_eV: np.ndarray
    n_subclusters: int
    n_screened_out: int = 0
    energies_per_atom_eV: np.ndarray | None = None
    residual_per_atom_eV: np.ndarray | None = None
    forces_eV_per_A: np.ndarray | None = None
    n_atoms: int | None = None
    energies_per_atom_mean_eV: np.ndarray | None = None
    energies_per_atom_stderr_eV: np.ndarray | None = None
    residual_per_atom_mean_eV: float | None = None
    residual_per_atom_stderr_eV: float | None = None
    sample_indices: np.ndarray | None = None
    sample_size: int | None = None
    sample_seed: int | None = None

    @property
    def sampled(self) -> bool:
        """Whether this is an atom-sampled estimate (only ``sample_indices`` expanded)."""
        return self.sample_indices is not None

    @property
    def truncated_energy_eV(self) -> float:
        """E_{<=K}: the sum of the body-order energies up to the truncation order."""
        return float(np.sum(self.energies_eV))

    @property
    def truncated_forces_eV_per_A(self) -> np.ndarray | None:
        """F_{<=K} = -dE_{<=K}/dR, shape (N, 3), if forces per order were computed."""
        return None if self.forces_eV_per_A is None else self.forces_eV_per_A.sum(axis=0)

    @property
    def shares(self) -> np.ndarray:
        """E^(n) / (E - E^(1)): each order's share of the interaction energy (n >= 2).

        The first entry (the 1-body energy is the reference, not a share) is NaN.
        """
        interaction = self.energy_eV - self.energies_eV[0]
        out = np.full(self.max_order, np.nan)
        if abs(interaction) > 0:
            out[1:] = self.energies_eV[1:] / interaction
        return out

    def table(self, title: str | None = None) -> str:
        """A plain-text table: order, energy (eV), per atom (eV), share.

        An atom-sampled result says so, gives the estimates (energies N x the sample
        mean) and adds the standard error per atom (eV) of each order and the residual.
        """
        n_atoms = self.n_atoms
        if n_atoms is None and self.energies_per_atom_eV is not None:
            n_atoms = len(self.energies_per_atom_eV)
        sampled = self.sampled
        lines = [] if title is None else [title]
        if sampled:
            lines.append(
                f"atom-sampled estimate: {self.sample_size} of {n_atoms} atoms expanded "
                f"(seed {self.sample_seed}); energy/eV = N x mean over the sampled atoms, "
                "+- = standard error per atom"
            )
        header = f"{'order':>8} {'energy/eV':>16} {'per atom/eV':>14}"
        header += f" {'+-/eV':>10}" if sampled else ""
        lines.append(f"{header} {'share':>9}")
        shares = self.shares
        stderr = self.energies_per_atom_stderr_eV

        def row(label: str, value: float, share: float, error: float | None = None) -> str:
            per_atom = f"{value / n_atoms:14.6f}" if n_atoms else f"{'':>14}"
            if sampled:
                known = error is not None and np.isfinite(error)
                per_atom += f" {error:10.6f}" if known else f" {'-':>10}"
            text = f"{share:9.4f}" if np.isfinite(share) else f"{'-':>9}"
            return f"{label:>8} {value:16.8f} {per_atom} {text}"

        for n in range(self.max_order):
            error = None if stderr is None else stderr[n]
            lines.append(row(str(n + 1), self.energies_eV[n], shares[n], error))
        interaction = self.energy_eV - self.energies_eV[0]
        share = self.residual_eV / interaction if abs(interaction) > 0 else np.nan
        lines.append(row("residual", self.residual_eV, share, self.residual_per_atom_stderr_eV))
        lines.append(row("total", self.energy_eV, np.nan, 0.0))
        lines.append(
            f"{self.n_subclusters} sub-clusters evaluated, {self.n_screened_out} skipped by "
            f"exact screening; largest round-off estimate {self.roundoff_eV.max():.2e} eV"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary (arrays as nested lists; NaN, e.g. the atoms not
        sampled, as ``None``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = _nan_to_none(value.tolist())
            elif isinstance(value, float) and not math.isfinite(value):
                value = None if math.isnan(value) else value
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BodyOrderResult:
        """Inverse of :meth:`to_dict` (missing fields, as in older dictionaries: None)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "sample_indices" and value is not None:
                value = np.asarray(value, dtype=np.int64)
            elif isinstance(value, list):
                value = np.asarray(value, dtype=float)  # None -> NaN
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


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


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value


def _check_sample(sample_atoms: object, n_atoms: int) -> int:
    """``sample_atoms`` as an int in 1..``n_atoms``, or a :class:`BodyOrderError`."""
    if isinstance(sample_atoms, bool) or not isinstance(sample_atoms, numbers.Integral):
        raise BodyOrderError(
            f"sample_atoms must be an integer number of atoms (1..{n_atoms}), got {sample_atoms!r}"
        )
    m = int(sample_atoms)
    if not 1 <= m <= n_atoms:
        raise BodyOrderError(
            f"sample_atoms={m} is not a number of atoms to expand: it must be 1..{n_atoms} "
            f"(this structure has {n_atoms} atoms)"
        )
    return m


def _check_seed(seed: object) -> int:
    """A seed for ``numpy.random.default_rng``: ``seed``, or a fresh one for ``None``."""
    if seed is None:
        return int(np.random.default_rng().integers(2**63))
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise BodyOrderError(f"seed must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def draw_atom_sample(n_atoms: int, sample_atoms: int, seed: int | None = None) -> np.ndarray:
    """``sample_atoms`` distinct atom indices in 0..``n_atoms``-1, drawn uniformly without
    replacement by ``numpy.random.default_rng(seed)``, sorted."""
    m = _check_sample(sample_atoms, n_atoms)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n_atoms, size=m, replace=False)).astype(np.int64)


def sample_mean_and_stderr(values: ArrayLike, n_atoms: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis of ``values`` (m sampled atoms, drawn without replacement
    from ``n_atoms``) and its standard error ``s / sqrt(m) * sqrt(1 - m/N)``.

    ``s`` is the sample standard deviation (ddof=1). The error is 0 for m = N (every
    atom: the mean is exact) and NaN for m = 1 < N (no spread to estimate it from).
    """
    values = np.asarray(values, dtype=np.float64)
    m = len(values)
    mean = np.array([math.fsum(c) / m for c in values.reshape(m, -1).T]).reshape(values.shape[1:])
    if m == n_atoms:
        return mean, np.zeros_like(mean)
    if m < 2:
        return mean, np.full_like(mean, np.nan)
    spread = values.std(axis=0, ddof=1)
    return mean, spread / math.sqrt(m) * math.sqrt(1.0 - m / n_atoms)


def decompose(
    atoms: Atoms,
    model: Model,
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
        and periodic cells) or :class:`~ase_bodyorder.models.ClusterModel` (cluster MBE).
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
    """
    if settings is not None:
        given = {
            "max_order": max_order,
            "r_mbe": r_mbe,
            "sample_atoms": sample_atoms,
            "seed": seed,
            "precision": precision,
            "max_roundoff_eV": max_roundoff_eV,
            "max_memory_GiB": max_memory_GiB,
        }
        both = [name for name, value in given.items() if value is not None]
        both += [
            name
            for name, value, default in (
                ("screening", screening, True),
                ("max_subclusters", max_subclusters, DEFAULT_MAX_SUBCLUSTERS),
                ("min_distance", min_distance, 0.3),
            )
            if value != default
        ]
        if both:
            raise BodyOrderError(
                f"give the expansion as settings or as keywords, not both: {', '.join(both)}"
            )
        return decompose(
            atoms,
            model,
            max_order=settings.order,
            forces=forces,
            system=system,
            chunk_atoms=chunk_atoms,
            progress=progress,
            sample_atoms=settings.sample_atoms,
            seed=settings.seed if settings.sample_atoms is not None else None,
            **settings.decompose_options(),
        )
    if max_order is None:
        max_order = default_order(atoms)
    evaluator = evaluation_model(model, precision)
    centres: np.ndarray | None = None
    sample_seed: int | None = None
    if sample_atoms is not None:
        m = _check_sample(sample_atoms, len(atoms))
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
        sample_seed = _check_seed(seed)
        centres = draw_atom_sample(len(atoms), m, sample_seed)
    elif seed is not None:
        raise BodyOrderError("seed is the seed of atom sampling: give sample_atoms too")
    plan = plan_for(
        atoms,
        model,
        max_order=max_order,
        r_mbe=r_mbe,
        screening=screening,
        max_subclusters=max_subclusters,
        min_distance=min_distance,
        max_memory_GiB=max_memory_GiB,
        centres=centres,
    )
    if system is None:
        system = model.system(atoms, forces=False)
    if isinstance(model, AtomicModel):
        mixed = evaluator.dtype == torch.float32 and model.dtype == torch.float64
        reference = model if mixed else None
        assert isinstance(evaluator, AtomicModel)  # with_dtype keeps the kind of model
        result = _atomic(plan, atoms, evaluator, forces, system, chunk_atoms, progress, reference)
        if centres is not None:
            assert sample_seed is not None  # drawn with the centres
            result = _sampled(result, plan, system, sample_seed)
    elif isinstance(model, ClusterModel):
        assert isinstance(evaluator, ClusterModel)  # with_dtype keeps the kind of model
        result = _cluster(plan, atoms, evaluator, forces, system)
    else:
        raise TypeError(f"{model!r} is neither an AtomicModel nor a ClusterModel")
    check_roundoff(result.roundoff_eV, max_roundoff_eV)
    return result


#: truncation order of periodic cells when none is given
DEFAULT_PERIODIC_ORDER = 3


def default_order(atoms: Atoms) -> int:
    """The truncation order K used when none is given: N (the full expansion) for an
    isolated cluster of N atoms, :data:`DEFAULT_PERIODIC_ORDER` for a periodic cell."""
    return DEFAULT_PERIODIC_ORDER if atoms.pbc.any() else len(atoms)


def decompose_frames(
    frames: Sequence[Atoms],
    model: Model,
    *,
    order: int | None = None,
    sample_atoms: int | None = None,
    seed: int | None = None,
    progress: bool = False,
    **options: Any,
) -> Iterator[BodyOrderResult]:
    """:func:`decompose` each structure of ``frames`` in turn, yielding its result.

    ``order``: truncation order K of every structure (``None``: :func:`default_order` of
    each). ``sample_atoms``: the atom-sampled expansion; each structure draws its own
    sample, with a seed drawn from ``numpy.random.default_rng(seed)`` (reproducible, and
    recorded in each result). ``progress``: a progress bar per structure
    (``structure k/n``). ``options``: further keyword arguments of :func:`decompose`.
    """
    settings = frame_settings(frames, order=order, sample_atoms=sample_atoms, seed=seed)
    for k, (atoms, own) in enumerate(zip(frames, settings, strict=True)):
        yield decompose(
            atoms,
            model,
            progress=f"structure {k + 1}/{len(frames)}" if progress else None,
            **own,
            **options,
        )


def frame_settings(
    frames: Sequence[Atoms], *, order: int | None, sample_atoms: int | None, seed: int | None
) -> list[dict[str, Any]]:
    """Each frame's own :func:`decompose` arguments: ``max_order`` (``order``, or
    :func:`default_order` of the frame) and, with ``sample_atoms``, the sample size and a
    seed drawn from ``numpy.random.default_rng(seed)``, frame after frame (so every route
    through the frames, local or distributed, draws the same samples)."""
    seeds = np.random.default_rng(seed)
    out = []
    for atoms in frames:
        own: dict[str, Any] = {"max_order": default_order(atoms) if order is None else order}
        if sample_atoms is not None:
            own.update(sample_atoms=sample_atoms, seed=int(seeds.integers(2**63)))
        out.append(own)
    return out


def forces_per_order(
    plan: ExpansionPlan, flat_energies: torch.Tensor, positions: torch.Tensor
) -> np.ndarray:
    """F^(n) = -dE^(n)/dR, shape (K, N, 3) (eV/Angstrom), by autograd.

    ``flat_energies`` are the per-atom energies of the plan's flat entries, computed from
    ``positions`` (a tensor requiring grad); one backward pass per order through the same
    packed evaluation.
    """
    per_order = atomic_orders_torch(plan, flat_energies).sum(dim=0)
    out = np.zeros((plan.max_order, plan.n_atoms, 3))
    for n in range(plan.max_order):
        if per_order[n].requires_grad:
            (grad,) = torch.autograd.grad(per_order[n], positions, retain_graph=True)
            out[n] = -grad.numpy()
    return out


def _result(
    plan: ExpansionPlan,
    model: Model,
    system: SystemResult,
    terms: OrderTerms,
    roundoff: np.ndarray | None = None,
    *,
    energies_per_atom_eV: np.ndarray | None = None,
    residual_per_atom_eV: np.ndarray | None = None,
    forces_eV_per_A: np.ndarray | None = None,
) -> BodyOrderResult:
    """The result of a whole expansion; ``roundoff``: machine epsilon of the model's
    dtype times the cancellation of each order, unless given."""
    n = plan.n_atoms
    if roundoff is None:
        roundoff = torch.finfo(model.dtype).eps * terms.cancellation_eV
    residual = float(system.energy - terms.energies_eV.sum())
    return BodyOrderResult(
        max_order=plan.max_order,
        energy_eV=float(system.energy),
        energies_eV=terms.energies_eV,
        residual_eV=residual,
        cancellation_eV=terms.cancellation_eV,
        roundoff_eV=roundoff,
        n_subclusters=plan.n_subclusters,
        n_screened_out=plan.n_screened_out,
        n_atoms=n,
        energies_per_atom_mean_eV=np.asarray(terms.energies_eV, dtype=float) / n,
        energies_per_atom_stderr_eV=np.zeros(plan.max_order),
        residual_per_atom_mean_eV=residual / n,
        residual_per_atom_stderr_eV=0.0,
        energies_per_atom_eV=energies_per_atom_eV,
        residual_per_atom_eV=residual_per_atom_eV,
        forces_eV_per_A=forces_eV_per_A,
    )


def _sampled(
    result: BodyOrderResult, plan: ExpansionPlan, system: SystemResult, seed: int
) -> BodyOrderResult:
    """The estimates of an atom-sampled expansion from the exact terms of its centres.

    ``result`` holds the sums over the centres (:func:`_atomic` on a plan with centres);
    see :class:`BodyOrderResult` for what each field becomes.
    """
    n, sample = plan.n_atoms, plan.centre_atoms
    m = len(sample)
    assert result.energies_per_atom_eV is not None  # _atomic gives them
    per_atom = result.energies_per_atom_eV[sample]
    mean, stderr = sample_mean_and_stderr(per_atom, n)
    if system.energies is not None:
        atom_energies = np.asarray(system.energies, dtype=np.float64)[sample]
    else:  # no per-atom energies of the whole structure: E/N stands for each e_i
        atom_energies = np.full(m, float(system.energy) / n)
    residuals = atom_energies - per_atom.sum(axis=1)
    residual_mean, residual_stderr = sample_mean_and_stderr(residuals, n)
    residual_per_atom = np.full(n, np.nan)
    residual_per_atom[sample] = residuals
    scale = n / m
    cancellation = result.cancellation_eV * scale
    return BodyOrderResult(
        max_order=result.max_order,
        energy_eV=result.energy_eV,
        energies_eV=result.energies_eV * scale,
        residual_eV=float(residual_mean) * n,
        cancellation_eV=cancellation,
        roundoff_eV=result.roundoff_eV * scale,
        n_subclusters=result.n_subclusters,
        n_screened_out=result.n_screened_out,
        energies_per_atom_eV=result.energies_per_atom_eV,
        residual_per_atom_eV=residual_per_atom,
        forces_eV_per_A=None,
        n_atoms=n,
        energies_per_atom_mean_eV=mean,
        energies_per_atom_stderr_eV=stderr,
        residual_per_atom_mean_eV=float(residual_mean),
        residual_per_atom_stderr_eV=float(residual_stderr),
        sample_indices=np.array(sample, dtype=np.int64),
        sample_size=m,
        sample_seed=int(seed),
    )


def _chunk_progress(chunks: list[tuple[int, int]], label: str | None) -> Iterable[tuple[int, int]]:
    if label is None or len(chunks) < 3:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, desc=label, unit="chunk", leave=False)


def _atomic(
    plan: ExpansionPlan,
    atoms: Atoms,
    model: AtomicModel,
    forces: bool,
    system: SystemResult,
    chunk_atoms: int,
    progress: str | None = None,
    reference: AtomicModel | None = None,
) -> BodyOrderResult:
    """The atom-resolved expansion with ``model``; ``reference``: the float64 model whose
    float32 cast ``model`` is (mixed precision), to measure the round-off with."""
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=forces)
    numbers = atoms.numbers[plan.atoms]
    flat_energies = np.empty(len(plan.atoms))
    order_forces = np.zeros((plan.max_order, plan.n_atoms, 3)) if forces else None
    if forces:
        c_flat, c_order, c_value = order_coefficients(plan)
    # bounded chunks: memory does not grow with the number of sub-clusters
    for first, stop in _chunk_progress(plan.chunks(chunk_atoms), progress):
        a, b = int(plan.offsets[first]), int(plan.offsets[stop])
        batch = FragmentBatch(
            positions=plan.flat_positions(positions, start=a, stop=b),
            numbers=numbers[a:b],
            offsets=plan.offsets[first : stop + 1] - a,
        )
        energies = model.fragment_energies(batch)
        flat_energies[a:b] = energies.detach().to(torch.float64).numpy()
        if order_forces is None or not energies.requires_grad:  # None: no forces
            continue
        lo, hi = np.searchsorted(c_flat, [a, b])
        weighted = (
            torch.as_tensor(c_value[lo:hi])
            * energies.to(torch.float64)[torch.as_tensor(c_flat[lo:hi] - a)]
        )
        per_order = torch.zeros(plan.max_order, dtype=torch.float64).index_add(
            0, torch.as_tensor(c_order[lo:hi]), weighted
        )
        for n in range(plan.max_order):
            (grad,) = torch.autograd.grad(per_order[n], positions, retain_graph=True)
            order_forces[n] -= grad.numpy()
    terms = atomic_orders(plan, flat_energies)
    roundoff = None
    if reference is not None:
        roundoff = mixed_precision_roundoff(
            plan, atoms, flat_energies, reference, terms.cancellation_eV
        )
    assert terms.energies_per_atom_eV is not None  # atomic_orders gives them
    residual_per_atom = None
    if system.energies is not None:
        residual_per_atom = system.energies - terms.energies_per_atom_eV.sum(axis=1)
    return _result(
        plan,
        model,
        system,
        terms,
        roundoff,
        energies_per_atom_eV=terms.energies_per_atom_eV,
        residual_per_atom_eV=residual_per_atom,
        forces_eV_per_A=order_forces,
    )


def _cluster(
    plan: ExpansionPlan, atoms: Atoms, model: ClusterModel, forces: bool, system: SystemResult
) -> BodyOrderResult:
    batch = FragmentBatch(
        positions=plan.flat_positions(), numbers=atoms.numbers[plan.atoms], offsets=plan.offsets
    )
    energies, flat_forces = model.fragment_totals(batch, forces=forces)
    terms = cluster_orders(plan, energies)
    order_forces = None
    if forces:
        assert flat_forces is not None  # fragment_totals(forces=True) gives them
        order_forces = cluster_order_forces(plan, flat_forces)
    return _result(plan, model, system, terms, forces_eV_per_A=order_forces)
