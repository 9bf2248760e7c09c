"""The hydrogen-cluster samplers: infeasible requests are refused at once."""

import time

import numpy as np
import pytest

from ase_bodyorder import BodyOrderError
from ase_bodyorder.reference.clusters import HighDensity, LowDensity, sample_clusters


@pytest.mark.parametrize("protocol", [HighDensity(n_atoms=200), LowDensity(n_atoms=200)])
def test_infeasible_packing_is_refused_in_seconds(protocol):
    """Regression: 200 atoms were refused only after 213 s of rejection sampling."""
    start = time.perf_counter()
    with pytest.raises(BodyOrderError, match="tries per cluster are expected"):
        sample_clusters(protocol, count=1, seed=0)
    assert time.perf_counter() - start < 60  # seconds, not minutes (a wide margin)


@pytest.mark.parametrize("protocol", [HighDensity(n_atoms=12), LowDensity(n_atoms=12)])
def test_feasible_clusters_keep_their_constraints(protocol):
    (atoms,) = sample_clusters(protocol, count=1, seed=3)
    d = atoms.get_all_distances()
    d[np.diag_indices(len(atoms))] = np.inf
    limit = getattr(protocol, "min_distance", None) or protocol.bond_length - 0.2
    assert d.min() >= limit
