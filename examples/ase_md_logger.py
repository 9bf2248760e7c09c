"""
Body orders along ASE molecular dynamics
========================================

Langevin dynamics of the shipped low-density H8 cluster (molecular hydrogen) with the
shipped ``mace-h8-low`` model, a :class:`~ase_bodyorder.monitor.BodyOrderLogger`
writing the expansion (K = 3) every 5 steps, and the log read back as a trace, the
same table an i-PI run gives.
"""

import tempfile
from pathlib import Path

import ase.io
import matplotlib.pyplot as plt
import numpy as np
from ase import units
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import thermalize_momenta

from ase_bodyorder import BodyOrderCalculator
from ase_bodyorder.io import example_path
from ase_bodyorder.monitor import BodyOrderLogger, read_ase_log, report_text

atoms = ase.io.read(example_path("h8_low_density.xyz"))
atoms.calc = BodyOrderCalculator("mace-h8-low", max_order=3, stride=5)
rng = np.random.default_rng(0)
thermalize_momenta(atoms, temperature_K=300, rng=rng)
dyn = Langevin(atoms, 0.5 * units.fs, temperature_K=300, friction=0.02, fixcm=False, rng=rng)

with tempfile.TemporaryDirectory() as folder:
    log = Path(folder) / "bo.jsonl"
    dyn.attach(BodyOrderLogger(dyn, atoms, log), interval=5)
    dyn.run(60)
    trace = read_ase_log(log)

print(report_text(trace))

# %%
# E^(n)/N of the logged frames: the molecules vibrate, and the pair term, which holds
# them together, follows.

fig, axes = plt.subplots(2, 1, figsize=(6.4, 4.8), sharex=True, layout="constrained")
for ax, n in zip(axes, (2, 3), strict=True):
    ax.plot(trace.time_fs, trace.energies_per_atom_eV[:, n - 1], "o-")
    ax.set_ylabel(f"$E^{{({n})}}/N$ (eV/atom)")
axes[-1].set_xlabel("time (fs)")
axes[0].set_title("mace-h8-low, H8 at low density, 300 K")
plt.show()
