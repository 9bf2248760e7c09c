"""Any ASE calculator as a backend, evaluated packed where it gives per-atom energies.

Two wrappers share one evaluation:

* :class:`ASECalculatorModel` (a cluster model): total energies and forces of
  sub-clusters, for any calculator (quantum chemistry, tight binding, ...). The
  expansion is the cluster MBE (isolated clusters only); forces per order combine the
  wrapped calculator's forces with the same weights.
* :class:`ASEAtomicModel` (an atomic model): per-atom energies (ASE's ``energies``
  property) of sub-clusters, for local machine-learning potentials (the universal MLIPs
  of :mod:`ase_bodyorder.models.universal`). The expansion is atom-resolved: clusters,
  periodic frames at finite ``r_mbe``, atom sampling. Forces per order are not
  available (they need the gradient of each atom's energy, which ASE does not give).

**Packed evaluation.** Where the calculator gives per-atom energies and its cutoff is
known, many sub-clusters are evaluated in one call: they are placed on a grid in one
structure, every atom of one sub-cluster farther than the cutoff (plus a margin) from
every atom of another, so that no interaction, and no message of a message-passing
model (its graph has no edge between them), crosses sub-clusters. A sub-cluster's
energy is the sum of its atoms' energies and its forces are read from the same call. A
model that needs a cell (CHGNet) gets a vacuum box, with the periodic images as far
apart. On first use the packing is checked against one call per sub-cluster on a few
sub-clusters (:data:`CHECKED_SUBCLUSTERS`), to the model's precision; where it differs,
or where the calculator has no per-atom energies or no known cutoff, every sub-cluster
gets a call of its own. :attr:`ASECalculatorModel.evaluation` says which path is used
and why.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator

from ..expansion import BodyOrderError
from .base import AtomicModel, ClusterModel, FragmentBatch, SystemResult

__all__ = [
    "CHECKED_SUBCLUSTERS",
    "PACKING_MARGIN_A",
    "TOLERANCE_EPS",
    "TOLERANCE_FLOOR",
    "ASEAtomicModel",
    "ASECalculatorModel",
]

_LOG = logging.getLogger("ase_bodyorder")

#: sub-clusters evaluated both packed and one per call on first use
CHECKED_SUBCLUSTERS = 6
#: Angstrom added to the cutoff between packed sub-clusters (and to a vacuum box)
PACKING_MARGIN_A = 1.0
#: the packing check's tolerance: this many machine epsilons of the model's dtype (but
#: at least :data:`TOLERANCE_FLOOR`) times the largest of 1, |atom energy| (eV) and
#: |force| (eV/Angstrom) of the checked sub-clusters; the order of float summation may
#: differ between a packed call and single calls (float32 models: a few ulps)
TOLERANCE_EPS = 64.0
#: the smallest relative tolerance of the packing check (float64 models)
TOLERANCE_FLOOR = 1e-10


@dataclass(frozen=True)
class _Evaluated:
    """Per-atom energies (eV; ``None`` where the calculator gives none), totals per
    fragment (eV) and forces (eV/Angstrom) of a batch's flat entries."""

    energies: np.ndarray | None
    totals: np.ndarray
    forces: np.ndarray | None


