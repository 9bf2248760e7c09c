"""Assemble evaluated sub-cluster energies into body-order terms: pure array arithmetic.

Every function takes an :class:`~ase_bodyorder.expansion.plan.ExpansionPlan` and energies
ordered like the plan's flat entries (per-atom energies) or sub-clusters (totals).
Accumulation is float64. Orders n >= 2 are summed over energies measured from the
one-body energies (``e_i(T) - e_i({i})``): the Moebius weights of every order n >= 2 sum
to zero, so this changes nothing exactly and removes the large isolated-atom energies
from the alternating sums. Order totals use compensated summation (``math.fsum``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from .plan import ExpansionPlan

if TYPE_CHECKING:
    import torch

__all__ = [
    "OrderTerms",
    "atomic_orders",
    "atomic_orders_torch",
    "cluster_order_forces",
    "cluster_orders",
    "evaluation_roundoff",
    "order_coefficients",
    "truncation_weights",
]


@dataclass(frozen=True)
class OrderTerms:
    """Body-order energies and the size of the sums that produced them (all eV).

    ``cancellation_eV[n-1]`` is the sum of the absolute values of the terms added up
    into order n: the round-off of ``energies_eV[n-1]`` is about machine epsilon (of the
    model's dtype) times that number.
    """

    energies_eV: np.ndarray
    cancellation_eV: np.ndarray
    energies_per_atom_eV: np.ndarray | None = None


def _atomic_terms(plan: ExpansionPlan, flat_energies: np.ndarray) -> np.ndarray:
    e = flat_energies
    reference = e[plan.singleton_flat[plan.entry_atom]]
    shifted = e[plan.entry_flat] - reference * (plan.entry_order > 1)
    return shifted


def atomic_orders(plan: ExpansionPlan, flat_energies: ArrayLike) -> OrderTerms:
    """Atom-resolved expansion from per-atom energies of every flat entry (eV).

    For a plan with ``centres`` (the atom-sampled expansion), the per-atom rows of the
    atoms that are not centres are NaN, and the order totals and cancellations are sums
    over the centres only (not estimates of the whole structure's).
    """
    e = np.asarray(flat_energies, dtype=np.float64)
    if e.shape != (len(plan.atoms),):
        raise ValueError(f"expected {len(plan.atoms)} per-atom energies, got shape {e.shape}")
    terms = plan.entry_weight * _atomic_terms(plan, e)
    k = plan.max_order
    per_atom = np.bincount(
        plan.entry_atom * k + (plan.entry_order - 1), weights=terms, minlength=plan.n_atoms * k
    ).reshape(plan.n_atoms, k)
    if plan.centres is not None:
        outside = np.ones(plan.n_atoms, dtype=bool)
        outside[plan.centres] = False
        per_atom[outside] = np.nan
    totals = np.array([math.fsum(terms[plan.entry_order == n]) for n in range(1, k + 1)])
    cancellation = np.bincount(plan.entry_order - 1, weights=np.abs(terms), minlength=k)
    return OrderTerms(totals, cancellation, per_atom)


def atomic_orders_torch(plan: ExpansionPlan, flat_energies: torch.Tensor) -> torch.Tensor:
    """Differentiable per-atom, per-order energies, shape (N, K), from a torch tensor.

    Rows of atoms that are not centres of the plan are zero.
    """
    import torch  # torch: expansion imports no torch at import time (pure numpy)

    e = flat_energies.to(torch.float64)
    device = e.device
    weight = torch.as_tensor(plan.entry_weight, dtype=torch.float64, device=device)
    flat = torch.as_tensor(plan.entry_flat, device=device)
    single = torch.as_tensor(plan.singleton_flat[plan.entry_atom], device=device)
    higher = torch.as_tensor(plan.entry_order > 1, dtype=torch.float64, device=device)
    terms = weight * (e[flat] - e[single] * higher)
    k = plan.max_order
    slot = torch.as_tensor(plan.entry_atom * k + (plan.entry_order - 1), device=device)
    out = torch.zeros(plan.n_atoms * k, dtype=torch.float64, device=device)
    return out.index_add(0, slot, terms).reshape(plan.n_atoms, k)


def order_coefficients(plan: ExpansionPlan) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``E^(n) = sum_f C[f, n] e_f`` over flat entries, as (flat, order - 1, C) sorted by flat.

    The entries of orders n >= 2 are measured from the centre atom's one-body energy
    (as in :func:`atomic_orders`); that reference is folded into the coefficients of the
    one-atom entries, so that each chunk of sub-clusters contributes a linear term of
    its own energies (its gradient needs no other chunk). A flat entry may appear more
    than once (for several centres, or as an entry and a reference).
    """
    higher = plan.entry_order > 1
    flat = np.concatenate([plan.entry_flat, plan.singleton_flat[plan.entry_atom[higher]]])
    order = np.concatenate([plan.entry_order, plan.entry_order[higher]]) - 1
    coefficient = np.concatenate([plan.entry_weight, -plan.entry_weight[higher]])
    sort = np.argsort(flat, kind="stable")
    return flat[sort], order[sort], coefficient[sort]


def evaluation_roundoff(
    plan: ExpansionPlan, flat_energies: ArrayLike, relative_error: ArrayLike
) -> np.ndarray:
    """Bound (K,) on the change of each order E^(n) when the energy of every flat entry
    ``k`` is off by at most ``relative_error[k] * |flat_energies[k]|`` (eV).

    E^(n) is linear in the flat energies, ``E^(n) = sum_k C[k, n] e_k`` (the Moebius
    weights, with the one-body references of orders n >= 2 folded into the one-atom
    entries, as :func:`atomic_orders` sums them), so by the triangle inequality
    ``|dE^(n)| <= sum_k |C[k, n]| relative_error[k] |e_k|``. This holds whatever the
    errors' signs and correlations; independent errors give about the square root of
    the number of terms less.
    """
    e = np.abs(np.asarray(flat_energies, dtype=np.float64))
    k = plan.max_order
    flat, order, weight = order_coefficients(plan)
    coefficients = np.bincount(flat * k + order, weights=weight, minlength=len(e) * k)
    size = np.abs(coefficients).reshape(len(e), k) * (np.asarray(relative_error) * e)[:, None]
    return size.sum(axis=0)


def _require_cluster_weights(plan: ExpansionPlan) -> np.ndarray:
    if plan.cluster_weights is None:
        raise ValueError(
            "this plan has no cluster weights: the cluster expansion needs an isolated "
            "cluster with every sub-cluster up to the truncation order (no r_mbe, no "
            "screening that removed sub-clusters)"
        )
    return plan.cluster_weights


def cluster_orders(plan: ExpansionPlan, subcluster_energies: ArrayLike) -> OrderTerms:
    """Cluster expansion from the total energy (eV) of every sub-cluster of the plan."""
    weights = _require_cluster_weights(plan)
    energies = np.asarray(subcluster_energies, dtype=np.float64)
    if energies.shape != (plan.n_subclusters,):
        raise ValueError(
            f"expected {plan.n_subclusters} sub-cluster energies, got shape {energies.shape}"
        )
    fragment = plan.fragment
    one_body = np.zeros(plan.n_atoms)
    one_body[plan.atoms[plan.singleton_flat]] = energies[fragment[plan.singleton_flat]]
    additive = np.bincount(fragment, weights=one_body[plan.atoms], minlength=plan.n_subclusters)
    interaction = energies - additive
    k = plan.max_order
    totals, cancellation = np.zeros(k), np.zeros(k)
    for n in range(1, k + 1):
        terms = weights[:, n - 1] * (energies if n == 1 else interaction)
        totals[n - 1] = math.fsum(terms)
        cancellation[n - 1] = np.abs(terms).sum()
    return OrderTerms(totals, cancellation)


def cluster_order_forces(plan: ExpansionPlan, flat_forces: ArrayLike) -> np.ndarray:
    """Forces per order, shape (K, N, 3) (eV/Angstrom), from the forces on every flat entry.

    ``flat_forces[k]`` is the force on flat entry ``k`` in its own sub-cluster.
    """
    weights = _require_cluster_weights(plan)
    forces = np.asarray(flat_forces, dtype=np.float64)
    per_entry = weights[plan.fragment]  # (M, K)
    out = np.zeros((plan.max_order, plan.n_atoms, 3))
    for n in range(plan.max_order):
        np.add.at(out[n], plan.atoms, per_entry[:, n, None] * forces)
    return out


def truncation_weights(n_atoms: int, max_order: int) -> dict[int, int]:
    """Weights of ``sum_{|T|=k} E(T)`` in the truncated energy ``E_{<=K}``.

    ``E_{<=K} = sum_k (-1)^(K-k) C(N-k-1, K-k) sum_{|T|=k} E(T)`` (the weights QCManyBody
    uses); for K = N only the full cluster remains, with weight 1.
    """
    if max_order >= n_atoms:
        return {n_atoms: 1}
    return {
        k: (-1) ** (max_order - k) * math.comb(n_atoms - k - 1, max_order - k)
        for k in range(1, max_order + 1)
    }
