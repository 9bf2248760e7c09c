"""Combinatorics of the plan, checked against brute-force inclusion-exclusion."""

import itertools
import math

import numpy as np
import pytest
from helpers import DENSE_CELL

from ase_bodyorder.expansion import (
    BodyOrderError,
    atomic_orders,
    cluster_orders,
    parse_subcluster_label,
    plan_expansion,
    subcluster_label,
    truncation_weights,
)


def _positions(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 3 * n ** (1 / 3), size=(n, 3))


def _subsets(plan):
    return [
        frozenset(plan.atoms[a:b].tolist())
        for a, b in zip(plan.offsets[:-1], plan.offsets[1:], strict=True)
    ]


@pytest.mark.parametrize("n, k", [(1, 1), (4, 2), (6, 6), (7, 3)])
def test_cluster_plan_holds_each_subset_once(n, k):
    plan = plan_expansion(_positions(n), max_order=k)
    subsets = _subsets(plan)
    assert len(subsets) == len(set(subsets)) == sum(math.comb(n, j) for j in range(1, k + 1))
    assert all(1 <= len(s) <= k for s in subsets)


def _brute_force_orders(n, k, total):
    """E^(order) by explicit Moebius inversion over subsets of a set function."""
    orders = np.zeros(k)
    for size in range(1, k + 1):
        for s in itertools.combinations(range(n), size):
            eps = sum(
                (-1) ** (size - t) * total(frozenset(sub))
                for t in range(1, size + 1)
                for sub in itertools.combinations(s, t)
            )
            orders[size - 1] += eps
    return orders


@pytest.mark.parametrize("n, k", [(5, 5), (6, 3), (6, 1)])
def test_cluster_orders_match_brute_force_moebius(n, k):
    plan = plan_expansion(_positions(n), max_order=k)
    rng = np.random.default_rng(7)
    values = {s: rng.normal() for s in _subsets(plan)}
    energies = np.array([values[s] for s in _subsets(plan)])
    expected = _brute_force_orders(n, k, values.__getitem__)
    np.testing.assert_allclose(cluster_orders(plan, energies).energies_eV, expected, atol=1e-12)


@pytest.mark.parametrize("n, k", [(6, 2), (6, 4), (7, 6)])
def test_truncated_energy_uses_qcmanybody_weights(n, k):
    plan = plan_expansion(_positions(n), max_order=n)
    rng = np.random.default_rng(11)
    subsets = _subsets(plan)
    energies = rng.normal(size=len(subsets))
    orders = cluster_orders(plan, energies).energies_eV
    weights = truncation_weights(n, k)
    direct = sum(weights.get(len(s), 0) * e for s, e in zip(subsets, energies, strict=True))
    assert sum(orders[:k]) == pytest.approx(direct, abs=1e-10)
    full = energies[[len(s) == n for s in subsets]][0]
    assert sum(orders) == pytest.approx(full, abs=1e-10)


def test_atomic_and_cluster_expansions_agree_for_any_per_atom_energies():
    """eps(S) = sum_{i in S} eta_i(S - {i}): both routes give the same E^(n)."""
    n = 6
    plan = plan_expansion(_positions(n), max_order=n)
    rng = np.random.default_rng(5)
    per_atom = rng.normal(size=len(plan.atoms))  # arbitrary e_i(T)
    totals = np.bincount(plan.fragment, weights=per_atom)
    atomic = atomic_orders(plan, per_atom)
    cluster = cluster_orders(plan, totals)
    np.testing.assert_allclose(atomic.energies_eV, cluster.energies_eV, atol=1e-11)
    # the full expansion of every atom returns its energy in the whole cluster
    whole = plan.offsets[-2]
    np.testing.assert_allclose(
        atomic.energies_per_atom_eV.sum(axis=1), per_atom[whole:][np.argsort(plan.atoms[whole:])]
    )


def test_atomic_truncation_matches_brute_force_eta():
    n, k = 6, 3
    plan = plan_expansion(_positions(n), max_order=k)
    rng = np.random.default_rng(9)
    per_atom = rng.normal(size=len(plan.atoms))
    lookup = {}
    for a, b in zip(plan.offsets[:-1], plan.offsets[1:], strict=True):
        members = frozenset(plan.atoms[a:b].tolist())
        for j in range(a, b):
            lookup[(int(plan.atoms[j]), members)] = per_atom[j]
    expected = np.zeros((n, k))
    for i in range(n):
        others = [j for j in range(n) if j != i]
        for size in range(k):
            for u in itertools.combinations(others, size):
                eta = sum(
                    (-1) ** (size - t) * lookup[(i, frozenset(v) | {i})]
                    for t in range(size + 1)
                    for v in itertools.combinations(u, t)
                )
                expected[i, size] += eta
    got = atomic_orders(plan, per_atom).energies_per_atom_eV
    np.testing.assert_allclose(got, expected, atol=1e-12)