class _ASEEvaluation:
    """One ASE calculator evaluating structures and packs of isolated sub-clusters."""

    def __init__(
        self,
        calculator: Calculator,
        *,
        cutoff: float,
        needs_cell: bool,
        dtype: torch.dtype,
        pack: bool | None,
    ) -> None:
        self.calculator = calculator
        self.cutoff = float(cutoff)
        self.needs_cell = bool(needs_cell)
        self.dtype = dtype
        self.per_atom = "energies" in getattr(calculator, "implemented_properties", ())
        #: None: not checked yet (packing wanted and possible); then True / False
        self.packed: bool | None = None
        self.reason = ""
        if pack is False:
            self.packed, self.reason = False, "packing switched off (pack=False)"
        elif not self.per_atom:
            self.packed = False
            self.reason = "the calculator gives no per-atom energies ('energies')"
        elif math.isinf(self.cutoff):
            self.packed = False
            self.reason = "the model's cutoff is unknown (give cutoff=, Angstrom)"

    @property
    def gap(self) -> float:
        """Smallest distance (Angstrom) between atoms of two packed sub-clusters, or
        between a structure and its images in a vacuum box."""
        return self.cutoff + PACKING_MARGIN_A

    def describe(self) -> str:
        if self.packed is None:
            return "packed, to be checked on first use against one call per sub-cluster"
        if self.packed:
            return f"packed ({self.reason})"
        return f"one call per sub-cluster: {self.reason}"

    # ------------------------------------------------------------ single calls

    def boxed(self, atoms: Atoms) -> Atoms:
        """``atoms`` as the calculator gets it: a non-periodic structure of a model that
        needs a cell sits in a vacuum box whose images are ``gap`` apart."""
        atoms = atoms.copy()
        if self.needs_cell and not atoms.pbc.any():
            if math.isinf(self.cutoff):
                raise BodyOrderError(
                    "this model needs a cell: a vacuum box needs its cutoff (cutoff=, Angstrom)"
                )
            extent = np.ptp(atoms.positions, axis=0) if len(atoms) else np.zeros(3)
            atoms.cell = np.diag(extent + self.gap)
            atoms.pbc = True
            atoms.positions -= atoms.positions.min(axis=0) if len(atoms) else 0.0
        return atoms

    def call(
        self, atoms: Atoms, *, forces: bool, stress: bool = False, energies: bool = False
    ) -> SystemResult:
        """One calculator call on ``atoms`` (boxed if needed)."""
        box = self.boxed(atoms)
        box.calc = self.calculator
        energy = float(box.get_potential_energy())
        per_atom = None
        if energies and self.per_atom:
            per_atom = np.array(box.get_potential_energies(), dtype=np.float64)
        return SystemResult(
            energy=energy,
            energies=per_atom,
            forces=np.array(box.get_forces(), dtype=np.float64) if forces else None,
            stress=np.array(box.get_stress(), dtype=np.float64) if stress else None,
        )

    # ------------------------------------------------------------ sub-clusters

    def one_by_one(self, batch: FragmentBatch[np.ndarray], *, forces: bool) -> _Evaluated:
        """One call per sub-cluster."""
        totals = np.zeros(batch.n_fragments)
        energies = np.zeros(len(batch.numbers)) if self.per_atom else None
        flat_forces = np.zeros((len(batch.numbers), 3)) if forces else None
        for f, (positions, numbers) in enumerate(batch.split()):
            a, b = batch.offsets[f], batch.offsets[f + 1]
            result = self.call(
                Atoms(numbers=numbers, positions=positions), forces=forces, energies=True
            )
            totals[f] = result.energy
            if energies is not None:
                assert result.energies is not None  # per_atom: asked for
                energies[a:b] = result.energies
            if flat_forces is not None:
                flat_forces[a:b] = result.forces
        return _Evaluated(energies, totals, flat_forces)

    def _layout(self, batch: FragmentBatch[np.ndarray]) -> Atoms:
        """Every sub-cluster of ``batch`` in one structure, ``gap`` apart (see module doc)."""
        positions = np.asarray(batch.positions, dtype=np.float64)
        fragment = batch.fragment
        n = batch.n_fragments
        lows = np.full((n, 3), np.inf)
        highs = np.full((n, 3), -np.inf)
        np.minimum.at(lows, fragment, positions)
        np.maximum.at(highs, fragment, positions)
        spacing = float((highs - lows).max()) + self.gap
        side = max(1, math.ceil(round(n ** (1 / 3), 9)))
        grid = np.stack(np.unravel_index(np.arange(n), (side, side, side)), axis=1)
        packed = positions - lows[fragment] + spacing * grid[fragment]
        atoms = Atoms(numbers=batch.numbers, positions=packed)
        if self.needs_cell:
            atoms.cell = np.eye(3) * spacing * side
            atoms.pbc = True
        return atoms

    def packed_call(self, batch: FragmentBatch[np.ndarray], *, forces: bool) -> _Evaluated:
        """All sub-clusters of ``batch`` in one call."""
        atoms = self._layout(batch)
        atoms.calc = self.calculator
        atoms.get_potential_energy()
        energies = np.array(atoms.get_potential_energies(), dtype=np.float64)
        totals = np.bincount(batch.fragment, weights=energies, minlength=batch.n_fragments)
        flat_forces = np.array(atoms.get_forces(), dtype=np.float64) if forces else None
        return _Evaluated(energies, totals, flat_forces)

    def check(self, batch: FragmentBatch[np.ndarray]) -> None:
        """Decide the path: the packing against one call per sub-cluster on up to
        :data:`CHECKED_SUBCLUSTERS` sub-clusters of ``batch`` (the largest ones)."""
        sizes = batch.sizes
        order = np.argsort(-sizes, kind="stable")[:CHECKED_SUBCLUSTERS]
        picked = np.sort(order)
        offsets = np.concatenate([[0], np.cumsum(sizes[picked])])
        index = np.concatenate([np.arange(batch.offsets[f], batch.offsets[f + 1]) for f in picked])
        sample = FragmentBatch(
            positions=np.asarray(batch.positions)[index],
            numbers=batch.numbers[index],
            offsets=offsets,
        )
        if sample.n_fragments < 2:
            return  # nothing to pack: decide on a later, larger batch
        forces = "forces" in self.calculator.implemented_properties
        packed = self.packed_call(sample, forces=forces)
        single = self.one_by_one(sample, forces=forces)
        assert packed.energies is not None and single.energies is not None  # per_atom
        energy_error = float(np.abs(packed.energies - single.energies).max())
        scale = max(1.0, float(np.abs(single.energies).max()))
        force_error = 0.0
        if packed.forces is not None and single.forces is not None:
            force_error = float(np.abs(packed.forces - single.forces).max())
            scale = max(scale, float(np.abs(single.forces).max()))
        relative = max(TOLERANCE_EPS * torch.finfo(self.dtype).eps, TOLERANCE_FLOOR)
        tolerance = relative * scale
        checked = f"{sample.n_fragments} sub-clusters"
        self.packed = max(energy_error, force_error) <= tolerance
        if self.packed:
            within = f"forces within {force_error:.1e} eV/A" if forces else "energies only"
            self.reason = (
                f"checked on {checked}: atom energies within {energy_error:.1e} eV, "
                f"{within} (tolerance {tolerance:.1e})"
            )
        else:
            self.reason = (
                f"packing changed the atom energies by {energy_error:.1e} eV or forces by "
                f"{force_error:.1e} eV/A (tolerance {tolerance:.1e}) on {checked}: the model "
                f"is not local within its cutoff {self.cutoff:g} A"
            )
        _LOG.info("%r: %s", self.calculator, self.describe())

    def evaluate(self, batch: FragmentBatch[np.ndarray], *, forces: bool) -> _Evaluated:
        """Energies of every sub-cluster of ``batch``, packed or one call each."""
        if self.packed is None:
            self.check(batch)
        if self.packed:
            return self.packed_call(batch, forces=forces)
        return self.one_by_one(batch, forces=forces)


