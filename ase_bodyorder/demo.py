"""The main job, end to end: the body orders of the shipped H8 cluster, then a short
monitored i-PI run of high-density hydrogen, ending with its report (``ase-bodyorder demo``).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from .decompose import decompose_frames
from .io import example_path, read_structures
from .ipi.cases import CASES, write_case
from .ipi.runner import run_md
from .models import load_model
from .monitor import load_trace, report_text, write_plots
from .monitor.report import order_statistics
from .training.reports import atom_energy
from .training.shipped import H_ATOM_LDA_ISOLATED_EV

__all__ = ["interpretation", "run_demo"]


def run_demo(
    model: str,
    *,
    md_model: str,
    steps: int,
    stride: int,
    output_dir=None,
    timeout_s: float = 1200.0,
) -> None:
    """The full expansion of the shipped H8 cluster with ``model`` (a table on stdout),
    then a short i-PI NVT run of 64-atom high-density hydrogen with ``md_model`` (the case
    written afresh from ``ase_bodyorder.ipi.cases``) for ``steps`` steps, expanded every
    ``stride`` steps, ending with the report and plots of the run (``output_dir``; time
    limit ``timeout_s`` seconds)."""
    path = example_path()
    print(f"1. Full many-body expansion of {path.name} with model {model!r}\n")
    the_model = load_model(model)
    frames = read_structures(path)
    for k, (atoms, body) in enumerate(
        zip(frames, decompose_frames(frames, the_model), strict=True)
    ):
        print(body.table(f"structure {k}: {atoms.get_chemical_formula()}, model {model}") + "\n")
    print(
        f"2. i-PI NVT of high-density hydrogen with {md_model!r} ({steps} steps, body "
        f"orders every {stride})\n"
    )
    with tempfile.TemporaryDirectory() as scratch:
        case = write_case(CASES["nvt"], Path(scratch) / "nvt")
        run = run_md(
            case,
            model=md_model,
            steps=steps,
            stride=stride,
            output_dir=output_dir,
            timeout_s=timeout_s,
        )
    print(f"\n3. Report of {run.run_dir}\n")
    trace = load_trace(run.run_dir)
    print(report_text(trace))
    for plot in write_plots(trace, run.run_dir):
        print(f"wrote {plot}")
    print("\n4. What the monitored numbers mean\n")
    print(interpretation(md_model, trace))


#: shipped results the main job quotes (slower to make than the job itself)
VALIDATION = Path(__file__).resolve().parent.parent / "reports" / "monitor_validation"
SCAN = Path(__file__).resolve().parent.parent / "reports" / "density_scan"


def interpretation(md_model: str, trace) -> str:
    """Lines stating what the run's E^(n)/N mean: the MD model's E^(1) against the
    isolated LDA atom, and the ab initio expansion of frames at the same state point
    (``reports/monitor_validation``, with the command that makes it) against the
    model's, where those shipped results exist for this model."""
    e1 = atom_energy(load_model(md_model))
    lines = [
        f"E^(1) = {e1:.4f} eV per atom: {md_model}'s isolated H atom "
        f"({1000 * (e1 - H_ATOM_LDA_ISOLATED_EV):+.1f} meV from the LDA atom, "
        f"{H_ATOM_LDA_ISOLATED_EV:.4f} eV).",
        "E^(2)/N, E^(3)/N: the model's pair and triple corrections per atom, each "
        "sub-cluster evaluated as an isolated cluster (K = "
        f"{trace.max_order}, within the run's r_mbe); the residual is what orders beyond "
        "K would add.",
    ]
    path = VALIDATION / "validation.json"
    case = json.loads(path.read_text())["cases"].get("nvt") if path.is_file() else None
    if case is None or case["model"] != md_model:
        lines.append(
            f"No shipped ab initio validation of {md_model} ({path}): make it with "
            "`ase-bodyorder reference frames ... --model` and `reference validation`."
        )
        return "\n".join(lines)
    lines.append(
        f"Ab initio expansion of {case['frames']} frames at this state point (same K and "
        f"r_mbe = {case['r_mbe']} A, LDA sub-clusters; {path.parent}). 'model (monitor)' uses "
        "the model's own atom energies, as the monitor does; 'model (increments)' and the "
        "ab initio column share each sub-cluster's total among its atoms by increments (a "
        "pair potential has no E^(3) under it: docs/science.md section 10):"
    )
    lines.append(
        f"{'n':>3} {'this run':>10} {'model (monitor)':>17} {'model (increments)':>20} "
        f"{'ab initio':>16}   E^(n)/N in eV/atom"
    )

    def pm(row: dict, name: str) -> str:
        return f"{row[name + '_eV_per_atom']:8.3f} +- {row[name + '_stderr_eV_per_atom']:5.3f}"

    for row in case["orders"]:
        n = row["order"]
        run = order_statistics(trace, n).mean if n <= trace.max_order else float("nan")
        lines.append(
            f"{n:>3} {run:10.3f} {pm(row, 'model'):>17} {pm(row, 'model_increment_share'):>20} "
            f"{pm(row, 'reference'):>16}"
        )
    if len(case["orders"]) >= 3:
        second, third = case["orders"][1], case["orders"][2]
        e2, e3 = second["reference_eV_per_atom"], third["reference_eV_per_atom"]
        leak = third["reference_leak_eV_per_atom"]
        ratio = abs(e3) / abs(e2)
        verdict = (
            f"does not converge by K = 3: the three-body terms are {ratio:.1f} times the "
            "two-body ones"
            if ratio > 0.5
            else f"converges: the three-body terms are {ratio:.2f} of the two-body ones"
        )
        lines.append(
            f"Ab initio, the expansion in isolated sub-clusters at this density {verdict} "
            f"(E^(3)/N = {e3:+.2f} against E^(2)/N = {e2:+.2f} eV/atom). The former equal "
            f"sharing of sub-cluster totals put {leak:+.2f} eV/atom of pair energy into "
            f"E^(3)/N on top of that. The density scan ({SCAN}) shows how the model's "
            "expansion changes from the atomic to the molecular fluid."
        )
    return "\n".join(lines)
