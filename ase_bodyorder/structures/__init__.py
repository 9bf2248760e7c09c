"""Every hydrogen-structure sampler, and the density conversions they share.

Units: lengths and positions in Angstrom, the Wigner-Seitz radius ``rs_bohr`` in bohr,
number densities in atoms per Angstrom^3, mass densities in g/cm^3. ``rs`` is the
radius of the sphere whose volume is the volume per proton: ``4/3 pi rs^3 = V / N``.

* **clusters** (the reference sets, ``docs/science.md`` section 4): :class:`HighDensity`
  (atoms uniform in a sphere) and :class:`LowDensity` (H2 molecules in a sphere), drawn
  by :func:`sample_clusters`;
* **periodic cells** (the periodic DFT training sets): :class:`DenseBulk` (dense cells),
  drawn by :func:`sample_bulk`, and :class:`CrossoverBulk` (molecular fluid to atomic
  phase), drawn by :func:`sample_crossover_bulk`;
* **MD starting structures** (the i-PI cases of :mod:`ase_bodyorder.ipi.cases`):
  :func:`rattled_bcc` and :func:`molecular_hydrogen`;
* **test clusters**: :func:`random_cluster`;
* **clusters of other elements** (the universal-MLIP study, issue 32):
  :class:`ElementClusters` (atoms uniform in a sphere at a stated number density and
  minimum distance), drawn by :func:`sample_element_clusters`.

The samplers live in the modules of this package, by kind: ``densities``
(the conversions), ``clusters`` (reference and test clusters), ``cells``
(periodic cells and their fragments), ``md_starts`` (MD starting structures) and
``elements`` (clusters of other elements); every name is imported from here.
None of them imports more of ``ase_bodyorder`` than ``expansion``.

Every sampler takes a seed or a ``numpy.random.Generator`` and gives the same structure
for the same seed; the shipped data sets depend on it (``tests/test_structures.py``
checks them against the shipped files).
"""

from __future__ import annotations

from .cells import CrossoverBulk, DenseBulk, cell_fragments, sample_bulk, sample_crossover_bulk
from .clusters import HighDensity, LowDensity, random_cluster, sample_clusters
from .densities import (
    cubic_box_length,
    density_g_cm3,
    number_density_per_A3,
    rs_bohr_from_density_g_cm3,
    rs_bohr_from_number_density,
    sphere_radius,
)
from .elements import ElementClusters, sample_element_clusters
from .md_starts import bcc_repeat, min_image_distance, molecular_hydrogen, rattled_bcc

# the classes' public home, as before the split into modules: what pickles, type names and
# the API docs show (reference/ re-exports two of them; two documented copies naming the
# same module inside this package would clash in Sphinx)
for _protocol in (CrossoverBulk, DenseBulk, ElementClusters, HighDensity, LowDensity):
    _protocol.__module__ = __name__

__all__ = [
    "CrossoverBulk",
    "DenseBulk",
    "ElementClusters",
    "HighDensity",
    "LowDensity",
    "bcc_repeat",
    "cell_fragments",
    "cubic_box_length",
    "density_g_cm3",
    "min_image_distance",
    "molecular_hydrogen",
    "number_density_per_A3",
    "random_cluster",
    "rattled_bcc",
    "rs_bohr_from_density_g_cm3",
    "rs_bohr_from_number_density",
    "sample_bulk",
    "sample_clusters",
    "sample_crossover_bulk",
    "sample_element_clusters",
    "sphere_radius",
]
