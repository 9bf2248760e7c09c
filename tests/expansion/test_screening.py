"""Exact screening from the model's cutoff and layers."""

import math

import numpy as np
import pytest
import torch
from ase import Atoms
from helpers import random_cluster

from ase_bodyorder import decompose
from ase_bodyorder.expansion import PlanTooLargeError, Screening, atomic_orders, plan_expansion
from ase_bodyorder.models import hydrogen_demo_model
from ase_bodyorder.models.analytic import switching
from ase_bodyorder.models.base import AtomicModel, SystemResult


def _two_groups(gap=12.0):
    a = random_cluster(4, seed=21)
    b = random_cluster(4, seed=22)
    b.positions += [gap, 0, 0]
    return a + b


def test_distant_groups_screened_equals_unscreened():
    atoms = _two_groups()
    model = hydrogen_demo_model()
    screened = decompose(atoms, model, max_order=8, forces=True)
    full = decompose(atoms, model, max_order=8, forces=True, screening=False)
    assert screened.n_subclusters < full.n_subclusters
    assert screened.n_subclusters == 2 * (2**4 - 1)
    assert screened.n_screened_out > 0
    np.testing.assert_allclose(screened.energies_eV, full.energies_eV, atol=1e-10)
    np.testing.assert_allclose(screened.forces_eV_per_A, full.forces_eV_per_A, atol=1e-9)
    assert screened.residual_eV == pytest.approx(0, abs=1e-10)


def _chain(n, spacing):
    return np.array([[spacing * k, 0.0, 0.0] for k in range(n)])


@pytest.mark.parametrize("layers", [1, 2, None])
def test_screening_of_a_chain_keeps_exactly_the_connected_sets(layers):
    """A chain with nearest-neighbour edges: any per-atom energy that depends on atoms
    within `layers` hops gives the same orders screened and unscreened."""
    positions = _chain(6, 1.0)
    k = 4
    full = plan_expansion(positions, max_order=k)
    screened = plan_expansion(positions, max_order=k, screening=Screening(1.5, layers))
    assert screened.n_subclusters < full.n_subclusters

    def local_energies(plan):
        """e_i(T): a non-additive function of the atoms of T within `layers` hops of i."""
        out = np.zeros(len(plan.atoms))
        for a, b in zip(plan.offsets[:-1], plan.offsets[1:], strict=True):
            members = set(plan.atoms[a:b].tolist())
            for j in range(a, b):
                i = int(plan.atoms[j])
                reach, front = {i}, {i}
                for _ in range(layers or 99):
                    front = {x + d for x in front for d in (-1, 1) if x + d in members} - reach
                    reach |= front
                out[j] = np.sin(1 + sum(2.0**x for x in reach)) * len(reach) ** 2
        return out

    a = atomic_orders(full, local_energies(full))
    b = atomic_orders(screened, local_energies(screened))
    np.testing.assert_allclose(b.energies_per_atom_eV, a.energies_per_atom_eV, atol=1e-12)
    assert np.abs(a.energies_eV[1:3]).min() > 1e-6


def test_isolated_atoms_need_only_one_body_terms():
    atoms = Atoms("H3", positions=_chain(3, 20.0))
    body = decompose(atoms, hydrogen_demo_model(), max_order=3)
    assert body.n_subclusters == 3
    np.testing.assert_allclose(body.energies_eV[1:], 0, atol=1e-14)


@pytest.mark.parametrize("layers", [None, 1, 2, 3])
@pytest.mark.parametrize("max_order", [1, 2, 3])
def test_closed_form_sets_up_to_order_3_equal_the_general_enumeration(max_order, layers):
    """The vectorised K <= 3 path gives the general path's sets, weights and refusals."""
    from ase_bodyorder.expansion.screening import _screened_sets, _screened_sets_upto_3

    rng = np.random.default_rng(max_order * 10 + (layers or 0))
    for trial in range(60):
        m1 = int(rng.integers(2, 14))
        adjacency = rng.random((m1, m1)) < rng.uniform(0.1, 0.9)
        adjacency = np.triu(adjacency, 1)
        adjacency = adjacency | adjacency.T
        general = _screened_sets(adjacency, max_order, layers, 10**6)
        per_size, screened_out = _screened_sets_upto_3(adjacency, max_order, layers, 10**6)
        fast = {}
        for size, (picked, weights) in per_size.items():
            assert (picked[:, 0] == 0).all() and picked.shape[1] == size
            for nodes, w in zip(picked, weights, strict=True):
                fast[tuple(int(a) - 1 for a in nodes[1:])] = w
        assert fast.keys() == general.keys(), trial
        for key, w in general.items():
            np.testing.assert_array_equal(fast[key], w)
        m = m1 - 1
        assert screened_out == sum(math.comb(m, k) for k in range(max_order)) - len(general)
        # refusals: the same limit refuses both or neither
        for limit in (1, 3, 8):
            try:
                _screened_sets(adjacency, max_order, layers, limit)
                refused = False
            except PlanTooLargeError:
                refused = True
            if refused:
                with pytest.raises(PlanTooLargeError):
                    _screened_sets_upto_3(adjacency, max_order, layers, limit)
            else:
                _screened_sets_upto_3(adjacency, max_order, layers, limit)


