"""
First steps: the body-order expansion of a hydrogen cluster
===========================================================

The shipped H8 cluster at high density, expanded with the analytic model
``h-morse-atm`` (isolated-atom energy + Morse pairs + Axilrod-Teller-Muto triples)
through the ASE calculator, truncated at order 4. Run it with
``python examples/decompose_cluster.py``.
"""

import tempfile
from pathlib import Path

import ase.io
import matplotlib.pyplot as plt
import numpy as np

from ase_bodyorder import BodyOrderCalculator, store_body_order_results
from ase_bodyorder.io import example_path

atoms = ase.io.read(example_path("h8_high_density.xyz"))
atoms.calc = BodyOrderCalculator("h-morse-atm", max_order=4, body_order_forces=True)

print(f"energy {atoms.get_potential_energy():.6f} eV")
print(atoms.calc.body_order.table("H8, truncated at order 4"))

forces = atoms.calc.results["body_order_forces"]  # (K, N, 3), eV/Angstrom
print(f"largest 3-body force: {abs(forces[2]).max():.4f} eV/Angstrom")

# %%
# The results stay with the structure: ``store_body_order_results`` writes them into
# ``atoms.info`` / ``atoms.arrays``, so an extxyz file keeps them.

with tempfile.TemporaryDirectory() as folder:
    path = Path(folder) / "h8_body_orders.extxyz"
    store_body_order_results(atoms)
    ase.io.write(path, atoms)
    print("stored:", sorted(k for k in ase.io.read(path).arrays if k.startswith("body")))

# %%
# Each atom's share of each order, e_i^(n): the pair term binds every atom, the
# three-body term (ATM) is small and of either sign, and this model has no 4-body term.

per_atom = atoms.calc.results["body_order_energies_per_atom"]  # (N, K), eV
orders = np.arange(1, per_atom.shape[1] + 1)
fig, ax = plt.subplots(figsize=(6.4, 3.6), layout="constrained")
for n in orders[1:]:
    ax.plot(np.arange(len(atoms)), per_atom[:, n - 1], "o-", label=f"$e_i^{{({n})}}$")
ax.axhline(0.0, color="0.6", lw=0.8)
ax.set_xlabel("atom index i")
ax.set_ylabel("energy of atom i in order n (eV)")
ax.set_title("h-morse-atm, H8 at high density")
ax.legend()
plt.show()
