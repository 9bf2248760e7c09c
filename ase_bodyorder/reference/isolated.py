"""Isolated clusters at the periodic reference's level of theory (issue 11).

The monitor expands a model's energy over isolated sub-clusters of each MD frame; a
model fitted only to periodic cells extrapolates there. These are the isolated
counterparts of :mod:`.periodic`: the same functional, GTH pseudopotential and basis
(:meth:`IsolatedDFT.matching`), computed with pyscf's molecular code (open boundaries, no
plane-wave cutoff). :func:`cell_fragment_jobs` cuts sub-clusters from training cells
(:func:`~ase_bodyorder.structures.cell_fragments`) into store jobs, and
:func:`export_cell_fragments` writes them for training. A cluster isolated here and the
same cluster in a large periodic box agree to 0.7 meV at 90 Hartree and 0.08 meV at 120
(``tests/reference/test_level_of_theory.py``).

Energies in eV, forces in eV/Angstrom, lengths in Angstrom.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import ase.io
import numpy as np
from ase import Atoms
from ase.units import Bohr, Hartree

from ..expansion import BodyOrderError
from ..io import atomic_path, sha256_file
from .executor import Job
from .pipeline import write_split_meta
from .store import ReferenceStore

if TYPE_CHECKING:  # periodic imports this module (its isolated-cluster energies)
    from .periodic import PeriodicDFT

__all__ = [
    "IsolatedDFT",
    "cell_fragment_jobs",
    "compute_isolated",
    "export_cell_fragments",
    "merge_cells_and_fragments",
    "parent_part",
]


@dataclass(frozen=True)
class IsolatedDFT:
    """Kohn-Sham settings of isolated clusters at a periodic set's level of theory.

    The same functional, GTH pseudopotential and basis as :class:`PeriodicDFT`
    (:meth:`matching`), with open boundaries (pyscf's molecular code: no box, no
    plane-wave cutoff, a Becke grid of ``grid_level``). The ``calculation`` of a fragment
    :class:`~.executor.Job`; its record holds the energy (eV), the analytic forces
    (eV/Angstrom) and the spin solution.

    Spin treatment: each cluster in its lowest-energy spin density at the lowest
    multiplicity, 2S = n mod 2. An odd cluster is a spin-polarised doublet (UKS; an
    isolated H atom is a doublet). An even cluster is computed closed-shell (RKS) and
    spin-polarised from a broken-symmetry guess (UKS, S_z = 0, the HOMO and LUMO mixed),
    and the lower energy is kept: a stretched H2 then dissociates into two doublet atoms,
    as the many-body expansion needs (its 2-body term vanishes at large distance),
    instead of the closed-shell curve that stays about 1 eV above them. With
    ``spin_search="localized"`` (the default) every cluster of 2 to 6 atoms is also
    started from each assignment of localized atomic spins (n_alpha atoms up, the rest
    down, 2S = n mod 2): from pyscf's guess alone a stretched H3 converged to a state 12 eV
    above three atoms. The lowest converged energy is kept. Dense hydrogen,
    the periodic cells, is non-magnetic (RKS with smearing); a compact cluster's
    broken-symmetry solution collapses onto the closed-shell one, so both treatments
    agree where the cells' environments are. No smearing: a cluster has a gap.
    """

    method: ClassVar[str] = "isolated-dft"

    xc: str = "lda,vwn"
    basis: str = "gth-szv"
    pseudo: str = "gth-pade"
    grid_level: int = 3
    conv_tol_hartree: float = 1e-10
    max_cycle: int = 200
    #: DIIS iterations before the second-order solver takes over (see compute_isolated)
    diis_cycles: int = 40
    forces: bool = True
    #: ``localized``: also start from every assignment of localized atomic spins (see
    #: the class docstring); ``default``: pyscf's guess (and the broken-symmetry one)
    spin_search: str = "localized"

    def __post_init__(self) -> None:
        if self.spin_search not in ("localized", "default"):
            raise BodyOrderError(
                f"spin_search must be 'localized' or 'default', got {self.spin_search!r}"
            )

    @classmethod
    def matching(cls, periodic: PeriodicDFT, **options) -> IsolatedDFT:
        """The isolated-cluster settings at ``periodic``'s functional, basis and pseudo."""
        return cls(xc=periodic.xc, basis=periodic.basis, pseudo=periodic.pseudo, **options)

    def to_dict(self) -> dict:
        return asdict(self)

    def run(self, numbers, positions, cell=None) -> dict:
        """The record of one cluster's job (:func:`compute_isolated`)."""
        if cell is not None:
            raise BodyOrderError("isolated DFT computes clusters; got a periodic cell")
        atoms = Atoms(numbers=numbers, positions=positions)
        return {"method": self.method, "basis": self.basis, **compute_isolated(atoms, self)}


