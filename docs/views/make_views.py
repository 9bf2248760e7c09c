"""Regenerate the chemiscope datasets of the site's views page (docs/views.md).

    python docs/views/make_views.py [--stage h8|md|all]

``h8``: the 50 held-out high-density H8 clusters with an FCI/STO-6G expansion
(``ase_bodyorder/data/reference/h8-high_mbe_fci_sto6g.json``), each expanded in full
(K = 8) with ``mace-h8-high`` (the default model) and ``mace-h8-high-f50`` (trained with
FCI fragments), beside the FCI terms: ``h8_heldout.json``. The reference holds
sub-cluster energies, not atom energies: its e_i^(n) share each sub-cluster's energy
among its atoms by increments (``docs/science.md`` section 10; the orders' totals E^(n)
are the reference's own under any sharing, checked here).

``md``: a monitored i-PI run of the shipped ``nvt`` case (64 atoms of dense hydrogen,
rs = 1.6 bohr, 1500 K, MD default ``mace-hcells-zbl``, 50 steps of 0.2 fs, expanded
every 5 steps with 8 sampled atoms), then ``report RUN --chemiscope``: its 11 frames
expanded again in full at K = 3, r_mbe = 2 Angstrom: ``dense_nvt.json``.

Both are plain JSON (the site's viewer reads no gzip). Seconds to minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from importlib.resources import files
from pathlib import Path

import ase.io
import numpy as np
from ase.units import Hartree

from ase_bodyorder import decompose, load_model
from ase_bodyorder.chemiscope import write_chemiscope
from ase_bodyorder.reference.frames import expansions_from_totals

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DATA = Path(str(files("ase_bodyorder.data.reference")))
MODELS = ("mace-h8-high", "mace-h8-high-f50")


def fci_terms(atoms, record: dict) -> tuple[np.ndarray, np.ndarray]:
    """``(E^(n) (K,), e_i^(n) (N, K))`` of the FCI expansion of ``atoms`` (eV), each
    sub-cluster's energy shared among its atoms by increments; E^(n) checked against the
    record's own."""
    totals = {label: e * Hartree for label, e in record["subcluster_energies_Ha"].items()}
    (result,) = expansions_from_totals([atoms], [totals], order=len(atoms), r_mbe=None)
    np.testing.assert_allclose(result.energies_eV, record["energies_eV"], rtol=0, atol=1e-8)
    return result.energies_eV, result.energies_per_atom_eV


def h8_view(path: Path) -> None:
    records = json.loads((DATA / "h8-high_mbe_fci_sto6g.json").read_text())["clusters"]
    by_index = {int(a.info["index"]): a for a in ase.io.read(DATA / "h8-high_clusters.xyz", ":")}
    frames = [by_index[r["cluster"]] for r in records]
    for atoms in frames:
        atoms.info.clear()
        atoms.arrays = {k: v for k, v in atoms.arrays.items() if k in ("numbers", "positions")}
    k = len(frames[0])
    models = {name: load_model(name) for name in MODELS}
    results = {
        name: [decompose(a, model, max_order=k) for a in frames] for name, model in models.items()
    }
    fci = [fci_terms(a, r) for a, r in zip(frames, records, strict=True)]
    extra: dict[str, dict] = {}
    for n in range(1, k + 1):
        extra[f"FCI e_i^({n})"] = {
            "target": "atom",
            "values": np.concatenate([per_atom[:, n - 1] for _, per_atom in fci]),
            "units": "eV",
            "description": f"{n}-body energy of each atom in the FCI/STO-6G expansion "
            "(each sub-cluster's energy shared among its atoms by increments)",
        }
        extra[f"FCI E^({n})/N"] = {
            "target": "structure",
            "values": np.array([totals[n - 1] / k for totals, _ in fci]),
            "units": "eV/atom",
            "description": f"{n}-body energy per atom of the FCI/STO-6G expansion",
        }
        other = results[MODELS[1]]
        extra[f"f50 e_i^({n})"] = {
            "target": "atom",
            "values": np.concatenate([r.energies_per_atom_eV[:, n - 1] for r in other]),
            "units": "eV",
            "description": f"{n}-body energy of each atom, {MODELS[1]} (trained with fragments)",
        }
        extra[f"f50 E^({n})/N"] = {
            "target": "structure",
            "values": np.array([r.energies_eV[n - 1] / k for r in other]),
            "units": "eV/atom",
            "description": f"{n}-body energy per atom, {MODELS[1]}",
        }
    extra["FCI E/N"] = {
        "target": "structure",
        "values": np.array([r["total_energy_eV"] / k for r in records]),
        "units": "eV/atom",
        "description": "FCI/STO-6G energy per atom of the whole cluster",
    }
    extra["cluster"] = {
        "target": "structure",
        "values": np.array([r["cluster"] for r in records], dtype=float),
        "description": "index of the cluster in h8-high_clusters.xyz",
    }
    write_chemiscope(
        path,
        frames,
        results[MODELS[0]],
        name="50 held-out H8 clusters (high density): model and FCI body orders",
        description=(
            f"Full expansions (K = 8) of the held-out clusters with {MODELS[0]} (properties "
            f"without prefix), {MODELS[1]} ('f50') and FCI/STO-6G ('FCI'). Made by "
            "docs/views/make_views.py."
        ),
        properties=extra,
        color="e_i^(2)",
        axes=("FCI E^(2)/N", "E^(2)/N"),
    )


def md_view(path: Path) -> None:
    from ase_bodyorder.ipi import run_md
    from ase_bodyorder.monitor.frames import write_run_chemiscope

    with tempfile.TemporaryDirectory() as folder:
        run = run_md(
            ROOT / "md_inputs" / "nvt",
            steps=50,
            stride=5,
            sample_atoms=8,
            output_dir=Path(folder) / "nvt",
            timeout_s=2400,
        )
        if run.status != "completed":
            raise RuntimeError(f"the MD run ended {run.status}: {run.message}")
        write_run_chemiscope(run.run_dir, path, max_frames=11)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stage", choices=["h8", "md", "all"], default="all")
    args = parser.parse_args()
    if args.stage in ("h8", "all"):
        h8_view(HERE / "h8_heldout.json")
        print("wrote", HERE / "h8_heldout.json")
    if args.stage in ("md", "all"):
        md_view(HERE / "dense_nvt.json")
        print("wrote", HERE / "dense_nvt.json")


if __name__ == "__main__":
    main()
