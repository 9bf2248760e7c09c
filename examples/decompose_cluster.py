"""First steps: the body-order expansion of a hydrogen cluster, with a calculator.

python examples/decompose_cluster.py
"""

import ase.io

from ase_bodyorder import BodyOrderCalculator, store_body_order_results
from ase_bodyorder.cli import example_path

atoms = ase.io.read(example_path("h8_high_density.xyz"))
atoms.calc = BodyOrderCalculator("h-morse-atm", max_order=4, body_order_forces=True)

print(f"energy {atoms.get_potential_energy():.6f} eV")
print(atoms.calc.body_order.table("H8, truncated at order 4"))

forces = atoms.calc.results["body_order_forces"]  # (K, N, 3), eV/Angstrom
print("largest 3-body force:", abs(forces[2]).max(), "eV/Angstrom")

store_body_order_results(atoms)
ase.io.write("h8_body_orders.extxyz", atoms)
print("wrote h8_body_orders.extxyz")
