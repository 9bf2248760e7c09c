"""The main job, end to end: the body orders of the shipped H8 cluster, then a short
monitored i-PI run of high-density hydrogen, ending with its report (``ase-bodyorder demo``).
"""

from __future__ import annotations

__all__ = ["run_demo"]


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
    import tempfile
    from pathlib import Path

    from .decompose import decompose_frames
    from .io import example_path, read_structures
    from .ipi.cases import CASES, write_case
    from .ipi.runner import run_md
    from .models import DEFAULT_MD_MODEL, load_model
    from .monitor import load_trace, report_text, write_plots

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
    if md_model == DEFAULT_MD_MODEL:
        print(
            f"\nNote: {md_model} was trained on periodic cells only; it has never seen an "
            "isolated atom, dimer or trimer, so the energies it gives the sub-clusters of "
            "the expansion are extrapolations (its E^(1) is not the LDA atom, and E^(2), "
            "E^(3) and the residual are far from converged). The run shows the monitoring "
            "machinery, not the physics of dense hydrogen; see the README."
        )
