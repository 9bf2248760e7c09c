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

__all__ = ["BodyOrderResult", "decompose", "forces_per_order", "plan_for"]


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
    """
    plan = plan_for(
        atoms,
        model,
        max_order=max_order,
        r_mbe=r_mbe,
        screening=screening,
        max_subclusters=max_subclusters,
        min_distance=min_distance,
    )
    if system is None:
        system = model.system(atoms, forces=False)
    if isinstance(model, AtomicModel):
        return _atomic(plan, atoms, model, forces, system)
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


def _atomic(plan, atoms, model: AtomicModel, forces: bool, system: SystemResult):
    positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=forces)
    batch = FragmentBatch(
        positions=plan.flat_positions(positions),
        numbers=atoms.numbers[plan.atoms],
        offsets=plan.offsets,
    )
    flat_energies = model.fragment_energies(batch)
    terms = atomic_orders(plan, flat_energies.detach().to(torch.float64).numpy())
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
        forces_eV_per_A=forces_per_order(plan, flat_energies, positions) if forces else None,
    )


def _cluster(plan, atoms, model: ClusterModel, forces: bool, system: SystemResult):
    batch = FragmentBatch(
        positions=plan.flat_positions(), numbers=atoms.numbers[plan.atoms], offsets=plan.offsets
    )
    energies, flat_forces = model.fragment_totals(batch, forces=forces)
    terms = cluster_orders(plan, energies)
    order_forces = cluster_order_forces(plan, flat_forces) if forces else None
    return _result(plan, model, system, terms, forces_eV_per_A=order_forces)
