"""The model protocol: what the expansion needs from anything that computes energies.

Two kinds of backend:

* :class:`AtomicModel` gives per-atom energies of many isolated sub-clusters in one
  differentiable torch call (machine-learning potentials, analytic potentials). The
  expansion is atom-resolved and forces per order come from autograd.
* :class:`ClusterModel` gives total energies (and forces) of sub-clusters, one job each
  (an ASE calculator, an electronic-structure method). Only isolated clusters can be
  expanded, with the cluster MBE.

Both evaluate the whole structure (periodic or not) through ``system()``.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch
from ase import Atoms
from ase.data import chemical_symbols

from ..expansion import BodyOrderError, PackedOffsets, Screening

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

__all__ = [
    "AtomicModel",
    "ClusterModel",
    "FragmentBatch",
    "Model",
    "SpeciesError",
    "SystemResult",
]


class SpeciesError(BodyOrderError):
    """The structure contains elements the model was not trained on."""


def element_ranges(numbers: Iterable[int]) -> str:
    """Elements by symbol, runs of three or more consecutive atomic numbers as ranges:
    ``H, C, O`` or ``H-Pu`` (a universal model's 94 elements in one word)."""
    runs: list[list[int]] = []
    for z in sorted(set(int(z) for z in numbers)):
        if runs and z == runs[-1][-1] + 1:
            runs[-1].append(z)
        else:
            runs.append([z])
    words = []
    for run in runs:
        if len(run) >= 3:
            words.append(f"{chemical_symbols[run[0]]}-{chemical_symbols[run[-1]]}")
        else:
            words += [chemical_symbols[z] for z in run]
    return ", ".join(words)


@dataclass(frozen=True)
class SystemResult:
    """Energy (eV), per-atom energies (eV), forces (eV/Angstrom), stress (eV/Angstrom^3, Voigt)."""

    energy: float
    energies: np.ndarray | None = None
    forces: np.ndarray | None = None
    stress: np.ndarray | None = None


#: the positions of a batch: a torch tensor (atomic models) or a numpy array (cluster models)
Positions = TypeVar("Positions", torch.Tensor, np.ndarray)


@dataclass(frozen=True, eq=False)
class FragmentBatch(PackedOffsets, Generic[Positions]):
    """Many isolated sub-clusters packed flat, contiguous per sub-cluster.

    ``positions`` (Angstrom) is a torch tensor (possibly requiring grad) for atomic models
    and a numpy array for cluster models; fragment ``f`` holds entries
    ``offsets[f]:offsets[f+1]``.
    """

    positions: Positions
    numbers: np.ndarray
    offsets: np.ndarray

    def intra_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """All ordered pairs ``(i, j)``, ``i != j``, of flat entries in the same fragment."""
        firsts, seconds = [], []
        sizes = self.sizes
        for s in np.unique(sizes):
            if s < 2:
                continue
            starts = self.offsets[:-1][sizes == s]
            a, b = np.nonzero(~np.eye(s, dtype=bool))
            firsts.append((starts[:, None] + a[None, :]).reshape(-1))
            seconds.append((starts[:, None] + b[None, :]).reshape(-1))
        if not firsts:
            empty = np.zeros(0, dtype=np.int64)
            return empty, empty
        return np.concatenate(firsts), np.concatenate(seconds)

    def split(self) -> Iterator[tuple[Positions, np.ndarray]]:
        """Yield ``(positions, numbers)`` of each fragment (the slow path)."""
        for a, b in zip(self.offsets[:-1], self.offsets[1:], strict=True):
            yield self.positions[a:b], self.numbers[a:b]


class Model(abc.ABC):
    """What every backend declares.

    Attributes
    ----------
    atomic_numbers
        Elements the model knows, or ``None`` for any.
    cutoff
        Interaction cutoff (Angstrom) of one layer, ``math.inf`` if not local.
    interaction_layers
        Message-passing layers (an atom's energy sees neighbours up to this many hops
        away), or ``None`` if unknown.
    dtype
        The torch dtype the model computes in.
    name
        The model's name in messages: the spec it was opened by
        (:func:`~ase_bodyorder.models.resolve_model`: ``mace-h8-high``, a file's path),
        or ``None`` (a model built in Python: its class names it).
    """

    atomic_numbers: frozenset[int] | None = None
    name: str | None = None
    cutoff: float = math.inf
    interaction_layers: int | None = None
    dtype: torch.dtype = torch.float64
    per_atom: bool = True

    @property
    def screening(self) -> Screening | None:
        """Exact screening the model allows, from its cutoff and layers."""
        if math.isinf(self.cutoff):
            return None
        return Screening(self.cutoff, self.interaction_layers)

    def check_species(self, numbers: Iterable[int]) -> None:
        """Raise :class:`SpeciesError` naming elements the model does not know."""
        if self.atomic_numbers is None:
            return
        unknown = sorted(set(int(z) for z in numbers) - set(self.atomic_numbers))
        if unknown:
            known = element_ranges(self.atomic_numbers)
            bad = ", ".join(chemical_symbols[z] for z in unknown)
            raise SpeciesError(f"{self.label} does not know element(s) {bad}; it knows {known}")

    @property
    def label(self) -> str:
        """``model 'NAME'`` where the model has a name, else its class: for messages."""
        return type(self).__name__ if self.name is None else f"model {self.name!r}"

    def with_dtype(self, dtype: torch.dtype) -> Self:
        """This model evaluating in ``dtype`` (``torch.float32`` or ``torch.float64``).

        ``self`` when it already computes in ``dtype``; a backend that can convert itself
        (metatomic, MACE) returns a converted copy (cached: converting again is free).
        Any other case is a :class:`BodyOrderError` naming the model.
        """
        if dtype == self.dtype:
            return self
        raise BodyOrderError(
            f"{self.label} cannot evaluate in {str(dtype).removeprefix('torch.')}: it computes "
            f"in {str(self.dtype).removeprefix('torch.')} only"
        )

    @abc.abstractmethod
    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        """Evaluate the whole structure (periodic or not)."""

    def isolated_atom_energy(self, z: int) -> float:
        """Energy (eV) of one isolated atom of element ``z``: the model's 1-body term."""
        return float(self.system(Atoms(numbers=[z]), forces=False).energy)


class AtomicModel(Model):
    """A model that gives per-atom energies of many sub-clusters in one torch call."""

    per_atom = True

    @abc.abstractmethod
    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        """Per-atom energies (eV), shape (M,), of every flat entry of ``batch``.

        ``batch.positions`` is a float64 tensor that may require grad; fragments are
        isolated from each other (no interaction across fragments).
        """


class ClusterModel(Model):
    """A model that gives total energies (and forces) of sub-clusters, one at a time."""

    per_atom = False

    @abc.abstractmethod
    def fragment_totals(
        self, batch: FragmentBatch[np.ndarray], *, forces: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Total energy (eV) per fragment, and forces (eV/Angstrom) per flat entry."""
