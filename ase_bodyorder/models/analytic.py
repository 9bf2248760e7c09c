"""Analytic potentials in torch: oracles with known body orders, and demo models.

* :class:`Morse` and :class:`LennardJones` are pure pair potentials: E^(n) = 0 for n >= 3.
* :class:`AxilrodTellerMuto` is a pure three-body term: only E^(3) is non-zero.
* :class:`AtomicBaseline` is a per-element constant: only E^(1) is non-zero.
* :class:`SumModel` adds any atomic models.

Every term is switched off smoothly between ``r_on`` and ``cutoff`` (Angstrom) with the
C^1 polynomial of ASE's Lennard-Jones calculator, and is exactly zero beyond ``cutoff``,
so the exact screening of the expansion applies. Energies in eV.
"""

from __future__ import annotations

import functools
import math
import operator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from ase.neighborlist import neighbor_list
from ase.stress import full_3x3_to_voigt_6_stress

from ..expansion import BodyOrderError
from .base import AtomicModel, FragmentBatch, SystemResult

if TYPE_CHECKING:
    from ase import Atoms

__all__ = [
    "AtomicBaseline",
    "AxilrodTellerMuto",
    "LennardJones",
    "LocalTorchModel",
    "Morse",
    "SumModel",
    "hydrogen_demo_model",
]

#: energy (eV) of an isolated hydrogen atom, -1/2 Hartree
HYDROGEN_ATOM_ENERGY_EV = -13.605693122994


def switching(r: torch.Tensor, cutoff: float, r_on: float) -> torch.Tensor:
    """1 below ``r_on``, 0 above ``cutoff``, C^1 in between (polynomial in r^2)."""
    r2, rc2, ro2 = r * r, cutoff * cutoff, r_on * r_on
    middle = (rc2 - r2) ** 2 * (rc2 + 2 * r2 - 3 * ro2) / (rc2 - ro2) ** 3
    return torch.where(r2 < ro2, torch.ones_like(r), torch.where(r2 < rc2, middle, 0 * r))