class _ASEWrapper:
    """What both wrappers hold: the calculator, its declarations and its evaluation."""

    def __init__(
        self,
        calculator: Calculator,
        *,
        atomic_numbers: Iterable[int] | None = None,
        cutoff: float = math.inf,
        interaction_layers: int | None = None,
        needs_cell: bool = False,
        pack: bool | None = None,
        dtype: torch.dtype = torch.float64,
        name: str | None = None,
        fragment_calculator: Calculator | None = None,
    ) -> None:
        self.calculator = calculator
        #: the calculator that evaluates the sub-clusters
        self.fragment_calculator = fragment_calculator or calculator
        self.needs_cell = bool(needs_cell)
        self.name: str | None = name or type(calculator).__name__
        self.atomic_numbers = None if atomic_numbers is None else frozenset(atomic_numbers)
        self.cutoff = float(cutoff)
        self.interaction_layers = interaction_layers
        self.dtype = dtype
        self._whole = _ASEEvaluation(
            calculator, cutoff=self.cutoff, needs_cell=needs_cell, dtype=dtype, pack=False
        )
        self._evaluation = _ASEEvaluation(
            self.fragment_calculator,
            cutoff=self.cutoff,
            needs_cell=needs_cell,
            dtype=dtype,
            pack=pack,
        )

    @property
    def evaluation(self) -> str:
        """How sub-clusters are evaluated: packed (and how it was checked), or one call
        per sub-cluster, and why."""
        return self._evaluation.describe()

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        return self._whole.call(
            atoms, forces=forces, stress=stress and bool(atoms.pbc.any()), energies=True
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name})"