class _TwoLayerMessages(AtomicModel):
    """Hydrogen with two message-passing layers: an atom's energy depends on its
    neighbours within ``cutoff`` and, through their coordination, on the neighbours of
    its neighbours (two hops). ``declared_layers``: what it tells the expansion."""

    atomic_numbers = frozenset({1})
    cutoff = 1.5

    def __init__(self, declared_layers: int):
        self.interaction_layers = declared_layers

    def _energies(self, positions, first, second, n):
        vectors = positions[second] - positions[first]
        r = torch.linalg.vector_norm(vectors, dim=1)
        keep = r.detach() < self.cutoff
        first, second, r = first[keep], second[keep], r[keep]
        g = switching(r, self.cutoff, 0.5 * self.cutoff) * torch.exp(-r)
        zeros = torch.zeros(n, dtype=torch.float64)
        coordination = zeros.index_add(0, first, g)  # layer 1
        messages = g * torch.tanh(1 + coordination[second])  # layer 2
        return zeros.index_add(0, first, messages) + 0.3 * coordination**2 - 13.6

    def fragment_energies(self, batch):
        first, second = (torch.as_tensor(a) for a in batch.intra_pairs())
        return self._energies(batch.positions.to(torch.float64), first, second, len(batch.numbers))

    def system(self, atoms, *, forces=True, stress=False):
        n = len(atoms)
        first, second = (torch.as_tensor(a) for a in np.nonzero(~np.eye(n, dtype=bool)))
        positions = torch.tensor(atoms.positions, dtype=torch.float64, requires_grad=forces)
        energies = self._energies(positions, first, second, n)
        out = {"energy": float(energies.sum()), "energies": energies.detach().numpy()}
        if forces:
            out["forces"] = -torch.autograd.grad(energies.sum(), positions)[0].numpy()
        return SystemResult(**out)


def _zigzag(n: int) -> Atoms:
    """A zigzag chain: neighbours 1.0 Angstrom apart (bonded, cutoff 1.5), second
    neighbours 1.73 Angstrom (not bonded): the bond graph is a path."""
    positions = [[0.866 * k, 0.5 * (k % 2), 0.0] for k in range(n)]
    return Atoms(f"H{n}", positions=positions)


@pytest.mark.parametrize("max_order", [3, 4])
def test_screening_is_exact_at_the_layer_boundary_and_no_further(max_order):
    """End to end: a two-layer model's orders and forces are the same screened (sets
    within two hops of the centre kept) as unscreened; declaring one layer screens out
    sets that matter (an atom two hops away changes the centre's energy), so that
    expansion differs."""
    atoms = _zigzag(6)
    distances = atoms.get_all_distances()
    bonded = np.abs(np.subtract.outer(range(6), range(6))) == 1  # a path
    assert np.array_equal((distances < 1.5) & (distances > 0), bonded)
    two = _TwoLayerMessages(declared_layers=2)
    full = decompose(atoms, two, max_order=max_order, forces=True, screening=False)
    screened = decompose(atoms, two, max_order=max_order, forces=True)
    assert screened.n_subclusters < full.n_subclusters and screened.n_screened_out > 0
    np.testing.assert_allclose(screened.energies_eV, full.energies_eV, atol=1e-12)
    np.testing.assert_allclose(screened.forces_eV_per_A, full.forces_eV_per_A, atol=1e-12)
    np.testing.assert_allclose(screened.energies_per_atom_eV, full.energies_per_atom_eV, atol=1e-12)
    one = decompose(atoms, _TwoLayerMessages(declared_layers=1), max_order=max_order)
    assert one.n_subclusters < screened.n_subclusters
    assert abs(one.energies_eV[2] - full.energies_eV[2]) > 1e-3  # the three-body term
