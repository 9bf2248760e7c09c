"""
A dense periodic cell, atom by atom
===================================

A 64-atom cell of dense hydrogen (rattled bcc at rs = 1.6 bohr, as the shipped NVT case
starts from) with the MD default
``mace-hcells-zbl``: the atom-resolved expansion within ``r_mbe`` = 2 Angstrom, truncated
at K = 3, for 8 atoms drawn at random. Each drawn atom's e_i^(n) is exact; their mean
estimates E^(n)/N, with a standard error.
"""

import matplotlib.pyplot as plt
import numpy as np

from ase_bodyorder import decompose, load_model
from ase_bodyorder.structures import rattled_bcc

atoms = rattled_bcc(64, rs_bohr=1.6, rattle=0.1, rng=np.random.default_rng(0))
result = decompose(
    atoms, load_model("mace-hcells-zbl"), max_order=3, r_mbe=2.0, sample_atoms=8, seed=0
)
print(result.table(f"{atoms.get_chemical_formula()}, mace-hcells-zbl"))

# %%
# The drawn atoms' terms: the pair and three-body terms are large and of opposite
# sign in the dense fluid (``docs/science.md`` section 8 on why K = 3 is not converged
# there).

drawn = result.sample_indices
per_atom = result.energies_per_atom_eV[drawn]
fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
for n in (2, 3):
    ax.bar(
        np.arange(len(drawn)) + 0.2 * (2 * n - 5), per_atom[:, n - 1], 0.4, label=f"$e_i^{{({n})}}$"
    )
ax.axhline(0.0, color="0.6", lw=0.8)
ax.set_xticks(np.arange(len(drawn)), [str(i) for i in drawn])
ax.set_xlabel("drawn atom i")
ax.set_ylabel("energy of atom i in order n (eV)")
ax.set_title("64 H at rs = 1.6 bohr, r_mbe = 2 Angstrom")
ax.legend()
plt.show()