class LocalTorchModel(AtomicModel):
    """A model whose per-atom energies are a torch function of neighbour vectors.

    Subclasses implement :meth:`atom_energies`; this class builds the graphs for packed
    sub-clusters (intra-fragment pairs only) and for whole periodic structures (ASE
    neighbour list), and gets forces and stress from autograd.
    """

    dtype = torch.float64

    def atom_energies(
        self,
        numbers: torch.Tensor,
        centers: torch.Tensor,
        vectors: torch.Tensor,
        n_atoms: int,
    ) -> torch.Tensor:
        """Per-atom energies (eV) from directed edges ``centers -> neighbour`` (Angstrom)."""
        raise NotImplementedError

    def _within(
        self, first: torch.Tensor, second: torch.Tensor, vectors: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        keep = torch.linalg.vector_norm(vectors.detach(), dim=1) < self.cutoff
        return first[keep], second[keep], vectors[keep]

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        self.check_species(batch.numbers)
        positions = batch.positions.to(self.dtype)
        first, second = (torch.as_tensor(a) for a in batch.intra_pairs())
        vectors = positions[second] - positions[first]
        first, _, vectors = self._within(first, second, vectors)
        numbers = torch.as_tensor(batch.numbers)
        return self.atom_energies(numbers, first, vectors, len(numbers))

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        self.check_species(atoms.numbers)
        periodic = bool(atoms.pbc.any())
        stress = stress and periodic
        n = len(atoms)
        first, second, shifts = neighbor_list("ijS", atoms, max(self.cutoff, 1e-6))
        positions = torch.tensor(atoms.positions, dtype=self.dtype, requires_grad=forces)
        cell = torch.tensor(np.asarray(atoms.cell), dtype=self.dtype)
        strain = torch.zeros((3, 3), dtype=self.dtype, requires_grad=stress)
        deform = torch.eye(3, dtype=self.dtype) + strain
        pos_s, cell_s = positions @ deform, cell @ deform
        first_t, second_t = torch.as_tensor(first), torch.as_tensor(second)
        vectors = (
            pos_s[second_t] - pos_s[first_t] + torch.as_tensor(shifts, dtype=self.dtype) @ cell_s
        )
        energies = self.atom_energies(torch.as_tensor(atoms.numbers), first_t, vectors, n)
        energy = energies.sum()
        inputs = [t for t, wanted in ((positions, forces), (strain, stress)) if wanted]
        grads = torch.autograd.grad(energy, inputs) if inputs else ()
        out: dict[str, Any] = {
            "energy": float(energy.detach()),
            "energies": energies.detach().numpy().copy(),
        }
        if forces:
            out["forces"] = -grads[0].numpy().copy()
        if stress:
            virial = grads[-1].numpy()
            out["stress"] = (
                full_3x3_to_voigt_6_stress(0.5 * (virial + virial.T)) / atoms.get_volume()
            )
        return SystemResult(**out)


def _check_positive(name: str, value: object) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise BodyOrderError(f"{name} must be a positive number, got {value!r}")


class _PairPotential(LocalTorchModel):
    interaction_layers = 1

    def __init__(self, cutoff: float, r_on: float | None) -> None:
        _check_positive("cutoff", cutoff)
        self.cutoff = float(cutoff)
        self.r_on = 0.66 * self.cutoff if r_on is None else float(r_on)
        if not 0 <= self.r_on < self.cutoff:
            raise BodyOrderError(f"r_on must lie in [0, cutoff), got {self.r_on}")

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def atom_energies(
        self, numbers: torch.Tensor, centers: torch.Tensor, vectors: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        r = torch.linalg.vector_norm(vectors, dim=1)
        half = 0.5 * self.pair_energy(r) * switching(r, self.cutoff, self.r_on)
        return torch.zeros(n_atoms, dtype=vectors.dtype).index_add(0, centers, half)


class Morse(_PairPotential):
    """Morse pair potential ``D_e [(1 - exp(-a (r - r_e)))^2 - 1]`` (eV, Angstrom)."""

    def __init__(
        self, D_e: float, a: float, r_e: float, cutoff: float, r_on: float | None = None
    ) -> None:
        for name, value in (("D_e", D_e), ("a", a), ("r_e", r_e)):
            _check_positive(name, value)
        super().__init__(cutoff, r_on)
        self.D_e, self.a, self.r_e = float(D_e), float(a), float(r_e)

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        return self.D_e * ((1 - torch.exp(-self.a * (r - self.r_e))) ** 2 - 1)

    def __repr__(self) -> str:
        return f"Morse(D_e={self.D_e}, a={self.a}, r_e={self.r_e}, cutoff={self.cutoff})"


class LennardJones(_PairPotential):
    """Lennard-Jones pair potential ``4 epsilon [(sigma/r)^12 - (sigma/r)^6]`` (eV, Angstrom).

    With the same switching as ``ase.calculators.lj.LennardJones(smooth=True)``.
    """

    def __init__(
        self, epsilon: float, sigma: float, cutoff: float | None = None, r_on: float | None = None
    ) -> None:
        _check_positive("epsilon", epsilon)
        _check_positive("sigma", sigma)
        super().__init__(3 * sigma if cutoff is None else cutoff, r_on)
        self.epsilon, self.sigma = float(epsilon), float(sigma)

    def pair_energy(self, r: torch.Tensor) -> torch.Tensor:
        x6 = (self.sigma / r) ** 6
        return 4 * self.epsilon * (x6 * x6 - x6)

    def __repr__(self) -> str:
        return f"LennardJones(epsilon={self.epsilon}, sigma={self.sigma}, cutoff={self.cutoff})"


def _triplets(centers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pairs of edges ``(e1, e2)`` sharing their centre, each unordered pair once."""
    order = np.argsort(centers, kind="stable")
    sorted_centers = centers[order]
    ends = np.searchsorted(sorted_centers, sorted_centers, side="right")
    position = np.arange(len(centers))
    counts = ends - position - 1
    e1 = np.repeat(position, counts)
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return order[e1], order[e1 + 1 + k]


class AxilrodTellerMuto(LocalTorchModel):
    """Triple-dipole term ``C9 (1 + 3 cos a cos b cos c) / (r_ab r_bc r_ca)^3`` (eV Angstrom^9).

    Each triangle's energy is shared equally by its three atoms; a triangle counts only
    if all three sides are shorter than ``cutoff``.
    """

    interaction_layers = 1

    def __init__(self, C9: float, cutoff: float, r_on: float | None = None) -> None:
        if not (isinstance(C9, int | float) and math.isfinite(C9)):
            raise BodyOrderError(f"C9 must be a finite number, got {C9!r}")
        _check_positive("cutoff", cutoff)
        self.C9, self.cutoff = float(C9), float(cutoff)
        self.r_on = 0.66 * self.cutoff if r_on is None else float(r_on)

    def atom_energies(
        self, numbers: torch.Tensor, centers: torch.Tensor, vectors: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        e1, e2 = (torch.as_tensor(a) for a in _triplets(centers.numpy()))
        out = torch.zeros(n_atoms, dtype=vectors.dtype)
        if len(e1) == 0:
            return out + 0 * vectors.sum()
        v1, v2 = vectors[e1], vectors[e2]
        v3 = v2 - v1
        r1, r2, r3 = (torch.linalg.vector_norm(v, dim=1) for v in (v1, v2, v3))
        cos_i = (v1 * v2).sum(1) / (r1 * r2)
        cos_j = -(v1 * v3).sum(1) / (r1 * r3)
        cos_k = (v2 * v3).sum(1) / (r2 * r3)
        cut = switching(r1, self.cutoff, self.r_on) * switching(r2, self.cutoff, self.r_on)
        cut = cut * switching(r3, self.cutoff, self.r_on)
        w = self.C9 * (1 + 3 * cos_i * cos_j * cos_k) / (r1 * r2 * r3) ** 3 * cut
        return out.index_add(0, centers[e1], w / 3)

    def __repr__(self) -> str:
        return f"AxilrodTellerMuto(C9={self.C9}, cutoff={self.cutoff})"


class AtomicBaseline(LocalTorchModel):
    """A constant energy (eV) per element: the isolated-atom (1-body) energies."""

    cutoff = 0.0
    interaction_layers = 1

    def __init__(self, energies: dict[int, float]) -> None:
        if not energies:
            raise BodyOrderError("AtomicBaseline needs at least one element")
        self.energies = {int(z): float(e) for z, e in energies.items()}
        self.atomic_numbers = frozenset(self.energies)
        table = torch.zeros(max(self.energies) + 1, dtype=torch.float64)
        for z, e in self.energies.items():
            table[z] = e
        self._table = table

    def atom_energies(
        self, numbers: torch.Tensor, centers: torch.Tensor, vectors: torch.Tensor, n_atoms: int
    ) -> torch.Tensor:
        return self._table[numbers] + 0 * vectors.sum()

    def isolated_atom_energy(self, z: int) -> float:
        self.check_species([z])
        return self.energies[int(z)]

    def __repr__(self) -> str:
        return f"AtomicBaseline({self.energies})"


class SumModel(AtomicModel):
    """The sum of atomic models: energies, forces and stresses add up."""

    def __init__(self, *models: AtomicModel) -> None:
        if not models:
            raise BodyOrderError("SumModel needs at least one model")
        self.models = models
        self.cutoff = max(m.cutoff for m in models)
        layers = [m.interaction_layers for m in models if m.interaction_layers is not None]
        self.interaction_layers = max(layers) if len(layers) == len(models) else None
        known = [m.atomic_numbers for m in models if m.atomic_numbers is not None]
        self.atomic_numbers = frozenset.intersection(*known) if known else None
        self.dtype = models[0].dtype

    def fragment_energies(self, batch: FragmentBatch[torch.Tensor]) -> torch.Tensor:
        self.check_species(batch.numbers)
        return functools.reduce(operator.add, (m.fragment_energies(batch) for m in self.models))

    def system(self, atoms: Atoms, *, forces: bool = True, stress: bool = False) -> SystemResult:
        self.check_species(atoms.numbers)
        parts = [m.system(atoms, forces=forces, stress=stress) for m in self.models]
        total: dict[str, Any] = {"energy": sum(p.energy for p in parts)}
        for key in ("energies", "forces", "stress"):
            values = [getattr(p, key) for p in parts]
            if all(v is not None for v in values):
                total[key] = sum(values)
        return SystemResult(**total)

    def isolated_atom_energy(self, z: int) -> float:
        return sum(m.isolated_atom_energy(z) for m in self.models)

    def __repr__(self) -> str:
        return "SumModel(" + ", ".join(map(repr, self.models)) + ")"


def hydrogen_demo_model() -> SumModel:
    """A hydrogen model with known body orders: H atom energy + Morse (H2) + ATM.

    Morse parameters of H2 (D_e = 4.746 eV, a = 1.942 / Angstrom, r_e = 0.7414
    Angstrom); C9 = 1.90 eV Angstrom^9 (21.6 Hartree bohr^9, the H-atom triple-dipole
    coefficient). Cutoff 5 Angstrom. A demonstration and a test oracle, not a model of
    hydrogen.
    """
    return SumModel(
        AtomicBaseline({1: HYDROGEN_ATOM_ENERGY_EV}),
        Morse(D_e=4.746, a=1.942, r_e=0.7414, cutoff=5.0),
        AxilrodTellerMuto(C9=1.90, cutoff=5.0),
    )
