"""Any ASE calculator as a backend: one sub-cluster per call (the slow, general path).

For quantum-chemistry or tight-binding calculators that give total energies and forces
but no per-atom energies: the expansion is the cluster MBE (isolated clusters only), and
forces per order combine the wrapped calculator's forces with the same weights.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator

from .base import ClusterModel, FragmentBatch, SystemResult

__all__ = ["ASECalculatorModel"]


class ASECalculatorModel(ClusterModel):
    """Wrap an ASE calculator.

    Parameters
    ----------
    calculator
        Any ASE calculator; it is attached to a fresh ``Atoms`` for every sub-cluster.
    atomic_numbers
        Elements the calculator can handle (``None``: any).
    cutoff
        Interaction cutoff in Angstrom if the calculator is strictly local, for exact
        screening; ``inf`` (default) screens nothing.
    """

    def __init__(
        self,
        calculator: Calculator,
        *,
        atomic_numbers: Iterable[int] | None = None,
        cutoff: float = math.inf,
    ) -> None:
        self.calculator = calculator
        self.atomic_numbers = None if atomic_numbers is None else frozenset(atomic_numbers)
        self.cutoff = float(cutoff)

    def _run(self, atoms: Atoms, forces: bool, stress: bool = False) -> SystemResult:
        atoms = atoms.copy()
        atoms.calc = self.calculator
        energy = atoms.get_potential_energy()
        return SystemResult(
            energy=float(energy),
            forces=np.array(atoms.get_forces()) if forces else None,
            stress=np.array(atoms.get_stress()) if stress else None,
        )

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        return self._run(atoms, forces, stress and bool(atoms.pbc.any()))

    def fragment_totals(
        self, batch: FragmentBatch[np.ndarray], *, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        energies = np.zeros(batch.n_fragments)
        flat_forces = np.zeros((len(batch.numbers), 3)) if forces else None
        for f, (positions, numbers) in enumerate(batch.split()):
            result = self._run(Atoms(numbers=numbers, positions=positions), forces)
            energies[f] = result.energy
            if flat_forces is not None:
                flat_forces[batch.offsets[f] : batch.offsets[f + 1]] = result.forces
        return energies, flat_forces

    def __repr__(self) -> str:
        return f"ASECalculatorModel({type(self.calculator).__name__})"
