"""``ase-bodyorder report``: tables of the shipped models (``accuracy``, ``bodyorder``), or
the statistics and plots of a run (:mod:`ase_bodyorder.training.reports`,
:mod:`ase_bodyorder.monitor`)."""

from __future__ import annotations

from pathlib import Path

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="`report accuracy`, `report bodyorder` (shipped models) or `report RUN_DIR` "
        "(an MD run or a BodyOrderLogger file)",
    )
    parser.add_argument("target", help="accuracy, bodyorder, or a run directory / log file")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help="models to report (default: every shipped H8 model, and for `accuracy` also "
        "the shipped periodic MD models)",
    )
    parser.add_argument("--output", help="also write the table (markdown) to this file")
    parser.add_argument("--plots", help="directory for PNG plots (run reports; default RUN_DIR)")
    parser.add_argument(
        "--centroid",
        action="store_true",
        help="path-integral runs: also expand the centroid frames (with the run's model)",
    )
    parser.add_argument(
        "--from-step",
        type=int,
        default=0,
        help="run reports: statistics of the frames at steps >= N only (after an "
        "equilibration period; default 0)",
    )
    parser.add_argument(
        "--chemiscope",
        default=None,
        metavar="FILE.json.gz",
        help="run reports: also write a chemiscope dataset of the monitored frames, each "
        "expanded again in full with the run's model, order and r_mbe (per-atom e_i^(n); "
        "a full expansion per frame: see --chemiscope-frames)",
    )
    parser.add_argument(
        "--chemiscope-frames",
        type=int,
        default=20,
        metavar="N",
        help="frames of the chemiscope dataset, spread evenly over the run (default 20)",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    """Print the report (and write it to ``--output``)."""
    if args.chemiscope is not None:
        from ..chemiscope import check_chemiscope_path

        if args.target in ("accuracy", "bodyorder"):
            raise BodyOrderError("--chemiscope writes the frames of a run: give a run directory")
        check_chemiscope_path(args.chemiscope)
    if args.target in ("accuracy", "bodyorder"):
        text = _model_tables(args.target, args.models)
    else:
        if args.from_step < 0:
            raise BodyOrderError(f"--from-step must be >= 0, got {args.from_step}")
        text = _run_report(args.target, args.plots, args.centroid, args.from_step)
        if args.chemiscope is not None:
            from ..monitor.frames import write_run_chemiscope

            path = write_run_chemiscope(
                args.target,
                args.chemiscope,
                max_frames=args.chemiscope_frames,
                first_step=args.from_step,
            )
            text += f"wrote {path}\n"
    print(text, end="")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text)


def _model_tables(target: str, models: list[str] | None) -> str:
    from ..training import reports

    if target == "accuracy":
        make, models = reports.accuracy_table, models or reports.accuracy_models()
    else:
        make, models = reports.bodyorder_table, models or reports.bodyorder_models()
    table = make(models)
    command = "ase-bodyorder report " + target + " --models " + " ".join(models)
    return f"{table}\n\nMade by `{command}`.\n"


def _run_report(target: str, plots: str | None, centroid: bool = False, from_step: int = 0) -> str:
    from ..monitor import load_trace, report_text, write_plots
    from ..monitor.report import run_manifest, status_line

    trace = load_trace(target)
    text = ""
    if from_step:
        total = len(trace)
        trace = trace.from_step(from_step)
        if len(trace) == 0:
            raise BodyOrderError(f"{target}: no monitored frame at steps >= {from_step}")
        text += (
            f"statistics of the {len(trace)} of {total} monitored frames at steps >= {from_step}\n"
        )
    text += report_text(trace) + "\n"
    try:
        run = run_manifest(target)
    except BodyOrderError as error:  # the frames are still worth reporting
        text += f"warning: {error}\n"
    else:
        if run is not None:
            text += status_line(run) + "\n"
            if run.nbeads > 1:
                from ..monitor.pimd import pimd_text

                text += (
                    pimd_text(run.run_dir, run.nbeads, centroid=centroid, first_step=from_step)
                    + "\n"
                )
    path = Path(target)
    directory = Path(plots) if plots else (path if path.is_dir() else path.parent)
    for plot in write_plots(trace, directory):
        text += f"wrote {plot}\n"
    return text
