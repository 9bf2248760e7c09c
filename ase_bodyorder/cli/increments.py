"""``ase-bodyorder increments``: the frames of monitored runs expanded again with the
model's sub-cluster totals shared by increments, beside its own atom energies."""

from __future__ import annotations

import shlex
from pathlib import Path

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "increments",
        help="expand the frames of monitored runs by increments (the reference's sharing) "
        "and by the model's own atom energies (the monitor's), on the same atoms",
    )
    parser.add_argument(
        "runs",
        nargs="+",
        help="run directories, or a density scan's output directory (its runs/*)",
    )
    parser.add_argument("--out-dir", required=True, help="where increments.md/.json/.png go")
    parser.add_argument(
        "--equilibration", type=int, default=0, help="steps left out at the start of each run"
    )
    parser.add_argument("--every", type=int, default=4, help="every N-th written frame")
    parser.add_argument("--sample-atoms", type=int, default=8, help="atoms per frame")
    parser.add_argument("--seed", type=int, default=0, help="seed of the atom samples")
    parser.set_defaults(handler=run_increments_command)


def run_dirs(paths: list[str]) -> list[Path]:
    """The run directories named by ``paths``: a directory holding ``case.json``, or a
    scan's output directory (its ``runs/*`` that hold one); each run once."""
    out: list[Path] = []
    for name in paths:
        path = Path(name)
        if (path / "case.json").is_file():
            found = [path]
        elif (path / "runs").is_dir():
            found = sorted(p for p in (path / "runs").iterdir() if (p / "case.json").is_file())
            if not found:
                raise BodyOrderError(f"{path}: a scan's output directory without runs (runs/*)")
        else:
            raise BodyOrderError(f"{path}: neither a run directory nor a scan's output directory")
        for run in found:
            if any(run.resolve() == seen.resolve() for seen in out):
                raise BodyOrderError(f"{run}: the same run given twice")
            out.append(run)
    return out


def check_options(args) -> None:
    """The numeric options and the output directory, before any frame is expanded."""
    for flag, value, least in (
        ("--every", args.every, 1),
        ("--sample-atoms", args.sample_atoms, 1),
        ("--equilibration", args.equilibration, 0),
        ("--seed", args.seed, 0),
    ):
        if value < least:
            kind = "a positive" if least else "a non-negative"
            raise BodyOrderError(f"{flag} must be {kind} integer, got {value}")
    out_dir = Path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise BodyOrderError(f"--out-dir {out_dir} is a file, not a directory")


def run_increments_command(args) -> None:
    from ..monitor.sharing import write_increments_report

    check_options(args)
    runs = run_dirs(args.runs)

    words = ["ase-bodyorder", "increments", *args.runs, "--out-dir", args.out_dir]
    words += ["--equilibration", str(args.equilibration), "--every", str(args.every)]
    words += ["--sample-atoms", str(args.sample_atoms), "--seed", str(args.seed)]
    path = write_increments_report(
        runs,
        args.out_dir,
        shlex.join(words),
        equilibration_steps=args.equilibration,
        every=args.every,
        sample_atoms=args.sample_atoms,
        seed=args.seed,
    )
    print(f"wrote {path}")