@pytest.mark.parametrize(
    "atoms, shifts",
    [([0, 3, 5], None), ([2, 2, 7], [[0, 0, 0], [1, 0, -1], [0, 2, 0]])],
)
def test_labels_round_trip(atoms, shifts):
    label = subcluster_label(atoms, None if shifts is None else np.array(shifts))
    back_atoms, back_shifts = parse_subcluster_label(label)
    assert back_atoms.tolist() == atoms
    assert back_shifts.tolist() == (shifts or [[0, 0, 0]] * len(atoms))


def test_plan_labels_are_unique_and_parse_back():
    plan = plan_expansion(_positions(5), max_order=3)
    labels = plan.labels()
    assert len(set(labels)) == plan.n_subclusters
    atoms, _ = parse_subcluster_label(labels[-1])
    assert atoms.tolist() == plan.atoms[plan.offsets[-2] :].tolist()


def _dense_cell():
    """The 64-atom high-density cell of the shipped NVT case (rs = 1.6 bohr)."""
    import ase.io

    return ase.io.read(DENSE_CELL)


def _plan_peak_bytes(**kwargs) -> int:
    import tracemalloc

    tracemalloc.start()
    try:
        plan_expansion(**kwargs)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_estimate_brackets_the_measured_peak():
    """The budget refuses what needs more than it and accepts what needs less."""
    from ase_bodyorder.expansion import PlanTooLargeError

    atoms = _dense_cell()
    kwargs = dict(positions=atoms.positions, cell=atoms.cell[:], pbc=True, max_order=5, r_mbe=2.0)
    peak = _plan_peak_bytes(**kwargs)
    with pytest.raises(PlanTooLargeError, match="GiB of memory"):
        plan_expansion(**kwargs, max_memory_GiB=0.5 * peak / 2**30)
    plan_expansion(**kwargs, max_memory_GiB=3 * peak / 2**30)


def test_plan_over_the_memory_budget_is_refused_in_seconds():
    """Regression: order 10 at r_mbe = 2 A passed the sub-cluster budget and took 24 GB."""
    import time

    from ase_bodyorder.expansion import PlanTooLargeError

    atoms = _dense_cell()
    start = time.perf_counter()
    with pytest.raises(PlanTooLargeError, match=r"needs an estimated [0-9.]+ GiB"):
        plan_expansion(
            atoms.positions,
            cell=atoms.cell[:],
            pbc=True,
            max_order=10,
            r_mbe=2.0,
            max_memory_GiB=1.0,
        )
    assert time.perf_counter() - start < 60  # seconds, not minutes (a wide margin)


def test_screened_plan_over_budget_is_refused_in_seconds():
    """Regression: order 4 on a 200-atom cluster took 134 s to be refused."""
    import time

    from ase_bodyorder.expansion import PlanTooLargeError, Screening

    cell = _dense_cell().repeat((2, 2, 1))
    positions = cell.positions[:200]
    start = time.perf_counter()
    with pytest.raises(PlanTooLargeError, match="at least"):
        plan_expansion(positions, max_order=4, screening=Screening(cutoff=5.0, layers=2))
    assert time.perf_counter() - start < 60  # seconds, not minutes (a wide margin)


@pytest.mark.parametrize("bad", [0, -1.0, float("nan"), "2"])
def test_memory_budget_must_be_positive(bad):
    with pytest.raises(BodyOrderError, match="max_memory_GiB"):
        plan_expansion(np.eye(3) * 2.0, max_order=2, max_memory_GiB=bad)


def test_subclusters_are_the_plans_rows_with_labels_that_parse_back():
    """plan.subclusters() (the seam for methods that compute sub-cluster energies
    themselves): one per distinct sub-cluster, labels equal to plan.labels(), each
    label parsing back to the atoms and shifts whose positions it gives."""
    from ase.build import bulk

    from ase_bodyorder.expansion import parse_subcluster_label, plan_expansion

    atoms = bulk("H", "bcc", a=2.0, cubic=True).repeat(2)
    atoms.rattle(0.1, seed=1)
    plan = plan_expansion(
        atoms.positions, cell=atoms.cell, pbc=True, max_order=3, r_mbe=1.9, centres=[0, 5]
    )
    subclusters = list(plan.subclusters())
    assert len(subclusters) == plan.n_subclusters
    assert [sub.label for sub in subclusters] == plan.labels()
    assert any((sub.shifts != 0).any() for sub in subclusters)  # periodic images occur
    for sub in subclusters:
        indices, shifts = parse_subcluster_label(sub.label)
        np.testing.assert_array_equal(indices, sub.atoms)
        np.testing.assert_allclose(
            atoms.positions[indices] + shifts @ np.asarray(atoms.cell), sub.positions, atol=1e-12
        )


def test_a_tiny_memory_budget_is_quoted_as_given_not_as_zero():
    """Regression (issue 35, item 9): max_memory_GiB=1e-9 said 'needs at least 0.0 GiB,
    budget 0.0'; both numbers keep their significant digits."""
    from ase_bodyorder.expansion import PlanTooLargeError, plan_expansion

    positions = np.random.default_rng(0).uniform(0, 4, (12, 3))
    with pytest.raises(PlanTooLargeError) as error:
        plan_expansion(positions, max_order=3, max_memory_GiB=1e-9)
    assert "max_memory_GiB=1e-09" in str(error.value)
    assert " 0.0 GiB" not in str(error.value)
