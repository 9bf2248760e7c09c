"""The frames of monitored runs expanded again, the model's totals shared by increments.

The monitor logs a model's own atom-resolved expansion (its own atom energies). An
ab initio expansion has totals only and shares them by increments (``docs/science.md``
section 10), a definition under which a pair potential has no third order. To read a
run's body orders under that definition, and to compare them with the monitor's, this
module expands frames of finished runs both ways, on the same sampled atoms:

    ase-bodyorder increments md_runs/scan --out-dir reports/density_scan

Each run directory (a density scan's ``runs/*``, or any ``md`` run) gives its model, K,
r_mbe (its ``case.json``) and its frames (the positions trajectory i-PI writes,
``simulation.pos_0.extxyz``); the frames after ``equilibration_steps`` are taken every
``every``-th, each expanded with ``sample_atoms`` atoms drawn from ``seed``. Per run and
order: E^(n)/N and the residual per atom (eV/atom), the mean over frames with the
standard error of that mean (frames apart by ``every`` strides of the trajectory are
treated as independent; the atom sampling is part of the frame-to-frame scatter).
"""

from __future__ import annotations

import json
import math
import os
import xml.etree.ElementTree as ElementTree
from pathlib import Path
from typing import Any

import ase.io
import numpy as np

from ..decompose import decompose, frame_settings
from ..expansion import BodyOrderError
from ..models.registry import resolve_model
from ..models.sharing import IncrementShare
from ..runs import MANIFEST, MDRun, MDRunError

__all__ = ["run_increments", "write_increments_report"]

#: the two definitions compared: the model's own atom energies (the monitor's) and its
#: totals shared by increments (the reference's)
DEFINITIONS = {"own": "model's own atom energies (monitor)", "increment": "increments"}

#: the positions trajectory of a run (i-PI's ``<trajectory filename="pos" format="ase">``)
POSITIONS_FILE = "simulation.pos_0.extxyz"


def _case(run_dir: Path) -> dict:
    """The run's model and expansion from its manifest (``run.json``: what the drivers
    ran, the default model included), its name and density from ``case.json``; a run
    written before the manifest: both from ``case.json``."""
    path = run_dir / "case.json"
    try:
        case = json.loads(path.read_text()) if path.is_file() else {}
        if not isinstance(case, dict):
            raise TypeError("not a JSON object")
        if (run_dir / MANIFEST).is_file():
            driver = MDRun.load(run_dir).driver
            expansion = driver.expansion
            ran: dict[str, Any] = {"model": driver.model, "order": expansion.order}
            ran |= {"r_mbe": expansion.r_mbe, "stride": expansion.stride}
        else:
            ran = case["driver_defaults"]
        return {
            "model": str(ran["model"]),
            "order": int(ran["order"]),
            "r_mbe": float(ran["r_mbe"]),
            "stride": int(ran["stride"]),
            "rs_bohr": case.get("rs_bohr"),
            "name": case.get("name", run_dir.name),
        }
    except (OSError, ValueError, KeyError, TypeError, MDRunError) as error:
        raise BodyOrderError(f"{path}: not the case of a monitored run ({error})") from None


def _trajectory_stride(run_dir: Path) -> int:
    """The stride (steps) of the run's positions trajectory, from its input.xml."""
    path = run_dir / "input.xml"
    try:
        root = ElementTree.parse(path).getroot()
    except (OSError, ElementTree.ParseError) as error:
        raise BodyOrderError(f"{path}: cannot read the run's input ({error})") from None
    for element in root.iter("trajectory"):
        if element.get("filename") == "pos":
            return int(element.get("stride", "1"))
    raise BodyOrderError(f"{path}: the run writes no positions trajectory (filename='pos')")


