"""Assembly against brute-force sums over subsets (exact, in fractions): the order totals,
their compensated summation on ill-conditioned inputs, and the cancellation that the
round-off estimates are made of."""

from fractions import Fraction
from itertools import combinations
from math import comb

import numpy as np
import pytest

from ase_bodyorder.expansion import plan_expansion
from ase_bodyorder.expansion.assemble import atomic_orders, cluster_orders
from ase_bodyorder.structures import random_cluster

N = 5
#: a power of two: any small integer times it is exact in float64, and it swallows
#: every small integer added to it (2**60 + 1 == 2**60)
BIG = 2.0**60


@pytest.fixture(scope="module")
def plan():
    return plan_expansion(random_cluster(N, seed=3).positions, max_order=N, min_distance=0.0)


def _members(plan, f: int) -> frozenset:
    return frozenset(plan.atoms[plan.offsets[f] : plan.offsets[f + 1]].tolist())


def _subset_of_flat(plan) -> list[frozenset]:
    return [_members(plan, f) for f in plan.fragment]


def _ill_conditioned_flat(plan, rng) -> np.ndarray:
    """Per-atom energies: small integers, one-atom ones 0, and two entries of the same
    sub-cluster size at +BIG and -BIG (they cancel in every order exactly)."""
    subsets = _subset_of_flat(plan)
    energies = rng.integers(-50, 50, size=len(plan.atoms)).astype(float)
    energies[[len(s) == 1 for s in subsets]] = 0.0
    pairs = [k for k, s in enumerate(subsets) if len(s) == 3]
    energies[pairs[0]], energies[pairs[-1]] = BIG, -BIG
    return energies


def _brute_force_atomic(plan, flat) -> list[Fraction]:
    """E^(n) = sum_i sum_{|U|=n-1} sum_{V subset U} (-1)^(|U|-|V|) e_i(V + {i}),
    exactly (docs/science.md, atom-resolved MBE)."""
    e = {
        (int(plan.atoms[k]), subset): Fraction(float(flat[k]))
        for k, subset in enumerate(_subset_of_flat(plan))
    }
    out = []
    for n in range(1, N + 1):
        total = Fraction(0)
        for i in range(N):
            others = [j for j in range(N) if j != i]
            for u in combinations(others, n - 1):
                for size in range(len(u) + 1):
                    for v in combinations(u, size):
                        total += (-1) ** (len(u) - size) * e[(i, frozenset((i, *v)))]
        out.append(total)
    return out


def _brute_force_cluster(energies: dict) -> list[Fraction]:
    """E^(n) = sum_{|S|=n} sum_{T subset S} (-1)^(|S|-|T|) E(T), exactly."""
    out = []
    for n in range(1, N + 1):
        total = Fraction(0)
        for s in combinations(range(N), n):
            for size in range(1, n + 1):
                for t in combinations(s, size):
                    total += (-1) ** (n - size) * energies[frozenset(t)]
        out.append(total)
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_atomic_orders_are_the_exact_sums_on_ill_conditioned_energies(plan, seed):
    """Every term is exact in float64 and the terms of each order cancel from 2**60 to
    small integers: the compensated sums give the exact orders, a plain sum does not
    (it loses the small terms added to 2**60)."""
    flat = _ill_conditioned_flat(plan, np.random.default_rng(seed))
    exact = _brute_force_atomic(plan, flat)
    terms = atomic_orders(plan, flat)
    assert [Fraction(float(x)) for x in terms.energies_eV] == exact
    assert terms.cancellation_eV[2] >= 2 * BIG  # the big pair is in every order >= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_orders_are_the_exact_sums_on_ill_conditioned_energies(plan, seed):
    rng = np.random.default_rng(seed)
    subsets = [_members(plan, f) for f in range(plan.n_subclusters)]
    energies = rng.integers(-50, 50, size=len(subsets)).astype(float)
    energies[[len(s) == 1 for s in subsets]] = 0.0
    triples = [f for f, s in enumerate(subsets) if len(s) == 3]
    energies[triples[0]], energies[triples[-1]] = BIG, -BIG
    exact = _brute_force_cluster(
        {s: Fraction(float(x)) for s, x in zip(subsets, energies, strict=True)}
    )
    terms = cluster_orders(plan, energies)
    assert [Fraction(float(x)) for x in terms.energies_eV] == exact


def _brute_force_cancellation(plan, flat) -> np.ndarray:
    """sum over atoms i and sub-clusters T of i (|T| = t) of |W_n(t) (e_i(T) - e_i({i}))|
    for n >= 2, W_n(t) = (-1)^(n-t) C(N-t, n-t) the weight of e_i(T) in e_i^(n) of a
    full expansion; sum_i |e_i({i})| for n = 1."""
    e = {(int(plan.atoms[k]), s): float(flat[k]) for k, s in enumerate(_subset_of_flat(plan))}
    out = np.zeros(N)
    for (i, subset), value in e.items():
        t = len(subset)
        if t == 1:
            out[0] += abs(value)
            continue
        shifted = abs(value - e[(i, frozenset((i,)))])
        for n in range(t, N + 1):
            out[n - 1] += comb(N - t, n - t) * shifted
    return out


def test_cancellation_is_the_brute_force_sum_and_ignores_a_per_atom_shift(plan):
    """The cancellation (the round-off estimate divided by machine epsilon) is measured
    from the one-body energies: against a brute-force sum, and unchanged by a constant
    added to every energy of an atom (an isolated-atom energy), which moves E^(1) only."""
    rng = np.random.default_rng(7)
    flat = rng.normal(scale=0.5, size=len(plan.atoms)).round(6)
    terms = atomic_orders(plan, flat)
    np.testing.assert_allclose(terms.cancellation_eV, _brute_force_cancellation(plan, flat))
    offsets = np.array([-13.6, -14.25, -13.5, -12.75, -15.0])  # eV, exact in binary
    shifted = atomic_orders(plan, flat + offsets[plan.atoms])
    np.testing.assert_allclose(shifted.cancellation_eV[1:], terms.cancellation_eV[1:])
    np.testing.assert_allclose(shifted.energies_eV[1:], terms.energies_eV[1:], atol=1e-12)
    assert shifted.energies_eV[0] == pytest.approx(terms.energies_eV[0] + offsets.sum())
    # the shift is large against the interactions: measured from the atom energies, the
    # cancellation of the higher orders stays far below what the raw energies would give
    raw = np.array(
        [
            sum(
                comb(N - len(s), n - len(s)) * abs(float(x))
                for s, x in zip(_subset_of_flat(plan), flat + offsets[plan.atoms], strict=True)
                if 2 <= len(s) <= n
            )
            for n in range(1, N + 1)
        ]
    )
    assert np.all(shifted.cancellation_eV[1:] < raw[1:] / 5)