def _broken_symmetry_guess(restricted) -> np.ndarray:
    """A UKS density guess from a closed-shell solution: its HOMO and LUMO mixed by 45
    degrees, one way for the alpha and the other for the beta electrons."""
    mo, occupied = restricted.mo_coeff, int(np.count_nonzero(restricted.mo_occ > 0))
    alpha, beta = mo[:, :occupied].copy(), mo[:, :occupied].copy()
    if 0 < occupied < mo.shape[1]:
        homo, lumo = mo[:, occupied - 1], mo[:, occupied]
        alpha[:, -1] = (homo + lumo) / np.sqrt(2)
        beta[:, -1] = (homo - lumo) / np.sqrt(2)
    return np.array([alpha @ alpha.T, beta @ beta.T])


#: clusters up to this size are started from every localized spin assignment
MAX_LOCALIZED_SEARCH_ATOMS = 6


def _localized_spin_guesses(mol) -> list[np.ndarray]:
    """UKS density guesses with the electrons of each atom localized on it, spin up on
    n_alpha of the atoms and down on the others: one per assignment (up to the global
    flip when n_alpha = n_beta). Each atom's density is its block of the superposition
    of neutral atomic densities (pyscf's ``minao`` guess), not of an SCF density, which
    may be ionic."""
    from pyscf import scf  # pyscf

    total = np.asarray(scf.hf.init_guess_by_minao(mol))
    blocks = [slice(int(a), int(b)) for a, b in mol.aoslice_by_atom()[:, 2:4]]
    n = mol.natm
    n_alpha = (n + mol.spin) // 2
    guesses, seen = [], set()
    for up in combinations(range(n), n_alpha):
        down = tuple(i for i in range(n) if i not in up)
        if n_alpha == n - n_alpha and down in seen:
            continue
        seen.add(up)
        alpha, beta = np.zeros_like(total), np.zeros_like(total)
        for atom, block in enumerate(blocks):
            target = alpha if atom in up else beta
            target[block, block] = total[block, block]
        guesses.append(np.array([alpha, beta]))
    return guesses


class _LocalOnlyPseudoGradient:
    """pyscf 2.14's molecular GTH gradient fails for pseudopotentials without non-local
    projectors (hydrogen's ``gth-pade``): ``vppnl_nuc_grad`` then has nothing to
    contract and returns None where it needs arrays. Inside this context it returns the
    exact value, zero, for such molecules (checked against finite differences in the
    tests) and calls pyscf's own code otherwise."""

    def __enter__(self):
        from pyscf.gto import pp_int  # pyscf
        from pyscf.pbc.gto.pseudo import pp_int as pbc_pp_int

        self._module, self._original = pp_int, pp_int.vppnl_nuc_grad
        original = self._original

        def gradient(mol, dm):
            if not pbc_pp_int.fake_cell_vnl(mol)[1]:
                return np.zeros((mol.natm, 3))
            return original(mol, dm)

        pp_int.vppnl_nuc_grad = gradient
        return self

    def __exit__(self, *exc):
        self._module.vppnl_nuc_grad = self._original
        return False


