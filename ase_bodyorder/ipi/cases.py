"""The i-PI cases of ``md_inputs/``: hydrogen at high and low density.

    python -m ase_bodyorder.ipi.cases [OUTPUT_DIR]     (default: md_inputs/)

writes, for every case, ``input.xml`` (i-PI), ``init.extxyz`` (the initial structure,
Angstrom, periodic cubic cell) and ``case.json`` (what the case is, how the structure
was generated: parameters, seed, versions; and the driver defaults the runner uses).
The same seed gives the same structure.

Density: ``rs`` is the Wigner-Seitz radius of the protons, ``4/3 pi rs^3 = V / N``. The
structure samplers and density conversions are those of :mod:`ase_bodyorder.structures`
(importable from here as before).
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import ase
import ase.io
import numpy as np
from ase import Atoms

from ..structures import (
    bcc_repeat,
    cubic_box_length,
    density_g_cm3,
    molecular_hydrogen,
    rattled_bcc,
)
from .extras import EXTRAS_TRAJECTORIES

__all__ = [
    "CASES",
    "Case",
    "density_g_cm3",
    "bcc_repeat",
    "cubic_box_length",
    "molecular_hydrogen",
    "rattled_bcc",
    "write_case",
    "write_cases",
]

STRUCTURE_FILE = "init.extxyz"
CASE_FILE = "case.json"
#: the UNIX socket name in the shipped inputs (the runner gives each run its own)
SOCKET_ADDRESS = "bodyorder"
FORCEFIELD = "bodyorder"


@dataclass(frozen=True)
class Case:
    """One i-PI case: structure, ensemble and the driver defaults of its runs.

    The structure is a rattled bcc crystal, or (``molecular``) randomly placed H2
    molecules. Temperatures in K, times in fs, lengths in Angstrom, ``rs_bohr`` in bohr.
    """

    name: str
    description: str
    ensemble: str  # i-PI's dynamics mode: "nvt" or "nve" (path integrals: nbeads > 1)
    rs_bohr: float
    n_atoms: int
    temperature_K: float
    timestep_fs: float
    steps: int
    seed: int
    thermostat: str | None = None  # i-PI thermostat mode: "svr", "langevin", "pile_l"
    tau_fs: float = 20.0
    nbeads: int = 1
    molecular: bool = False
    rattle: float = 0.05
    bond_length: float = 0.74
    bond_length_spread: float = 0.03
    min_intermolecular: float = 1.8
    # driver defaults (the runner's, when not given; model None: the package default)
    model: str | None = None
    order: int = 3
    stride: int = 5
    r_mbe: float = 2.0
    checkpoint_stride: int = 10

    def structure(self) -> Atoms:
        """The initial structure, reproducible from :attr:`seed`."""
        rng = np.random.default_rng(self.seed)
        if self.molecular:
            return molecular_hydrogen(
                self.n_atoms,
                self.rs_bohr,
                self.bond_length,
                self.bond_length_spread,
                self.min_intermolecular,
                rng,
            )
        return rattled_bcc(self.n_atoms, self.rs_bohr, self.rattle, rng)


CASES = {
    case.name: case
    for case in (
        Case(
            name="nvt",
            description="high-density hydrogen, classical NVT (stochastic velocity rescaling)",
            ensemble="nvt",
            rs_bohr=1.6,
            n_atoms=64,
            temperature_K=1500.0,
            timestep_fs=0.2,
            steps=20,
            seed=20261201,
            thermostat="svr",
        ),
        Case(
            name="nve",
            description="high-density hydrogen, classical NVE (energy conservation)",
            ensemble="nve",
            rs_bohr=1.6,
            n_atoms=64,
            temperature_K=1000.0,
            timestep_fs=0.2,
            steps=20,
            seed=20261202,
        ),
        Case(
            name="pimd",
            description="high-density hydrogen, path-integral NVT, 8 beads, PILE-L thermostat",
            ensemble="nvt",
            rs_bohr=1.6,
            n_atoms=64,
            temperature_K=1000.0,
            timestep_fs=0.2,
            steps=10,
            seed=20261203,
            thermostat="pile_l",
            nbeads=8,
        ),
        Case(
            name="low-density",
            description="molecular H2 fluid at low density, classical NVT (contrast)",
            ensemble="nvt",
            rs_bohr=3.0,
            n_atoms=64,
            temperature_K=500.0,
            timestep_fs=0.2,
            steps=20,
            seed=20261204,
            thermostat="svr",
            molecular=True,
            # the MD default (trained on cells from rs 1.4 to 3.0 bohr and on isolated
            # fragments, LDA): the same model and level of theory as the dense cases
            r_mbe=3.0,
        ),
    )
}


def _thermostat_xml(case: Case) -> str:
    if case.thermostat is None:
        return ""
    extra = "<pile_lambda> 0.5 </pile_lambda>" if case.thermostat == "pile_l" else ""
    return (
        f'\n        <thermostat mode="{case.thermostat}">'
        f'<tau units="femtosecond"> {case.tau_fs} </tau>{extra}</thermostat>'
    )


def input_xml(case: Case) -> str:
    """The i-PI input of ``case`` (socket ``SOCKET_ADDRESS``; the runner rewrites it)."""
    extras = "\n".join(
        f'    <trajectory filename="{name}" stride="{case.stride}" extra_type="{extra}">'
        " extras </trajectory>"
        for name, extra in EXTRAS_TRAJECTORIES.items()
    )
    batch = f"\n    <batch_size> {case.nbeads} </batch_size>" if case.nbeads > 1 else ""
    centroid = (
        f'\n    <trajectory filename="xc" stride="{case.stride}" format="ase"> x_centroid '
        "</trajectory>"
        if case.nbeads > 1
        else ""
    )
    kinetic_cv = ", kinetic_cv{electronvolt}" if case.nbeads > 1 else ""
    temperature = (
        f'\n    <ensemble><temperature units="kelvin"> {case.temperature_K} </temperature>'
        "</ensemble>"
        if case.ensemble == "nvt"
        else ""
    )
    return f"""<simulation verbosity="low" floatformat="%24.16e">
  <!-- {case.description}; rs = {case.rs_bohr} bohr ({density_g_cm3(case.rs_bohr):.3f} g/cm^3),
       {case.n_atoms} atoms. Generated by `python -m ase_bodyorder.ipi.cases`;
       run with `ase-bodyorder md md_inputs/{case.name}`. -->
  <output prefix="simulation">
    <properties stride="1" filename="out"> [ step, time{{picosecond}}, conserved{{electronvolt}},
      temperature{{kelvin}}, kinetic_md{{electronvolt}}, potential{{electronvolt}},
      pressure_md{{gigapascal}}{kinetic_cv} ] </properties>
    <trajectory filename="pos" stride="{case.stride}" format="ase"> positions </trajectory>\
{centroid}
{extras}
    <checkpoint filename="chk" stride="{case.checkpoint_stride}" overwrite="true"/>
  </output>
  <total_steps> {case.steps} </total_steps>
  <prng><seed> {case.seed} </seed></prng>
  <ffsocket name="{FORCEFIELD}" mode="unix" pbc="false">
    <address> {SOCKET_ADDRESS} </address>{batch}
  </ffsocket>
  <system>
    <initialize nbeads="{case.nbeads}">
      <file mode="ase"> {STRUCTURE_FILE} </file>
      <velocities mode="thermal" units="kelvin"> {case.temperature_K} </velocities>
    </initialize>
    <forces><force forcefield="{FORCEFIELD}"/></forces>{temperature}
    <motion mode="dynamics">
      <dynamics mode="{case.ensemble}">
        <timestep units="femtosecond"> {case.timestep_fs} </timestep>{_thermostat_xml(case)}
      </dynamics>
    </motion>
  </system>