def run_increments(
    run_dir: str | os.PathLike[str],
    *,
    equilibration_steps: int = 0,
    every: int = 4,
    sample_atoms: int = 8,
    seed: int = 0,
) -> dict:
    """E^(n)/N and the residual per atom (eV/atom) of the frames of one run, under the
    model's own atom energies and under increments (see the module docstring)."""
    run_dir = Path(run_dir)
    case = _case(run_dir)
    if every < 1 or sample_atoms < 1 or equilibration_steps < 0:
        raise BodyOrderError(
            "every and sample_atoms must be positive, equilibration_steps non-negative"
        )
    path = run_dir / POSITIONS_FILE
    try:
        frames = list(ase.io.iread(path))
    except (OSError, ValueError, StopIteration) as error:
        raise BodyOrderError(f"{path}: cannot read the run's frames ({error})") from None
    stride = _trajectory_stride(run_dir)
    first = math.ceil(equilibration_steps / stride)
    picked = list(range(first, len(frames), every))
    if not picked:
        raise BodyOrderError(
            f"{path}: no frame after step {equilibration_steps} ({len(frames)} frames, "
            f"every {stride} steps)"
        )
    model = resolve_model(case["model"])
    models = {"own": model, "increment": IncrementShare(model)}
    chosen = [frames[k] for k in picked]
    settings = frame_settings(chosen, order=case["order"], sample_atoms=sample_atoms, seed=seed)
    values: dict[str, list[np.ndarray]] = {name: [] for name in models}
    for atoms, own in zip(chosen, settings, strict=True):
        for name, evaluated in models.items():
            result = decompose(atoms, evaluated, r_mbe=case["r_mbe"], **own)
            assert result.energies_per_atom_mean_eV is not None  # atomic models give them
            residual = result.residual_per_atom_mean_eV
            values[name].append(
                np.append(
                    result.energies_per_atom_mean_eV, math.nan if residual is None else residual
                )
            )
    out: dict = {
        **case,
        "run": str(run_dir),
        "frames": len(picked),
        "frame_steps": [k * stride for k in picked],
        "sample_atoms": sample_atoms,
        "seed": seed,
    }
    for name, rows in values.items():
        table = np.asarray(rows)
        mean = table.mean(axis=0)
        stderr = (
            table.std(axis=0, ddof=1) / math.sqrt(len(table)) if len(table) > 1 else mean * math.nan
        )
        out[name] = {
            "per_atom_mean_eV": mean[:-1].tolist(),
            "per_atom_stderr_eV": stderr[:-1].tolist(),
            "residual_per_atom_mean_eV": float(mean[-1]),
            "residual_per_atom_stderr_eV": float(stderr[-1]),
        }
    return out


def write_increments_report(
    run_dirs: list[Path],
    out_dir: str | os.PathLike[str],
    command: str,
    **options: int,
) -> Path:
    """``increments.json``, ``increments.png`` and ``increments.md`` in ``out_dir``:
    :func:`run_increments` of each run (``options``), sorted by rs."""
    import matplotlib  # matplotlib: the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not run_dirs:
        raise BodyOrderError("no runs to expand")
    runs = [run_increments(run_dir, **options) for run_dir in run_dirs]
    runs.sort(key=lambda run: (run["rs_bohr"] is None, run["rs_bohr"] or 0.0, run["name"]))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "increments.json").write_text(
        json.dumps({"command": command, "runs": runs}, indent=1) + "\n"
    )

    figure, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    x = [run["rs_bohr"] if run["rs_bohr"] is not None else k for k, run in enumerate(runs)]
    panels = (("E^(2)/N", 1), ("E^(3)/N", 2), ("residual beyond K, per atom", None))
    for axis, (title, order) in zip(axes, panels, strict=True):
        for name, text in DEFINITIONS.items():
            if order is None:
                y = [run[name]["residual_per_atom_mean_eV"] for run in runs]
                e = [run[name]["residual_per_atom_stderr_eV"] for run in runs]
            else:
                y = [run[name]["per_atom_mean_eV"][order] for run in runs]
                e = [run[name]["per_atom_stderr_eV"][order] for run in runs]
            axis.errorbar(x, y, yerr=e, fmt="o-" if name == "own" else "s--", capsize=3, label=text)
        axis.axhline(0, color="0.7", lw=0.8)
        axis.set_title(title)
        axis.set_xlabel("rs (bohr)")
        axis.set_ylabel(f"{title} (eV/atom)")
        axis.legend(fontsize=8)
    figure.suptitle(command, fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "increments.png", dpi=110)
    plt.close(figure)

    def pm(block: dict, order: int | None) -> str:
        if order is None:
            return (
                f"{block['residual_per_atom_mean_eV']:+.3f} ± "
                f"{block['residual_per_atom_stderr_eV']:.3f}"
            )
        return f"{block['per_atom_mean_eV'][order]:+.3f} ± {block['per_atom_stderr_eV'][order]:.3f}"

    lines = [
        "# The density scan's frames under increments",
        "",
        f"Made by `{command}`; numbers in `increments.json`, figure `increments.png`.",
        "Per run: the frames after the equilibration, expanded with the run's model, K and",
        "r_mbe on sampled atoms, once with the model's own atom energies (what the monitor",
        "logs) and once with the model's sub-cluster totals shared by increments (the ab",
        "initio reference's definition, docs/science.md section 10), on the same atoms.",
        "E^(n)/N and the residual beyond K per atom in eV/atom: mean over frames ± its",
        "standard error.",
        "",
        "| run | rs (bohr) | model | r_mbe (A) | frames | E^(2)/N own | E^(2)/N increments "
        "| E^(3)/N own | E^(3)/N increments | residual/N own | residual/N increments |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        own, inc = run["own"], run["increment"]
        lines.append(
            f"| {run['name']} | {run['rs_bohr']} | {run['model']} | {run['r_mbe']:g} | "
            f"{run['frames']} | {pm(own, 1)} | {pm(inc, 1)} | {pm(own, 2)} | {pm(inc, 2)} | "
            f"{pm(own, None)} | {pm(inc, None)} |"
        )
    lines.append("")
    path = out_dir / "increments.md"
    path.write_text("\n".join(lines))
    return path
