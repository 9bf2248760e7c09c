"""What an MD model gives the small isolated clusters its monitor evaluates, against the
reference at the cells' level of theory (issue 11).

    python -m ase_bodyorder.training.md_report --model LABEL=PATH ... \\
        --test CELLS_AND_FRAGMENTS.xyz --out-dir reports/md_model

For each model: its 1-body energy against the isolated LDA atom (meV), its H2 curve and
its equilateral-H3 curve (0.4-4 Angstrom, energies relative to the isolated reference
atoms) against the isolated-cluster reference (:mod:`ase_bodyorder.reference.isolated`),
and its test errors on periodic cells and on isolated fragments separately. A model is a
name of :func:`~ase_bodyorder.models.load_model` or a trained file (``.model``: MACE,
otherwise metatomic). Writes ``README.md``, ``md_model.json`` and ``md_model.png``.
Energies in eV (errors in meV), distances in Angstrom.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..expansion import BodyOrderError
from ..models.registry import load_model_spec
from ..reference.isolated import IsolatedDFT, compute_isolated
from .reports import set_errors

__all__ = ["curves_reference", "md_model_report", "model_curves"]

DISTANCES_A = tuple(float(d) for d in np.round(np.arange(0.4, 4.01, 0.1), 2))
#: where no reference pair reaches: the model's H2 must still repel (MD collapses if not)
SHORT_A = tuple(float(d) for d in np.round(np.arange(0.05, 0.601, 0.05), 2))


def _dimer(d: float) -> Atoms:
    return Atoms("H2", positions=[[0, 0, 0], [0, 0, d]])


def _trimer(d: float) -> Atoms:
    return Atoms("H3", positions=[[0, 0, 0], [d, 0, 0], [d / 2, d * 3**0.5 / 2, 0]])


def curves_reference(distances=DISTANCES_A) -> dict:
    """Isolated-cluster reference (eV): the atom, and E - n E_atom of H2 and of the
    equilateral H3 at ``distances`` (side, Angstrom)."""
    settings = IsolatedDFT(forces=False)

    def energy(atoms: Atoms) -> float:
        return compute_isolated(atoms, settings)["energy_eV"]

    atom = energy(Atoms("H", positions=[[0, 0, 0]]))
    return {
        "atom_eV": atom,
        "dimer_eV": [energy(_dimer(d)) - 2 * atom for d in distances],
        "trimer_eV": [energy(_trimer(d)) - 3 * atom for d in distances],
    }


def model_curves(model, reference_atom_eV: float, distances=DISTANCES_A) -> dict:
    """The model's atom (eV) and its H2 and H3 curves relative to the *reference* atoms
    (so that an error of its 1-body term shows in the curves too)."""

    def energy(atoms: Atoms) -> float:
        return float(model.system(atoms, forces=False).energy)

    atom = energy(Atoms("H", positions=[[0, 0, 0]]))
    short = [energy(_dimer(d)) - 2 * reference_atom_eV for d in SHORT_A]
    return {
        "atom_eV": atom,
        "atom_error_meV": 1000 * (atom - reference_atom_eV),
        "short_dimer_A": list(SHORT_A),
        "short_dimer_eV": short,
        # the energy rises at every step inward from 0.6 to 0.05 Angstrom
        "short_dimer_repulsive": bool(np.all(np.diff(short) < 0)),
        "dimer_eV": [energy(_dimer(d)) - 2 * reference_atom_eV for d in distances],
        "trimer_eV": [energy(_trimer(d)) - 3 * reference_atom_eV for d in distances],
    }


def md_model_report(
    models: list[str], test_file, out_dir, command: str, distances=DISTANCES_A
) -> Path:
    """Write the report for ``models`` (``NAME`` or ``LABEL=PATH``) and the test set
    ``test_file`` (periodic cells and isolated fragments, told apart by periodicity);
    curves at ``distances`` (Angstrom)."""
    import matplotlib  # optional plotting backend (the plot extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    distances = tuple(distances)
    reference = curves_reference(distances)
    test = ase.io.read(test_file, ":")
    cells = [a for a in test if a.pbc.any()]
    fragments = [a for a in test if not a.pbc.any()]
    results = {}
    for spec in models:
        label, model = load_model_spec(spec)
        entry = model_curves(model, reference["atom_eV"], distances)
        for name, frames in (("cells", cells), ("fragments", fragments)):
            if frames:
                errors = set_errors(model, frames)
                entry[f"test_{name}"] = {
                    "energy_rmse_meV_per_atom": errors.energy_rmse_meV_per_atom,
                    "force_rmse_meV_per_A": errors.force_rmse_meV_per_A,
                    "structures": errors.n_structures,
                }
        dimer = np.array(entry["dimer_eV"]) - np.array(reference["dimer_eV"])
        trimer = np.array(entry["trimer_eV"]) - np.array(reference["trimer_eV"])
        near = np.array(distances) >= 0.6  # below, both blow up
        entry["dimer_rmse_eV"] = float(np.sqrt(np.mean(dimer[near] ** 2)))
        entry["trimer_rmse_eV"] = float(np.sqrt(np.mean(trimer[near] ** 2)))
        results[label] = entry
    payload = {
        "command": command,
        "test_file": str(test_file),
        "distances_A": list(distances),
        "reference": reference,
        "models": results,
    }
    (out_dir / "md_model.json").write_text(json.dumps(payload, indent=1) + "\n")

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, key, title in (
        (axes[0], "dimer_eV", "H2"),
        (axes[1], "trimer_eV", "equilateral H3"),
    ):
        axis.plot(distances, reference[key], "k-", lw=2, label="LDA (isolated, reference)")
        for label, entry in results.items():
            axis.plot(distances, entry[key], "o-", ms=3, label=label)
        axis.set_ylim(-6 if key == "dimer_eV" else -4, 6)
        axis.axhline(0, color="0.7", lw=0.8)
        axis.set_xlabel("distance / side (Angstrom)")
        axis.set_ylabel(f"E({title}) - n E(H atom, LDA) (eV)")
        axis.set_title(title)
        axis.legend(fontsize=7)
    figure.suptitle(command, fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "md_model.png", dpi=110)
    plt.close(figure)

    lines = [
        "# MD models on the small clusters their monitor evaluates",
        "",
        f"Made by `{command}`; numbers in `md_model.json`, curves in `md_model.png`.",
        f"Reference: isolated clusters at the cells' level of theory (LDA, GTH, gth-szv); "
        f"the H atom is {reference['atom_eV']:.4f} eV. Curves relative to the reference "
        "atoms; RMSE over 0.6-4 Angstrom. 'H2 repels': the model's H2 energy rises at "
        "every 0.05 Angstrom step inward from 0.6 to 0.05 Angstrom (no reference pair "
        "is that close; where it does not, MD can collapse two atoms), with its value at "
        "0.2 Angstrom. Test errors on the cells and on the isolated "
        f"fragments of `{test_file}`.",
        "",
        "| model | E(atom) - reference (meV) | H2 RMSE (eV) | H3 RMSE (eV) | H2 repels "
        "(E at 0.2 A, eV) | cells E "
        "(meV/atom) | cells F (meV/A) | fragments E (meV/atom) | fragments F (meV/A) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, e in results.items():
        cell = e.get("test_cells", {})
        frag = e.get("test_fragments", {})
        lines.append(
            f"| {label} | {e['atom_error_meV']:+.1f} | {e['dimer_rmse_eV']:.3f} | "
            f"{e['trimer_rmse_eV']:.3f} | "
            f"{'yes' if e['short_dimer_repulsive'] else 'no'} "
            f"({e['short_dimer_eV'][SHORT_A.index(0.2)]:+.1f}) | "
            f"{cell.get('energy_rmse_meV_per_atom', float('nan')):.1f} "
            f"| {cell.get('force_rmse_meV_per_A', float('nan')):.0f} | "
            f"{frag.get('energy_rmse_meV_per_atom', float('nan')):.1f} | "
            f"{frag.get('force_rmse_meV_per_A', float('nan')):.0f} |"
        )
    path = out_dir / "README.md"
    path.write_text("\n".join(lines) + "\n")
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", required=True, help="NAME or LABEL=PATH")
    parser.add_argument("--test", required=True, help="extxyz of test cells and fragments")
    parser.add_argument("--out-dir", default="reports/md_model")
    args = parser.parse_args(argv)
    words = ["python", "-m", "ase_bodyorder.training.md_report"]
    for spec in args.model:
        words += ["--model", spec]
    command = shlex.join(words + ["--test", args.test, "--out-dir", args.out_dir])
    try:
        print(f"wrote {md_model_report(args.model, args.test, args.out_dir, command)}")
    except BodyOrderError as error:
        print(f"md_report: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