class ASECalculatorModel(_ASEWrapper, ClusterModel):
    """Wrap an ASE calculator (total energies and forces of sub-clusters).

    Parameters
    ----------
    calculator
        Any ASE calculator; it is attached to a fresh ``Atoms`` for every evaluation.
    atomic_numbers
        Elements the calculator can handle (``None``: any).
    cutoff
        Interaction cutoff in Angstrom if the calculator is strictly local, for exact
        screening and packed evaluation; ``inf`` (default) screens and packs nothing.
    interaction_layers
        Message-passing layers of the model (exact screening), ``None`` if unknown.
    needs_cell
        The calculator fails on a non-periodic structure (CHGNet): isolated structures
        are placed in a vacuum box whose images are farther apart than ``cutoff``.
    pack
        ``None`` (default): evaluate packed where possible (per-atom energies and a
        known cutoff), checked on first use; ``False``: one call per sub-cluster.
    dtype
        The precision the calculator computes in (``torch.float32`` for most MLIPs):
        it sets the round-off estimate and the packing check's tolerance.
    name
        The model's name in messages (default: the calculator's class).
    fragment_calculator
        Another calculator of the same model for the sub-clusters (e.g. one that skips
        the forces where they are not needed); default: ``calculator``.
    """

    def fragment_totals(
        self, batch: FragmentBatch[np.ndarray], *, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        result = self._evaluation.evaluate(batch, forces=forces)
        return result.totals, result.forces


class ASEAtomicModel(_ASEWrapper, AtomicModel):
    """Wrap an ASE calculator that gives per-atom energies (an atom-resolved backend).

    Parameters as :class:`ASECalculatorModel`; the calculator must list ``energies`` in
    its ``implemented_properties``. Forces per order are not available (an error says
    so): for a cluster, wrap the calculator in :class:`ASECalculatorModel` (cluster MBE)
    for them.
    """

    def __init__(self, calculator: Calculator, **options: Any) -> None:
        if "energies" not in getattr(calculator, "implemented_properties", ()):
            raise BodyOrderError(
                f"{type(calculator).__name__} gives no per-atom energies ('energies' is not "
                "in its implemented_properties): wrap it in ASECalculatorModel (cluster MBE)"
            )
        super().__init__(calculator, **options)

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        if batch.positions.requires_grad:
            raise BodyOrderError(
                f"{self.name}: forces per order need the gradient of every atom's energy, "
                "which an ASE calculator does not give; expand without forces per order, "
                "or wrap the calculator in ASECalculatorModel for a cluster's forces per order"
            )
        numpy_batch = FragmentBatch(
            positions=batch.positions.detach().to(torch.float64).numpy(),
            numbers=batch.numbers,
            offsets=batch.offsets,
        )
        result = self._evaluation.evaluate(numpy_batch, forces=False)
        assert result.energies is not None  # the constructor checked 'energies'
        return torch.from_numpy(result.energies)