def compute_isolated(atoms: Atoms, settings: IsolatedDFT = IsolatedDFT()) -> dict:
    """Energy (eV), forces (eV/Angstrom) and spin solution of one isolated cluster.

    The spin treatment is :class:`IsolatedDFT`'s. Record keys: ``energy_eV``,
    ``forces_eV_per_A`` (when ``settings.forces``), ``two_s`` (2S), ``solution`` (``rks``,
    ``uks`` or ``uks-broken-symmetry``), ``spin_square`` (<S^2> of the kept solution),
    ``converged``, ``wall_time_s``. Raises :class:`BodyOrderError` for a periodic input
    or when no SCF converges.
    """
    from pyscf import dft, gto  # pyscf

    if atoms.pbc.any():
        raise BodyOrderError("isolated DFT needs a cluster without periodicity")
    start = time.perf_counter()
    spin = int(atoms.numbers.sum()) % 2
    mol = gto.M(
        atom=[
            (s, tuple(p))
            for s, p in zip(atoms.get_chemical_symbols(), atoms.positions, strict=True)
        ],
        unit="A",
        basis=settings.basis,
        pseudo=settings.pseudo,
        spin=spin,
        verbose=0,
    )

    def solve(kind, dm0=None):
        """An SCF of ``kind`` (``rks`` or ``uks``): DIIS first (``diis_cycles``), then, if
        that does not converge (compressed clusters with nearly degenerate frontier
        orbitals slosh), the second-order solver from where DIIS stopped."""
        mf = dft.UKS(mol) if kind == "uks" else dft.RKS(mol)
        mf.xc = settings.xc
        mf.grids.level = settings.grid_level
        mf.conv_tol = settings.conv_tol_hartree
        mf.max_cycle = min(settings.diis_cycles, settings.max_cycle)
        mf.kernel(dm0=dm0)
        if not mf.converged:
            newton = mf.newton()
            newton.max_cycle = settings.max_cycle
            newton.kernel(dm0=mf.make_rdm1())
            mf = newton
        return mf

    solutions = []
    if spin:
        solutions.append(("uks", solve("uks")))
    else:
        closed = solve("rks")
        solutions.append(("rks", closed))
        if len(atoms) > 1:
            broken = solve("uks", _broken_symmetry_guess(closed))
            solutions.append(("uks-broken-symmetry", broken))
    if settings.spin_search == "localized" and 2 <= len(atoms) <= MAX_LOCALIZED_SEARCH_ATOMS:
        kind = "uks" if spin else "uks-broken-symmetry"
        for guess in _localized_spin_guesses(mol):
            solutions.append((kind, solve("uks", guess)))
    converged = [(kind, mf) for kind, mf in solutions if mf.converged]
    if not converged:
        raise BodyOrderError(
            f"SCF of the isolated {atoms.get_chemical_formula()} did not converge "
            f"in {settings.max_cycle} cycles"
        )
    # a broken-symmetry solution that returned to the closed shell is the same state
    kind, mf = min(converged, key=lambda item: (round(float(item[1].e_tot), 9), item[0] != "rks"))
    record = {
        "energy_eV": float(mf.e_tot) * Hartree,
        "two_s": spin,
        "solution": kind,
        "spin_square": float(mf.spin_square()[0]) if kind != "rks" else 0.0,
        "converged": True,
    }
    if settings.forces:
        with _LocalOnlyPseudoGradient():
            gradient = mf.nuc_grad_method().kernel()
        record["forces_eV_per_A"] = (-np.asarray(gradient) * Hartree / Bohr).tolist()
    record["wall_time_s"] = time.perf_counter() - start
    return record


def cell_fragment_jobs(fragments: list[Atoms], dataset: str, calculation: IsolatedDFT) -> list[Job]:
    """One job per fragment of :func:`~ase_bodyorder.structures.cell_fragments` (its
    positions as cut; the readable key names the parent cell and atoms)."""
    jobs = []
    for k, atoms in enumerate(fragments):
        info = atoms.info
        parent = info.get("parent", -1)
        label = f"{dataset}/{parent}/{info.get('label', 'atom')}/{calculation.method}"
        meta = {"dataset": dataset, "kind": "cell-fragment", "fragment": k, "parent": parent}
        jobs.append(Job(label, atoms.numbers.copy(), atoms.positions.copy(), calculation, meta))
    return jobs


