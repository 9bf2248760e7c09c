"""``ase-bodyorder scan``: a density scan of short monitored NVT runs
(:mod:`ase_bodyorder.ipi.scan`)."""

from __future__ import annotations

import shlex


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="density scan: monitored NVT runs at several rs, E^(n)/N per order (resumable)",
    )
    parser.add_argument(
        "--rs", type=float, nargs="+", required=True, help="Wigner-Seitz radii, bohr"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="model: a registered name, a plug-in or a .model/.pt file (default: the MD default)",
    )
    parser.add_argument("--steps", type=int, default=200, help="MD steps per density")
    parser.add_argument(
        "--equilibration",
        type=int,
        default=0,
        help="steps run before the --steps whose frames make the statistics (default 0)",
    )
    parser.add_argument("--stride", type=int, default=10, help="expand every S-th step")
    parser.add_argument("--order", type=int, default=3, help="truncation order K")
    parser.add_argument("--r-mbe", type=float, default=None, help="radius, Angstrom (fixed)")
    parser.add_argument(
        "--r-mbe-per-rs",
        type=float,
        default=1.25,
        help="radius per rs when --r-mbe is not given, Angstrom/bohr (default 1.25)",
    )
    parser.add_argument("--sample-atoms", type=int, default=8, help="atoms per frame (0: all)")
    parser.add_argument("--temperature", type=float, default=1000.0, help="K")
    parser.add_argument("--n-atoms", type=int, default=64)
    parser.add_argument(
        "--molecular-above-rs", type=float, default=2.2, help="H2 start above this rs, bohr"
    )
    parser.add_argument("--output-dir", required=True, help="cases, runs and the report")
    parser.add_argument("--timeout", type=float, default=3600.0, help="per run, s")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.set_defaults(handler=run, runtime_errors=_runtime_errors)


def run(args) -> None:
    from ..ipi.scan import ScanSettings, run_density_scan, write_scan_report
    from ..models import DEFAULT_MD_MODEL
    from ..settings import ExpansionSettings

    settings = ScanSettings(
        rs_bohr=tuple(args.rs),
        model=args.model,
        steps=args.steps,
        equilibration_steps=args.equilibration,
        expansion=ExpansionSettings(
            order=args.order,
            stride=args.stride,
            r_mbe=args.r_mbe,
            sample_atoms=args.sample_atoms or None,
            seed=0,
        ),
        r_mbe_per_rs=args.r_mbe_per_rs,
        temperature_K=args.temperature,
        n_atoms=args.n_atoms,
        molecular_above_rs_bohr=args.molecular_above_rs,
    )
    points = run_density_scan(
        settings, args.output_dir, timeout_s=args.timeout, progress=not args.quiet
    )
    words = ["ase-bodyorder", "scan", "--rs", *(f"{rs:g}" for rs in args.rs)]
    for flag, value, default in (
        ("--model", args.model, None),
        ("--steps", args.steps, 200),
        ("--equilibration", args.equilibration, 0),
        ("--stride", args.stride, 10),
        ("--order", args.order, 3),
        ("--r-mbe", args.r_mbe, None),
        ("--r-mbe-per-rs", args.r_mbe_per_rs, 1.25),
        ("--sample-atoms", args.sample_atoms, 8),
        ("--temperature", args.temperature, 1000.0),
        ("--n-atoms", args.n_atoms, 64),
        ("--molecular-above-rs", args.molecular_above_rs, 2.2),
    ):
        if value != default:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    command = shlex.join([*words, "--output-dir", args.output_dir])
    path = write_scan_report(points, args.output_dir, args.model or DEFAULT_MD_MODEL, command)
    print(f"wrote {path}")


def _runtime_errors() -> tuple:
    from ..runs import MDRunError

    return (MDRunError,)
