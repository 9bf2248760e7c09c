"""Finite-size (k-point) convergence of the periodic reference: forces and energies of
the same cells on several k-point meshes, against the densest.

    ase-bodyorder reference finite-size --out-dir reports/reference_finite_size

A 16-atom cell of dense hydrogen is 3.1-4.2 Angstrom long and metallic: its Gamma-point
forces are far from those of the infinite periodic crystal it stands for (the
k-point mesh n1 x n2 x n3 of a cell is exactly the Gamma point of the n1 x n2 x n3
supercell, ``tests/reference/test_periodic.py``). :func:`kpoint_convergence` computes
each cell on each mesh and reports the RMS force difference (eV/Angstrom) and the
energy difference (meV/atom) to the reference mesh. Meshes are named ``gamma``,
``g<n>`` (n x n x n through Gamma) and ``s<n>`` (Monkhorst-Pack n x n x n, shifted off
Gamma). Energies in eV, forces in eV/Angstrom, lengths in Angstrom.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..expansion import BodyOrderError
from ..structures import CrossoverBulk, sample_crossover_bulk
from .periodic import PeriodicDFT, compute_periodic

__all__ = [
    "default_cells",
    "finite_size_report",
    "kpoint_convergence",
    "mesh_settings",
    "policy_cells",
    "policy_mesh",
    "write_report",
]

#: (mesh names, reference mesh) of the dense and of the molecular cells
DENSE_MESHES = (("gamma", "s2", "g3", "s4"), "s4")
MOLECULAR_MESHES = (("gamma", "s2"), "s2")

#: the shipped reference data sets
DATA = Path(__file__).resolve().parent.parent / "data" / "reference"


def mesh_settings(name: str, atoms: Atoms, base: PeriodicDFT) -> PeriodicDFT:
    """``base`` with the k-point mesh ``name`` (``gamma``, ``g<n>`` or ``s<n>``) of a cubic
    cell ``atoms`` (the mesh as a k-point length: n times the cell edge)."""
    if name == "gamma":
        return replace(base, kpoint_length_angstrom=0.0, kpoint_grid="gamma")
    match = re.fullmatch(r"([gs])(\d+)", name)
    if match is None:
        raise BodyOrderError(f"mesh {name!r}: use gamma, g<n> (through Gamma) or s<n> (shifted)")
    lengths = atoms.cell.lengths()
    if not np.allclose(lengths, lengths[0]):
        raise BodyOrderError("named meshes are for cubic cells")
    n = int(match.group(2))
    grid = "gamma" if match.group(1) == "g" else "shifted"
    return replace(base, kpoint_length_angstrom=n * float(lengths[0]), kpoint_grid=grid)


def default_cells() -> list[tuple[str, Atoms, tuple]]:
    """The cells of the shipped measurement: two dense cells of the shipped Gamma-point
    set (a random one with large forces and a rattled bcc one) and three molecular cells
    of the crossover set (rs 2.05, 2.57, 2.94 bohr), with their meshes."""
    test = DATA / "hbulk-high_test.xyz"
    dense = [ase.io.read(test, index) for index in (0, 3)]
    crossover = sample_crossover_bulk(CrossoverBulk(), 40, 4001)
    molecular = sorted(
        (a for a in crossover if a.info["kind"] == "molecular"), key=lambda a: a.info["rs_bohr"]
    )
    picked = [molecular[0], molecular[len(molecular) // 2], molecular[-1]]
    out = []
    for atoms, label in zip(dense, ("hbulk-high test 0", "hbulk-high test 3"), strict=True):
        out.append((label, atoms, DENSE_MESHES))
    for atoms in picked:
        out.append((f"crossover cell {atoms.info['index']}", atoms, MOLECULAR_MESHES))
    return out


def policy_mesh(atoms: Atoms, policy: PeriodicDFT) -> str:
    """The name of the mesh ``policy`` gives the cubic cell ``atoms``: ``gamma`` or
    ``g<n>`` (a Gamma-centred policy) or ``s<n>`` (a shifted one)."""
    mesh = policy.kmesh(atoms.cell.array, len(atoms))
    if len(set(mesh)) != 1:
        raise BodyOrderError(f"named meshes are for cubic cells, the policy gives {mesh}")
    if mesh[0] == 1 and policy.kpoint_grid == "gamma":
        return "gamma"
    return f"{'g' if policy.kpoint_grid == 'gamma' else 's'}{mesh[0]}"


def policy_cells(
    cells: list[Atoms], policy: PeriodicDFT, rs_bohr: tuple[float, ...]
) -> list[tuple[str, Atoms, tuple]]:
    """For each of ``rs_bohr`` the cell of ``cells`` nearest in rs, on the mesh ``policy``
    gives it and on the shifted mesh one k-point denser in each direction (``s<n+1>``,
    its reference): the finite-size error of a data set made with ``policy``."""
    out = []
    for target in rs_bohr:
        atoms = min(cells, key=lambda a: abs(a.info["rs_bohr"] - target))
        own = policy_mesh(atoms, policy)
        n = 1 if own == "gamma" else int(own[1:])
        denser = f"s{n + 1}"
        out.append((f"cell {atoms.info.get('index', '?')}", atoms, ((own, denser), denser)))
    return out


def kpoint_convergence(cells, base: PeriodicDFT | None = None, progress=None) -> list[dict]:
    """One row per cell and mesh: RMS force difference (eV/Angstrom) and energy
    difference (meV/atom) to the cell's reference mesh, the RMS force, the wall time.

    ``cells``: ``(label, atoms, (mesh names, reference name))`` as :func:`default_cells`;
    ``base``: the settings apart from the mesh (default :class:`PeriodicDFT`).
    """
    base = PeriodicDFT() if base is None else base
    rows = []
    for label, atoms, (names, reference) in cells:
        if reference not in names:
            raise BodyOrderError(f"{label}: reference mesh {reference} is not among {names}")
        results = {}
        for name in names:
            start = time.perf_counter()
            record = compute_periodic(atoms, mesh_settings(name, atoms, base))
            results[name] = (record, time.perf_counter() - start)
            if progress is not None:
                progress(f"{label} {name}: {results[name][1]:.0f} s")
        ref_forces = np.asarray(results[reference][0]["forces_eV_per_A"])
        ref_energy = results[reference][0]["energy_eV"]
        for name in names:
            record, seconds = results[name]
            forces = np.asarray(record["forces_eV_per_A"])
            rows.append(
                {
                    "cell": label,
                    "kind": str(atoms.info.get("kind", "")),
                    "rs_bohr": float(atoms.info.get("rs_bohr", float("nan"))),
                    "cell_length_A": float(atoms.cell.lengths()[0]),
                    "mesh": name,
                    "reference": reference,
                    "force_rms_difference_eV_per_A": float(
                        np.sqrt(((forces - ref_forces) ** 2).mean())
                    ),
                    "energy_difference_meV_per_atom": 1000
                    * (record["energy_eV"] - ref_energy)
                    / len(atoms),
                    "force_rms_eV_per_A": float(np.sqrt((forces**2).mean())),
                    "wall_time_s": seconds,
                }
            )
    return rows


def write_report(rows: list[dict], out_dir, base: PeriodicDFT, command: str) -> Path:
    """``README.md`` (a table) and ``finite_size.json`` in ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "settings": base.to_dict(), "rows": rows}
    (out_dir / "finite_size.json").write_text(json.dumps(payload, indent=1) + "\n")
    lines = [
        "# Finite-size error of the periodic reference (k-point meshes)",
        "",
        f"Made by `{command}`; numbers in `finite_size.json`. LDA, {base.basis}, "
        f"{base.pseudo}, {base.ke_cutoff_hartree:g} Ha, smearing "
        f"{base.smearing_hartree:g} Ha. Each cell on each mesh against its reference "
        "mesh: RMS force difference and energy difference. Meshes: `gamma`, `g<n>` "
        "(n x n x n through Gamma), `s<n>` (Monkhorst-Pack, shifted off Gamma).",
        "",
        "| cell | kind | rs (bohr) | edge (A) | mesh | vs | dF RMS (eV/A) | dE (meV/atom) "
        "| F RMS (eV/A) | time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['cell']} | {r['kind']} | {r['rs_bohr']:.2f} | {r['cell_length_A']:.2f} "
            f"| {r['mesh']} | {r['reference']} | {r['force_rms_difference_eV_per_A']:.3f} "
            f"| {r['energy_difference_meV_per_atom']:+.1f} | {r['force_rms_eV_per_A']:.2f} "
            f"| {r['wall_time_s']:.0f} |"
        )
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def finite_size_report(
    out_dir,
    command: str,
    *,
    ke_cutoff_hartree: float = 60.0,
    policy: PeriodicDFT | None = None,
    sample: tuple | None = None,
    rs_bohr: Sequence[float] = (),
    progress=None,
) -> Path:
    """Measure the k-point convergence and write its report to ``out_dir``
    (:func:`write_report`, ``command`` in it); returns the README's path.

    By default the cells of :func:`default_cells` at a cutoff of ``ke_cutoff_hartree``
    (Hartree). With a data set's k-point ``policy`` and its crossover sampler
    ``sample`` (protocol, count, seed): the cells of that set nearest ``rs_bohr``
    (bohr) on the policy's mesh and one k-point denser (:func:`policy_cells`), at the
    policy's settings (``ke_cutoff_hartree`` ignored). ``progress``: called with a line
    per cell and mesh computed.
    """
    if policy is not None:
        if sample is None:
            raise BodyOrderError("a k-point policy needs its cells' sampler, count and seed")
        protocol, count, seed = sample
        cells = policy_cells(sample_crossover_bulk(protocol, count, seed), policy, tuple(rs_bohr))
        base = replace(policy, gamma_above_rs_bohr=None)
    else:
        cells = default_cells()
        base = PeriodicDFT(ke_cutoff_hartree=ke_cutoff_hartree)
    rows = kpoint_convergence(cells, base, progress=progress)
    return write_report(rows, out_dir, base, command)
