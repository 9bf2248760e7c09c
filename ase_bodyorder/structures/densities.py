"""Density conversions for hydrogen: Wigner-Seitz radius ``rs`` (bohr), number density
(atoms per Angstrom^3), mass density (g/cm^3), and the box and sphere sizes (Angstrom)
that hold a number of protons at a given ``rs``.

``rs`` is the radius of the sphere whose volume is the volume per proton:
``4/3 pi rs^3 = V / N``.
"""

from __future__ import annotations

import math

from ase.data import atomic_masses
from ase.units import Bohr

__all__ = [
    "cubic_box_length",
    "density_g_cm3",
    "number_density_per_A3",
    "rs_bohr_from_density_g_cm3",
    "rs_bohr_from_number_density",
    "sphere_radius",
]

#: grams per atomic mass unit (CODATA 2018)
_GRAMS_PER_AMU = 1.66053906660e-24


# ---------------------------------------------------------------- densities


def number_density_per_A3(rs_bohr: float) -> float:
    """Number density (atoms per Angstrom^3) at Wigner-Seitz radius ``rs_bohr`` (bohr)."""
    return 1.0 / (4 / 3 * math.pi * (rs_bohr * Bohr) ** 3)


def rs_bohr_from_number_density(atoms_per_A3: float) -> float:
    """Wigner-Seitz radius (bohr) at a number density in atoms per Angstrom^3."""
    return (3 / (4 * math.pi * atoms_per_A3)) ** (1 / 3) / Bohr


def density_g_cm3(rs_bohr: float) -> float:
    """Mass density (g/cm^3) of hydrogen at Wigner-Seitz radius ``rs_bohr`` (bohr)."""
    grams = atomic_masses[1] * _GRAMS_PER_AMU
    volume_cm3 = 4 / 3 * math.pi * (rs_bohr * Bohr) ** 3 * 1e-24
    return grams / volume_cm3


def rs_bohr_from_density_g_cm3(density: float) -> float:
    """Wigner-Seitz radius (bohr) of hydrogen at a mass density in g/cm^3."""
    atoms_per_A3 = density / (atomic_masses[1] * _GRAMS_PER_AMU) * 1e-24
    return rs_bohr_from_number_density(atoms_per_A3)


def cubic_box_length(n_atoms: int, rs_bohr: float) -> float:
    """Edge (Angstrom) of the cubic cell holding ``n_atoms`` protons at ``rs_bohr`` (bohr)."""
    return (n_atoms * 4 / 3 * math.pi * (rs_bohr * Bohr) ** 3) ** (1 / 3)


def sphere_radius(n_atoms: int, rs_bohr: float) -> float:
    """Radius (Angstrom) of the sphere holding ``n_atoms`` protons at ``rs_bohr`` (bohr)."""
    return rs_bohr * Bohr * n_atoms ** (1 / 3)
