"""Plan -> evaluate -> assemble: the body-order decomposition of one structure."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import numpy as np
import torch

from .expansion import (
    DEFAULT_MAX_SUBCLUSTERS,
    BodyOrderError,
    ExpansionPlan,
    atomic_orders,
    atomic_orders_torch,
    cluster_order_forces,
    cluster_orders,
    plan_expansion,
)
from .models.base import AtomicModel, ClusterModel, FragmentBatch, Model, SystemResult

__all__ = ["DEFAULT_CHUNK_ATOMS", "BodyOrderResult", "decompose", "forces_per_order", "plan_for"]

#: most sub-cluster atoms (flat entries) per model call of :func:`decompose`
DEFAULT_CHUNK_ATOMS = 1 << 16


@dataclass
class BodyOrderResult:
    """The many-body expansion of a model's energy for one structure (eV, Angstrom).

    ``energies_eV[n-1]`` is the n-body energy E^(n); ``residual_eV`` is
    ``energy_eV - sum(energies_eV)``: zero to round-off for a complete cluster expansion,
    otherwise what lies beyond the truncation order or beyond ``r_mbe``.
    ``roundoff_eV`` estimates the round-off of each order (machine epsilon of the
    model's dtype times ``cancellation_eV``, the sum of absolute values of its terms).
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
        """A plain-text table: order, energy (eV), per atom (eV), share."""
        n_atoms = None if self.energies_per_atom_eV is None else len(self.energies_per_atom_eV)
        lines = [] if title is None else [title]
        lines.append(f"{'order':>8} {'energy/eV':>16} {'per atom/eV':>14} {'share':>9}")
        shares = self.shares

        def row(label, value, share):
            per_atom = f"{value / n_atoms:14.6f}" if n_atoms else f"{'':>14}"
            text = f"{share:9.4f}" if np.isfinite(share) else f"{'-':>9}"
            return f"{label:>8} {value:16.8f} {per_atom} {text}"

        for n in range(self.max_order):
            lines.append(row(str(n + 1), self.energies_eV[n], shares[n]))
        interaction = self.energy_eV - self.energies_eV[0]
        share = self.residual_eV / interaction if abs(interaction) > 0 else np.nan
        lines.append(row("residual", self.residual_eV, share))
        lines.append(row("total", self.energy_eV, np.nan))
        lines.append(
            f"{self.n_subclusters} sub-clusters evaluated, {self.n_screened_out} skipped by "
            f"exact screening; largest round-off estimate {self.roundoff_eV.max():.2e} eV"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-compatible dictionary (arrays as nested lists)."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out[f.name] = value.tolist() if isinstance(value, np.ndarray) else value
        return out

    @classmethod
    def from_dict(cls, data: dict) -> BodyOrderResult:
        """Inverse of :meth:`to_dict`."""
        kwargs = {}
        for f in fields(cls):
            value = data.get(f.name)
            kwargs[f.name] = np.asarray(value, dtype=float) if isinstance(value, list) else value
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def plan_for(
    atoms,
    model: Model,
    *,
    max_order: int,
    r_mbe: float | None = None,
    screening: bool = True,
    max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
    min_distance: float = 0.3,
    max_memory_GiB: float | None = None,
) -> ExpansionPlan:
    """Check ``atoms`` against ``model`` and plan the expansion."""
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
    )


def decompose(
    atoms,
    model: Model,
    *,
    max_order: int,
    r_mbe: float | None = None,
    forces: bool = False,
    screening: bool = True,
    max_subclusters: int = DEFAULT_MAX_SUBCLUSTERS,
    min_distance: float = 0.3,
    system: SystemResult | None = None,
    chunk_atoms: int = DEFAULT_CHUNK_ATOMS,
    max_memory_GiB: float | None = None,
    progress: str | None = None,
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
        Truncation order K.
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
    """
    plan = plan_for(
        atoms,
        model,
        max_order=max_order,
        r_mbe=r_mbe,
        screening=screening,
        max_subclusters=max_subclusters,
        min_distance=min_distance,
        max_memory_GiB=max_memory_GiB,
    )
    if system is None:
        system = model.system(atoms, forces=False)
    if isinstance(model, AtomicModel):
        return _atomic(plan, atoms, model, forces, system, chunk_atoms, progress)
    if isinstance(model, ClusterModel):
        return _cluster(plan, atoms, model, forces, system)
    raise TypeError(f"{model!r} is neither an AtomicModel nor a ClusterModel")


def forces_per_order(plan: ExpansionPlan, flat_energies, positions) -> np.ndarray:
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


def _result(plan, model, system: SystemResult, terms, **arrays) -> BodyOrderResult:
    return BodyOrderResult(
        max_order=plan.max_order,
        energy_eV=float(system.energy),
        energies_eV=terms.energies_eV,
        residual_eV=float(system.energy - terms.energies_eV.sum()),
        cancellation_eV=terms.cancellation_eV,
        roundoff_eV=torch.finfo(model.dtype).eps * terms.cancellation_eV,
        n_subclusters=plan.n_subclusters,
        n_screened_out=plan.n_screened_out,
        **arrays,
    )


def _order_coefficients(plan: ExpansionPlan):
    """``E^(n) = sum_f C[f, n] e_f`` over flat entries, as (flat, order - 1, C) sorted by flat.

    The entries of orders n >= 2 are measured from the centre atom's one-body energy
    (as in :func:`~ase_bodyorder.expansion.atomic_orders`); that reference is folded
    into the coefficients of the one-atom entries, so that each chunk of sub-clusters
    contributes a linear term of its own energies (its gradient needs no other chunk).
    """
    higher = plan.entry_order > 1
    flat = np.concatenate([plan.entry_flat, plan.singleton_flat[plan.entry_atom[higher]]])
    order = np.concatenate([plan.entry_order, plan.entry_order[higher]]) - 1
    coefficient = np.concatenate([plan.entry_weight, -plan.entry_weight[higher]])
    sort = np.argsort(flat, kind="stable")
    return flat[sort], order[sort], coefficient[sort]


def _chunk_progress(chunks: list, label: str | None):
    if label is None or len(chunks) < 3:
        return chunks
    from tqdm import tqdm

    return tqdm(chunks, desc=label, unit="chunk", leave=False)


def _atomic(
    plan,
    atoms,
    model: AtomicModel,
    forces: bool,
    system: SystemResult,
    chunk_atoms: int,
    progress: str | None = None,
):
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=forces)
    numbers = atoms.numbers[plan.atoms]
    flat_energies = np.empty(len(plan.atoms))
    order_forces = np.zeros((plan.max_order, plan.n_atoms, 3)) if forces else None
    if forces:
        c_flat, c_order, c_value = _order_coefficients(plan)
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
        if not forces or not energies.requires_grad:
            continue
        lo, hi = np.searchsorted(c_flat, [a, b])
        terms = (
            torch.as_tensor(c_value[lo:hi])
            * energies.to(torch.float64)[torch.as_tensor(c_flat[lo:hi] - a)]
        )
        per_order = torch.zeros(plan.max_order, dtype=torch.float64).index_add(
            0, torch.as_tensor(c_order[lo:hi]), terms
        )
        for n in range(plan.max_order):
            (grad,) = torch.autograd.grad(per_order[n], positions, retain_graph=True)
            order_forces[n] -= grad.numpy()
    terms = atomic_orders(plan, flat_energies)
    residual_per_atom = None
    if system.energies is not None:
        residual_per_atom = system.energies - terms.energies_per_atom_eV.sum(axis=1)
    return _result(
        plan,
        model,
        system,
        terms,
        energies_per_atom_eV=terms.energies_per_atom_eV,
        residual_per_atom_eV=residual_per_atom,
        forces_eV_per_A=order_forces,
    )


def _cluster(plan, atoms, model: ClusterModel, forces: bool, system: SystemResult):
    batch = FragmentBatch(
        positions=plan.flat_positions(), numbers=atoms.numbers[plan.atoms], offsets=plan.offsets
    )
    energies, flat_forces = model.fragment_totals(batch, forces=forces)
    terms = cluster_orders(plan, energies)
    order_forces = cluster_order_forces(plan, flat_forces) if forces else None
    return _result(plan, model, system, terms, forces_eV_per_A=order_forces)