def export_cell_fragments(
    store: ReferenceStore,
    fragments: list[Atoms],
    dataset: str,
    calculation: IsolatedDFT,
    output,
    *,
    command: str = "",
    cells_file: str = "",
) -> dict:
    """Write the fragments that are done as extxyz (``energy`` eV, ``forces`` eV/A; info:
    ``parent``, ``label``, ``size``, ``rs_bohr``, ``kind``, ``solution``) and a provenance
    JSON next to it (``<output>.provenance.json``: settings, counts per size, missing,
    the command). Returns the provenance."""
    jobs = cell_fragment_jobs(fragments, dataset, calculation)
    records = store.matching_records(jobs)
    frames, missing = [], []
    for atoms, job in zip(fragments, jobs, strict=True):
        record = records.get(job.content_key)
        if record is None:
            missing.append(job.key)
            continue
        out = Atoms(numbers=atoms.numbers, positions=atoms.positions)
        out.info = {
            **{k: v for k, v in atoms.info.items() if isinstance(v, str | int | float)},
            "energy": record["energy_eV"],
            "solution": record["solution"],
            "dataset": dataset,
        }
        out.arrays["forces"] = np.asarray(record["forces_eV_per_A"])
        frames.append(out)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as partial:
        ase.io.write(partial, frames, format="extxyz")
    counts: dict[str, int] = {}
    for atoms in frames:
        counts[str(len(atoms))] = counts.get(str(len(atoms)), 0) + 1
    meta = {
        "dataset": dataset,
        "calculation": {"method": calculation.method, **calculation.to_dict()},
        "cells": cells_file,
        "counts": dict(sorted(counts.items(), key=lambda item: int(item[0]))),
        "missing": missing,
        "units": {"energy": "eV", "forces": "eV/Angstrom", "positions": "Angstrom"},
        "command": command,
    }
    provenance = output.with_name(output.name + ".provenance.json")
    provenance.write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def merge_cells_and_fragments(
    cells_dir, cells_dataset: str, fragments_file, out_dir, dataset: str
) -> dict:
    """Training splits of periodic cells and their isolated fragments together.

    Reads ``{cells_dataset}_{train,validation,test}.xyz`` and ``_split.json`` from
    ``cells_dir`` (:func:`~.periodic.export_bulk`) and the fragments of
    :func:`export_cell_fragments` (``fragments_file``: one file or a list of them); each
    fragment joins the part of its parent cell (so no fragment of a test cell is trained
    on, and the validation loss sees fragments too); the single atom (parent -1) goes to
    every part. A fragment whose parent cell is not in the split (its DFT is not done or
    failed) joins the part drawn for that parent from its index with the split's fractions
    (:func:`parent_part`): the fragments of one cell stay together, and the cell itself
    is in no part. Writes ``{dataset}_{part}.xyz`` (cells first; ``info["structure"]``
    ``cell`` or ``fragment``) and ``{dataset}_split.json`` into ``out_dir``. Returns the
    split's metadata.
    """
    files = [fragments_file] if isinstance(fragments_file, str | Path) else list(fragments_file)
    cells_dir, out_dir = Path(cells_dir), Path(out_dir)
    try:
        cells_meta = json.loads((cells_dir / f"{cells_dataset}_split.json").read_text())
        fragments = [atoms for name in files for atoms in ase.io.read(name, ":")]
    except (OSError, ValueError) as error:
        raise BodyOrderError(f"cannot read the cells or fragments to merge: {error}") from None
    part_of = {
        index: part for part, info in cells_meta["files"].items() for index in info["indices"]
    }
    fractions = tuple(cells_meta.get("fractions", (0.8, 0.1, 0.1)))
    parents = [int(f.info.get("parent", -1)) for f in fragments]
    # each fragment's part, once: its parent cell's, a drawn one for a cell not in the
    # split, None for the lone atom (every part)
    assigned = {p: part_of.get(p) or parent_part(p, fractions) for p in set(parents) if p != -1}
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "dataset": dataset,
        "cells": {"dataset": cells_dataset, "split": cells_meta},
        "fragments": [str(name) for name in files],
        "files": {},
    }
    for part in ("train", "validation", "test"):
        cells = ase.io.read(cells_dir / f"{cells_dataset}_{part}.xyz", ":")
        for atoms in cells:
            atoms.info["structure"] = "cell"
        mine = [
            f
            for f, parent in zip(fragments, parents, strict=True)
            if parent == -1 or assigned[parent] == part
        ]
        for atoms in mine:
            atoms.info["structure"] = "fragment"
        path = out_dir / f"{dataset}_{part}.xyz"
        ase.io.write(path, cells + mine, format="extxyz")
        meta["files"][part] = {
            "file": path.name,
            "cells": len(cells),
            "fragments": len(mine),
            "sha256": sha256_file(path),
        }
    return write_split_meta(out_dir, dataset, meta)


def parent_part(parent: int, fractions=(0.8, 0.1, 0.1)) -> str:
    """The part (``train``, ``validation`` or ``test``) that the fragments of a cell not
    in the cells' split join: drawn with ``fractions`` from a generator seeded by the
    parent's index, so it is the same in every merge."""
    draw = np.random.default_rng([7919, parent]).random()
    edges = np.cumsum(fractions) / np.sum(fractions)
    return ("train", "validation", "test")[int(np.searchsorted(edges, draw, side="right"))]