</simulation>
"""


def write_case(case: Case, directory) -> Path:
    """Write ``input.xml``, ``init.extxyz`` and ``case.json`` of ``case`` into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    atoms = case.structure()
    ase.io.write(directory / STRUCTURE_FILE, atoms, format="extxyz")
    (directory / "input.xml").write_text(input_xml(case))
    record = {
        "name": case.name,
        "description": case.description,
        "structure": STRUCTURE_FILE,
        "n_atoms": case.n_atoms,
        "rs_bohr": case.rs_bohr,
        "density_g_cm3": round(density_g_cm3(case.rs_bohr), 6),
        "cell_angstrom": round(float(atoms.cell[0, 0]), 6),
        "nbeads": case.nbeads,
        "driver_defaults": {
            key: value
            for key, value in (
                ("model", case.model),
                ("order", case.order),
                ("stride", case.stride),
                ("r_mbe", case.r_mbe),
            )
            if value is not None
        },
        "generator": "python -m ase_bodyorder.ipi.cases",
        "function": f"ase_bodyorder.ipi.cases.CASES[{case.name!r}].structure",
        "parameters": asdict(case),
        "seed": case.seed,
        "ase_version": ase.__version__,
        "numpy_version": np.__version__,
    }
    (directory / CASE_FILE).write_text(json.dumps(record, indent=2) + "\n")
    return directory


def write_cases(root) -> list[Path]:
    """Write every case of :data:`CASES` under ``root``; return their directories."""
    return [write_case(case, Path(root) / name) for name, case in CASES.items()]


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]) if argv else Path("md_inputs")
    for directory in write_cases(root):
        print(f"wrote {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
