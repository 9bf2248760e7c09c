"""``ase-bodyorder watch``: follow a run and flag frames outside the ranges of a quantity
(:func:`ase_bodyorder.monitor.watch`)."""

from __future__ import annotations

import math
import sys

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="follow an i-PI run (or a BodyOrderLogger file) and flag frames outside the "
        "ranges of the watched quantity",
    )
    parser.add_argument("run_dir", help="run directory of `md`, or a BodyOrderLogger .jsonl file")
    parser.add_argument(
        "--ranges",
        help='JSON file {"2": [min, max], "3": [min, max], ...} of the --quantity (shares, '
        "or eV/atom; default: the ranges on the run model's training structures, at most "
        "200 evenly spaced, at the run's order and r_mbe, written to "
        "RUN_DIR/training_ranges_<quantity>.json)",
    )
    parser.add_argument(
        "--quantity",
        choices=["shares", "per-atom"],
        default="shares",
        help="compare shares E^(n)/(E-E^(1)) (default) or energies per atom E^(n)/N (eV)",
    )
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after (s)")
    parser.add_argument(
        "--idle",
        type=float,
        default=60.0,
        help="stop when no new frame came for this long (s; a run of `md` that is no "
        "longer running stops the watch at once)",
    )
    parser.set_defaults(handler=run)


def run(args) -> None:
    """Check the frames of a run (or a logger file) against ranges; say how many were
    checked and flagged. A missing or empty run is an error."""
    from ..monitor import watch
    from ..monitor.ranges import read_ranges, training_ranges
    from ..monitor.report import check_source, status_line

    for flag, seconds in (("--interval", args.interval), ("--timeout", args.timeout)):
        if not 0 < seconds < math.inf:
            raise BodyOrderError(f"{flag} must be a positive number of seconds, got {seconds}")
    if not 0 <= args.idle < math.inf:
        raise BodyOrderError(f"--idle must be a number of seconds >= 0, got {args.idle}")
    source = check_source(args.run_dir)
    quantity = "shares" if args.quantity == "shares" else "energies_per_atom"
    if args.ranges:
        ranges = read_ranges(args.ranges)
    else:
        ranges = training_ranges(source, quantity, stream=sys.stdout)
    result = watch(
        source,
        ranges,
        interval_s=args.interval,
        timeout_s=args.timeout,
        idle_s=args.idle,
        quantity=quantity,
    )
    print(result.summary())
    if result.run is not None:
        print(status_line(result.run))
