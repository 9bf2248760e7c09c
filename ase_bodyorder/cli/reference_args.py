"""The parser of ``ase-bodyorder reference``: one function per step adds its options, and
the numeric options of every step are checked before its handler runs (the handlers
are in :mod:`.reference`)."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from ..expansion import BodyOrderError


def add_reference_parser(subparsers, handlers: dict[str, Callable]) -> None:
    """Add ``reference`` and its steps to ``subparsers``; ``handlers``: the handler of
    each step by name (each run after :func:`check_options`)."""
    parser = subparsers.add_parser(
        "reference", help="hydrogen-cluster reference data (pyscf, block2)"
    )
    steps = parser.add_subparsers(dest="step", required=True)
    for name, add in STEPS.items():
        add(steps, _checked(handlers[name]))


def _add_sample(steps, handler: Callable) -> None:
    sample = steps.add_parser("sample", help="sample hydrogen clusters to an extxyz file")
    sample.add_argument("--density", choices=["high", "low"], required=True)
    sample.add_argument("--n-atoms", type=int, default=8)
    sample.add_argument("--count", type=int, required=True)
    sample.add_argument("--seed", type=int, required=True)
    sample.add_argument("--rs-bohr", type=float, default=None, help="Wigner-Seitz radius, bohr")
    sample.add_argument("-o", "--output", required=True)
    sample.set_defaults(handler=handler)


def _add_compute(steps, handler: Callable) -> None:
    compute = steps.add_parser("compute", help="energies and forces of every cluster")
    compute.add_argument("clusters", help="extxyz from `reference sample`")
    _add_calculation_options(compute)
    compute.add_argument("--no-forces", action="store_true")
    _add_executor_options(compute)
    compute.set_defaults(handler=handler)


def _add_mbe(steps, handler: Callable) -> None:
    mbe = steps.add_parser("mbe", help="ab initio many-body expansion of clusters")
    mbe.add_argument("clusters")
    _add_calculation_options(mbe)
    mbe.add_argument("--index", default=":", help="clusters to expand (ASE index syntax)")
    mbe.add_argument("-o", "--output", required=True, help="JSON file of the per-order terms")
    _add_executor_options(mbe)
    mbe.set_defaults(handler=handler)


def _add_export(steps, handler: Callable) -> None:
    export = steps.add_parser("export", help="extxyz train/validation/test split for training")
    export.add_argument("clusters")
    _add_calculation_options(export)
    export.add_argument("--out-dir", required=True)
    export.add_argument("--split-seed", type=int, default=0)
    export.set_defaults(handler=handler)


def _add_fragments(steps, handler: Callable) -> None:
    fragments = steps.add_parser(
        "fragments",
        help="energies and forces of the sub-clusters of train clusters (resumable)",
    )
    fragments.add_argument("clusters", help="extxyz of the data set's clusters")
    _add_calculation_options(fragments)
    for action in fragments._actions:
        if action.dest == "dataset":
            action.help = "data set name (default: the split's)"
    fragments.add_argument(
        "--split", required=True, help="the data set's split JSON (its train indices)"
    )
    fragments.add_argument(
        "--count", type=int, required=True, help="the first N train clusters of the split"
    )
    fragments.add_argument(
        "--sizes", default="1..7", help="fragment sizes, e.g. 1..7 or 2,3 (default 1..7)"
    )
    fragments.add_argument(
        "-o", "--output", required=True, help="extxyz of the fragments (gzipped if .gz)"
    )
    _add_executor_options(fragments)
    fragments.set_defaults(handler=handler)


def _add_cell_fragments(steps, handler: Callable) -> None:
    cell_fragments = steps.add_parser(
        "cell-fragments",
        help="isolated sub-clusters cut from periodic cells, at the cells' level of theory "
        "(resumable)",
    )
    cell_fragments.add_argument(
        "cells", help="extxyz of periodic cells (each fragment records its parent's index)"
    )
    cell_fragments.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    cell_fragments.add_argument("--dataset", default=None, help="default: the file stem")
    cell_fragments.add_argument("--sizes", default="1..4", help="fragment sizes (default 1..4)")
    cell_fragments.add_argument(
        "--per-cell", type=int, default=20, help="fragments of size 2+ per cell (default 20)"
    )
    cell_fragments.add_argument(
        "--radius", type=float, default=2.5, help="neighbours of the centre within, Angstrom"
    )
    cell_fragments.add_argument("--seed", type=int, default=0)
    cell_fragments.add_argument("-o", "--output", required=True, help="extxyz of the fragments")
    _add_executor_options(cell_fragments)
    cell_fragments.set_defaults(handler=handler)


def _add_frames(steps, handler: Callable) -> None:
    frames = steps.add_parser(
        "frames",
        help="ab initio atom-resolved expansion of MD frames (isolated LDA sub-clusters; "
        "resumable), optionally beside a model's",
    )
    frames.add_argument("trajectory", help="extxyz of the frames (Angstrom)")
    frames.add_argument("--index", default=":", help="frames to expand (ASE index syntax)")
    frames.add_argument("--order", type=int, default=3, help="truncation order K (default 3)")
    frames.add_argument("--r-mbe", type=float, required=True, help="expansion radius, Angstrom")
    frames.add_argument("--sample-atoms", type=int, default=None, help="atoms per frame m")
    frames.add_argument("--seed", type=int, default=0, help="seed of the atom samples")
    frames.add_argument(
        "--model", default=None, help="also expand this model: NAME or LABEL=PATH (a file)"
    )
    frames.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    frames.add_argument("-o", "--output", required=True, help="JSON of E^(n)/N per frame")
    frames.add_argument(
        "--totals",
        default=None,
        help="also write the sub-cluster totals (labels and energies, eV) to this .json.gz",
    )
    _add_executor_options(frames)
    frames.set_defaults(handler=handler)


def _add_validation(steps, handler: Callable) -> None:
    validation = steps.add_parser(
        "validation",
        help="report: a model's frame expansions against the ab initio ones "
        "(JSON files of `reference frames --model`)",
    )
    validation.add_argument("cases", nargs="+", help="LABEL=FILE.json, one per case")
    validation.add_argument("--out-dir", default="reports/monitor_validation")
    validation.set_defaults(handler=handler)


def _add_finite_size(steps, handler: Callable) -> None:
    finite = steps.add_parser(
        "finite-size",
        help="k-point convergence of the periodic reference's forces and energies",
    )
    finite.add_argument("--out-dir", default="reports/reference_finite_size")
    finite.add_argument("--ke-cutoff-hartree", type=float, default=60.0)
    finite.add_argument(
        "--hcells-policy",
        type=float,
        nargs="+",
        metavar="RS",
        default=None,
        help="instead: the MD model's cells (hcells) nearest these rs (bohr) on the mesh "
        "of the hcells policy and one k-point denser (its settings; --ke-cutoff-hartree "
        "ignored)",
    )
    finite.set_defaults(handler=handler)


def _add_periodic(steps, handler: Callable) -> None:
    periodic = steps.add_parser(
        "periodic",
        help="periodic DFT (LDA, Gamma point or a k-point mesh) of sampled hydrogen cells "
        "(resumable)",
    )
    periodic.add_argument("--count", type=int, default=300, help="cells (default 300)")
    periodic.add_argument("--seed", type=int, default=3001, help="sampling seed (default 3001)")
    periodic.add_argument("--n-atoms", type=int, default=16, help="atoms per cell, 2 m^3")
    periodic.add_argument("--dataset", default="hbulk-high", help="data set name")
    periodic.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")
    periodic.add_argument(
        "--ke-cutoff-hartree", type=float, default=60.0, help="plane-wave cutoff, Hartree"
    )
    periodic.add_argument(
        "--protocol",
        choices=["dense", "crossover"],
        default="dense",
        help="cells: dense (rs 1.45-1.85 bohr, bcc and random; the default) or crossover "
        "(rs 1.4-3.0 bohr, molecular fluid to atomic phase)",
    )
    periodic.add_argument(
        "--kpoint-length",
        type=float,
        default=0.0,
        help="k-point mesh with n_i |a_i| >= this length, Angstrom (default 0: Gamma point)",
    )
    periodic.add_argument(
        "--gamma-above-rs",
        type=float,
        default=None,
        help="cells more dilute than this rs (bohr) at the Gamma point only (molecular)",
    )
    periodic.add_argument(
        "--kpoint-grid",
        choices=["gamma", "shifted"],
        default="gamma",
        help="mesh through Gamma or Monkhorst-Pack shifted off it (default gamma)",
    )
    periodic.add_argument("--out-dir", default=None, help="also export the train/val/test split")
    periodic.add_argument("--split-seed", type=int, default=7)
    _add_executor_options(periodic)
    periodic.set_defaults(handler=handler)


#: the steps of ``reference`` in the order of ``--help``: name -> the function adding it
STEPS: dict[str, Callable] = {
    "sample": _add_sample,
    "compute": _add_compute,
    "mbe": _add_mbe,
    "export": _add_export,
    "fragments": _add_fragments,
    "cell-fragments": _add_cell_fragments,
    "frames": _add_frames,
    "validation": _add_validation,
    "finite-size": _add_finite_size,
    "periodic": _add_periodic,
}


def _add_calculation_options(parser) -> None:
    parser.add_argument("--method", default="fci", help="hf, ccsd, ccsd(t), fci, dmrg")
    parser.add_argument("--basis", default="sto-6g", help="any pyscf basis name")
    parser.add_argument("--spin-policy", default="lowest", choices=["lowest", "ground"])
    parser.add_argument("--dataset", default=None, help="data set name (default: file stem)")
    parser.add_argument("--db", required=True, help="ASE database (SQLite) of the jobs")


def _add_executor_options(parser) -> None:
    parser.add_argument("--workers", type=int, default=1, help="local processes")
    parser.add_argument("--scheduler", default=None, help="dask.distributed scheduler address")
    parser.add_argument("--retry-failed", action="store_true", help="run failed jobs again")


#: what the numeric options of the ``reference`` steps must be, by destination: a
#: count, seed or size that no calculation can use is refused before anything runs
_OPTION_RULES: dict[str, tuple[str, Callable[[float], bool]]] = {
    **dict.fromkeys(
        ("count", "n_atoms", "workers", "order", "sample_atoms"),
        ("a positive integer", lambda v: v >= 1),
    ),
    **dict.fromkeys(
        ("seed", "split_seed", "per_cell"), ("a non-negative integer", lambda v: v >= 0)
    ),
    **dict.fromkeys(
        ("rs_bohr", "ke_cutoff_hartree", "radius", "r_mbe", "gamma_above_rs", "hcells_policy"),
        ("a positive number", lambda v: math.isfinite(v) and v > 0),
    ),
    "kpoint_length": ("a non-negative number", lambda v: math.isfinite(v) and v >= 0),
}


def check_options(args) -> None:
    """One line naming the first numeric option of ``args`` outside its range
    (:data:`_OPTION_RULES`); unset options (None) pass."""
    for dest, (what, valid) in _OPTION_RULES.items():
        value = getattr(args, dest, None)
        for item in value if isinstance(value, list) else [value]:
            if item is not None and not valid(item):
                flag = "--" + dest.replace("_", "-")
                raise BodyOrderError(f"{flag} must be {what}, got {item:g}")


def _checked(handler: Callable) -> Callable:
    """``handler`` run after :func:`check_options`."""

    @functools.wraps(handler)
    def run(args) -> None:
        check_options(args)
        handler(args)

    return run
