"""Regenerate the shipped example structures and their provenance files.

python -m ase_bodyorder.data.examples.regenerate
"""

from __future__ import annotations

import json
from pathlib import Path

import ase
import ase.io
import numpy as np

from ase_bodyorder.structures import HighDensity, LowDensity, sample_clusters

HERE = Path(__file__).parent

EXAMPLES = {
    "h8_high_density.xyz": (HighDensity(n_atoms=8, rs_bohr=1.75, min_distance=0.6), 20261124),
    "h8_low_density.xyz": (LowDensity(n_atoms=8), 20261124),
}


def main() -> None:
    for name, (protocol, seed) in EXAMPLES.items():
        (atoms,) = sample_clusters(protocol, 1, seed=seed)
        ase.io.write(HERE / name, atoms, format="extxyz")
        provenance = {
            "file": name,
            "generator": "python -m ase_bodyorder.data.examples.regenerate",
            "function": "ase_bodyorder.reference.clusters.sample_clusters",
            "protocol": type(protocol).__name__,
            "parameters": {k: v for k, v in atoms.info.items() if k != "index"},
            "seed": seed,
            "ase_version": ase.__version__,
            "numpy_version": np.__version__,
        }
        (HERE / (name + ".provenance.json")).write_text(json.dumps(provenance, indent=2) + "\n")
        print(f"wrote {name}")


if __name__ == "__main__":
    main()
