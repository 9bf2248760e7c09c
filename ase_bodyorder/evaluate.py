"""The evaluate step: a model's energies of a plan's sub-clusters, in bounded chunks,
assembled into a :class:`~ase_bodyorder.BodyOrderResult` (forces per order by autograd
for atomic models)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from .expansion import (
    ExpansionPlan,
    OrderTerms,
    atomic_orders,
    atomic_orders_torch,
    cluster_order_forces,
    cluster_orders,
    order_coefficients,
)
from .models.base import AtomicModel, ClusterModel, FragmentBatch, Model, SystemResult
from .precision import mixed_precision_roundoff
from .result import BodyOrderResult

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["DEFAULT_CHUNK_ATOMS", "evaluate_atomic", "evaluate_cluster", "forces_per_order"]

#: most sub-cluster atoms (flat entries) per model call of :func:`~ase_bodyorder.decompose`
DEFAULT_CHUNK_ATOMS = 1 << 16


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


def _chunk_progress(chunks: list[tuple[int, int]], label: str | None) -> Iterable[tuple[int, int]]:
    if label is None or len(chunks) < 3:
        return chunks
    return tqdm(chunks, desc=label, unit="chunk", leave=False)


def evaluate_atomic(
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


def evaluate_cluster(
    plan: ExpansionPlan, atoms: Atoms, model: ClusterModel, forces: bool, system: SystemResult
) -> BodyOrderResult:
    """The cluster MBE with ``model``'s totals of the sub-clusters (forces per order from
    its sub-cluster forces)."""
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
