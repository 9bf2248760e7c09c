"""
A shipped model's body orders against FCI
=========================================

A held-out H8 cluster (high density), expanded in full (K = 8, 255 sub-clusters) with
two shipped MACE models: ``mace-h8-high``, trained on whole clusters only, and
``mace-h8-high-f50``, trained on the same clusters plus FCI fragments of training
clusters. The reference is the FCI/STO-6G expansion of the same cluster, shipped with
the package. Both models fit the total energy; how they split it into orders is
another matter.
"""

import json
from importlib.resources import files
from pathlib import Path

import ase.io
import matplotlib.pyplot as plt
import numpy as np

from ase_bodyorder import decompose, load_model

DATA_DIR = Path(str(files("ase_bodyorder.data.reference")))
records = json.loads((DATA_DIR / "h8-high_mbe_fci_sto6g.json").read_text())["clusters"]
record = records[0]
clusters = {int(a.info["index"]): a for a in ase.io.read(DATA_DIR / "h8-high_clusters.xyz", ":")}
atoms = clusters[record["cluster"]]
fci = np.array(record["energies_eV"])
print(f"cluster {record['cluster']}: FCI energy {record['total_energy_eV']:.3f} eV")

results = {}
for name in ("mace-h8-high", "mace-h8-high-f50"):
    results[name] = decompose(atoms, load_model(name), max_order=len(atoms))
    print(results[name].table(name))

# %%
# E^(n) per order. E^(1) is the model's own isolated atom times eight; the plain model,
# which never saw a lone atom, puts it far from the exact atom and makes up for it in
# the higher orders.

orders = np.arange(1, len(fci) + 1)
fig, ax = plt.subplots(figsize=(6.4, 3.8), layout="constrained")
ax.plot(orders, fci, "ks-", label="FCI/STO-6G")
for name, result in results.items():
    ax.plot(orders, result.energies_eV, "o--", label=name)
ax.axhline(0.0, color="0.6", lw=0.8)
ax.set_xlabel("body order n")
ax.set_ylabel("$E^{(n)}$ of the cluster (eV)")
ax.set_title(f"held-out H8 cluster {record['cluster']} (high density)")
ax.legend()
plt.show()
