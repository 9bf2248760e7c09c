"""Exact screening from the model's cutoff and layers."""

import math

import numpy as np
import pytest
from ase import Atoms
from helpers import random_cluster

from ase_bodyorder import decompose
from ase_bodyorder.expansion import PlanTooLargeError, Screening, atomic_orders, plan_expansion
from ase_bodyorder.models import hydrogen_demo_model


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
