"""``ase-bodyorder md``: an i-PI case with body-order drivers (:mod:`ase_bodyorder.ipi.runner`)."""

from __future__ import annotations

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    from ..models import DEFAULT_MD_MODEL as default_model

    parser = subparsers.add_parser(
        "md", help="run an i-PI case of md_inputs/ with body-order drivers"
    )
    parser.add_argument("case", nargs="?", help="case directory holding input.xml")
    parser.add_argument("--restart", metavar="RUN_DIR", help="continue a run from its RESTART")
    parser.add_argument(
        "--model",
        default=None,
        help="model: a registered name, a plug-in or a .model/.pt file "
        f"(default: the case's, else {default_model})",
    )
    parser.add_argument("--steps", type=int, default=None, help="MD steps (default: the case's)")
    parser.add_argument(
        "--order", type=int, default=None, help="truncation order K (default: the case's, else 3)"
    )
    parser.add_argument(
        "--stride",
        type=int,
        default=None,
        help="expand every S-th step (default: the case's, else 1)",
    )
    parser.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    parser.add_argument(
        "--sample-atoms",
        type=int,
        default=None,
        help="expand M random atoms per expanded step: E^(n)/N estimated with its error",
    )
    parser.add_argument(
        "--seed",
        "--sample-seed",  # its name before every command called it --seed
        dest="seed",
        type=int,
        default=0,
        help="seed of the atom sampling (default 0)",
    )
    parser.add_argument("--output-dir", default=None, help="new run directory")
    parser.add_argument("--timeout", type=float, default=600.0, help="wall-clock limit, s")
    parser.add_argument("--drivers", type=int, default=1, help="driver processes (default 1)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run, runtime_errors=_runtime_errors)


def run(args) -> None:
    from ..ipi.runner import restart_md, run_md

    common = {
        "output_dir": args.output_dir,
        "timeout_s": args.timeout,
        "n_drivers": args.drivers,
        "progress": not args.quiet,
    }
    if args.restart is not None:
        if args.case is not None or args.steps is None:
            raise BodyOrderError("--restart RUN_DIR takes no case, and needs --steps")
        md_run = restart_md(args.restart, steps=args.steps, **common)
    elif args.case is None:
        raise BodyOrderError("give a case directory (e.g. md_inputs/nvt) or --restart RUN_DIR")
    else:
        md_run = run_md(
            args.case,
            model=args.model,
            steps=args.steps,
            order=args.order,
            stride=args.stride,
            r_mbe=args.r_mbe,
            sample_atoms=args.sample_atoms,
            sample_seed=args.seed,
            threads=args.threads,
            **common,
        )
    steps = f"steps {md_run.first_step}-{md_run.last_step}"
    print(f"{md_run.status}: {steps} in {md_run.wall_time_s:.1f} s")
    print(f"run directory: {md_run.run_dir} (files listed in run.json)")


def _runtime_errors() -> tuple:
    """Failures of a running simulation, reported as one line (exit status 2)."""
    from ..runs import MDRunError

    return (MDRunError,)
