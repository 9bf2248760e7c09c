"""``ase-bodyorder study``: training studies (:mod:`ase_bodyorder.study`):
``learning-curves``, ``makeup``, ``ship``, ``report``, and ``universal`` (universal MLIPs'
body orders against PBE: ``reference``, ``models``, ``report``)."""

from __future__ import annotations

from pathlib import Path

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    from ..study import ARCHITECTURES, DENSITIES

    parser = subparsers.add_parser(
        "study", help="training studies: learning curves and their report"
    )
    steps = parser.add_subparsers(dest="step", required=True)
    curves = steps.add_parser(
        "learning-curves",
        help="train every architecture/density/size/seed (resumable, cached by content)",
    )
    _add_models(curves)
    curves.add_argument(
        "--sizes",
        nargs="+",
        default=["50", "100", "200", "400", "800"],
        help="training-set sizes, clusters (default: %(default)s)",
    )
    curves.add_argument(
        "--seeds", nargs="+", default=["0", "1", "2"], help="seeds (all at the largest size)"
    )
    curves.add_argument(
        "--settings",
        default=None,
        help="JSON file of setting overrides applied to every architecture's recipe",
    )
    curves.add_argument(
        "--cache", default="study-cache", help="trained models (default %(default)s)"
    )
    curves.add_argument("--timeout", type=float, default=None, help="per training, s")
    curves.set_defaults(handler=run_learning_curves)
    makeup = steps.add_parser(
        "makeup",
        help="train H8 + fragment models at fragment fractions (resumable, cached by "
        "content) and evaluate their body orders against FCI",
    )
    _add_models(makeup)
    makeup.add_argument(
        "--fractions",
        nargs="+",
        default=["0", "0.05", "0.2", "0.5"],
        help="fractions of fragments among the training structures (default %(default)s)",
    )
    makeup.add_argument(
        "--cache", default="study-cache", help="trained models (default %(default)s)"
    )
    makeup.add_argument("--timeout", type=float, default=None, help="per training, s")
    makeup.set_defaults(handler=run_makeup)
    ship = steps.add_parser(
        "ship",
        help="ship the models of size --size (default 800) and seed --seed (default 0) of a study, "
        "trained with the recipe's settings, as <arch>-h8-<density>",
    )
    ship.add_argument(
        "--architectures", nargs="+", required=True, help=f"any of {', '.join(ARCHITECTURES)}"
    )
    ship.add_argument(
        "--densities",
        nargs="+",
        default=list(DENSITIES),
        help="H8 data sets by density (default: %(default)s)",
    )
    ship.add_argument("--size", type=int, default=800, help="training-set size, clusters")
    ship.add_argument("--seed", type=int, default=0, help="training seed")
    ship.add_argument(
        "--fraction",
        type=float,
        default=0.0,
        help="fragment fraction of the makeup model to ship (default 0: the plain model), "
        "shipped as <arch>-h8-<density>-f<percent>",
    )
    ship.add_argument(
        "--settings",
        default=None,
        help="JSON file of the setting overrides the models were trained with (as given to "
        "`study learning-curves --settings`; default: the study's recipe)",
    )
    ship.add_argument("--cache", default="study-cache", help="trained models (default %(default)s)")
    ship.set_defaults(handler=run_ship)
    report = steps.add_parser(
        "report", help="learning and training curves of a study cache: markdown, PNG, JSON"
    )
    report.add_argument(
        "--cache", default="study-cache", help="trained models (default %(default)s)"
    )
    report.add_argument(
        "--out", default="reports/study", help="output directory (default %(default)s)"
    )
    report.set_defaults(handler=run_report)
    _add_universal(steps)


def _check_timeout(value: float | None) -> float | None:
    """``--timeout``: none, or a finite number of seconds above zero."""
    import math

    if value is not None and not (math.isfinite(value) and value > 0):
        raise BodyOrderError(f"--timeout must be a positive number of seconds, got {value}")
    return value


def _add_models(parser) -> None:
    """``--architectures`` and ``--densities``, every one by default."""
    from ..study import ARCHITECTURES, DENSITIES

    parser.add_argument(
        "--architectures",
        nargs="+",
        default=list(ARCHITECTURES),
        help="architectures to train (default: %(default)s)",
    )
    parser.add_argument(
        "--densities",
        nargs="+",
        default=list(DENSITIES),
        help="H8 data sets by density (default: %(default)s)",
    )


def _overrides(path: str | None) -> dict:
    """``--settings``: the setting overrides in a JSON file, none without it."""
    from ..io import read_json_object

    return {} if path is None else read_json_object(path, "settings")


def run_learning_curves(args) -> None:
    from ..study import learning_curve_specs, run_study

    overrides = _overrides(args.settings)
    specs = learning_curve_specs(
        args.architectures, args.densities, args.sizes, args.seeds, overrides
    )
    entries = run_study(specs, args.cache, timeout=_check_timeout(args.timeout))
    failed = [e for e in entries if e.status == "failed"]
    busy = [e for e in entries if e.status == "busy"]
    print(
        f"{len(entries) - len(failed) - len(busy)} of {len(entries)} model(s) trained; "
        f"{len(busy)} busy in another process, {len(failed)} failed"
    )
    for entry in failed:
        print(f"failed: {entry.spec.key}: {entry.error}")
    if failed:
        raise BodyOrderError(f"{len(failed)} training(s) failed")


def run_makeup(args) -> None:
    from ..study import run_study
    from ..study.fragments import check_fraction
    from ..study.makeup import evaluate_entry, makeup_specs

    fractions = [check_fraction(f) for f in args.fractions]
    specs = makeup_specs(args.architectures, args.densities, fractions)
    entries = run_study(specs, args.cache, timeout=_check_timeout(args.timeout))
    failed = [e for e in entries if e.status == "failed"]
    for entry in entries:
        if entry.result is None:
            continue
        evaluation = evaluate_entry(entry.directory, entry.result)
        rmse = evaluation["mbe"]["rmse_eV"]
        print(
            f"{entry.spec.key}: E^(1) - atom {evaluation['atom']['error_meV']:+.1f} meV; "
            f"RMSE E^(2) {rmse[1]:.3f}, E^(3) {rmse[2]:.3f}, E^(4) {rmse[3]:.3f} eV/cluster; "
            f"test {evaluation['test']['energy_meV_per_atom']:.2f} meV/atom"
        )
    for entry in failed:
        print(f"failed: {entry.spec.key}: {entry.error}")
    if failed:
        raise BodyOrderError(f"{len(failed)} training(s) failed")


def run_ship(args) -> None:
    from ..study import TrainingSpec
    from ..study.runner import RESULT
    from ..study.ship import ship_entry

    overrides = _overrides(args.settings)
    plan = []
    for architecture in dict.fromkeys(args.architectures):
        for density in dict.fromkeys(args.densities):
            spec = TrainingSpec(
                architecture,
                density,
                args.size,
                args.seed,
                overrides,
                fragment_fraction=args.fraction,
            )
            name = f"{architecture}-h8-{density}"
            if spec.fragment_fraction > 0:
                name += f"-f{round(100 * spec.fragment_fraction)}"
            plan.append((spec, name))
    # every model must be there before any is shipped: no half-shipped set
    missing = [s.key for s, _ in plan if not (Path(args.cache) / s.key / RESULT).is_file()]
    if missing:
        raise BodyOrderError(
            f"not trained in {args.cache} (nothing shipped): {', '.join(missing)}; "
            "train them with `ase-bodyorder study learning-curves` or `study makeup`"
        )
    for spec, name in plan:
        path = ship_entry(args.cache, spec.key, name)
        print(f"shipped {spec.key} as {path}")


def run_report(args) -> None:
    from ..study.report import write_study_report
    from ..study.ship import restore_shipped

    command = f"ase-bodyorder study report --cache {args.cache} --out {args.out}"
    if not Path(args.cache).is_dir():
        raise BodyOrderError(
            f"study cache {args.cache} does not exist (on a new machine: mkdir {args.cache}, "
            f"and the report restores the shipped models into it and keeps the entries "
            f"archived in {Path(args.out) / 'entries'})"
        )
    for key in restore_shipped(args.cache):
        print(f"restored {key} from its shipped model")
    written = write_study_report(args.cache, args.out, command=command)
    archived = [p for p in written if p.parent.name == "entries"]
    for path in written:
        if path.parent.name != "entries":
            print(f"wrote {path}")
    print(f"archived {len(archived)} entries in {Path(args.out) / 'entries'}")


def _add_universal(steps) -> None:
    """``study universal {reference,models,report}`` (:mod:`ase_bodyorder.study.universal`)."""
    universal = steps.add_parser(
        "universal",
        help="universal MLIPs' body orders against a PBE many-body expansion (issue 32)",
    )
    stages = universal.add_subparsers(dest="stage", required=True)
    reference = stages.add_parser(
        "reference",
        help="compute the PBE sub-cluster energies (resumable, content-keyed store; the "
        "exported records of finished jobs are taken in first) and export what is complete",
    )
    reference.add_argument(
        "--db",
        default="reference-work/universal/pbe.db",
        help="ASE database of the jobs (default %(default)s)",
    )
    reference.add_argument("--workers", type=int, default=1, help="local processes")
    reference.add_argument(
        "--sets", nargs="+", default=None, help="data sets (default: all, in the run order)"
    )
    reference.add_argument(
        "--export-only", action="store_true", help="export what is done, compute nothing"
    )
    reference.add_argument(
        "--out", default=None, help="export directory (default: the package's data)"
    )
    reference.set_defaults(handler=run_universal_reference)
    models = stages.add_parser(
        "models", help="expand models on the study's clusters and dimers (one JSON each)"
    )
    models.add_argument(
        "--models", nargs="+", required=True, help="model specs (7net-0, chgnet, pet-h8-high...)"
    )
    models.add_argument(
        "--kind",
        choices=["universal", "h8"],
        default="universal",
        help="what the models are (the claims compare universal ones)",
    )
    models.add_argument(
        "--out", default="reports/universal/models", help="directory (default %(default)s)"
    )
    models.add_argument("--force", action="store_true", help="evaluate models already done")
    models.add_argument("--sets", nargs="+", default=None, help="data sets (default: all)")
    models.set_defaults(handler=run_universal_models)
    report = stages.add_parser("report", help="tables, figures and claims: markdown, PNG, JSON")
    report.add_argument(
        "--out", default="reports/universal", help="output directory (default %(default)s)"
    )
    report.add_argument(
        "--data",
        default=None,
        help="exported PBE reference (default: the package's data/reference/universal)",
    )
    report.add_argument("--models-dir", default=None, help="model results (default: OUT/models)")
    report.set_defaults(handler=run_universal_report)


def _out_folder(path: str | Path | None) -> None:
    """``--out`` must be a folder or not exist yet (it is made): a file is one line."""
    if path is not None and Path(path).exists() and not Path(path).is_dir():
        raise BodyOrderError(f"--out {path} is a file, not a folder")


def run_universal_reference(args) -> None:
    from ..reference.store import ReferenceStore
    from ..reference.universal import dataset_names
    from ..study.universal import (
        DATA_DIR,
        RECORDS_FILE,
        export_reference,
        run_reference,
        seed_store,
    )
    from .reference_args import check_options

    check_options(args)  # --workers, as for `ase-bodyorder reference`
    names = dataset_names(args.sets)  # before a store is made or seeded
    _out_folder(args.out)
    store = ReferenceStore(args.db)
    out = DATA_DIR if args.out is None else Path(args.out)
    seeded = seed_store(store, out)
    if seeded:
        print(f"{seeded} finished jobs taken into {args.db} from {out / RECORDS_FILE}")
    if not args.export_only:
        summary = run_reference(store, names=names, workers=args.workers)
        print(
            f"{summary.done} done, {summary.failed} failed, {summary.skipped} already in "
            f"{args.db}, {summary.wall_time_s:.1f} s"
        )
    command = f"ase-bodyorder study universal reference --export-only --db {args.db}"
    for name, state in export_reference(store, out, command=command).items():
        print(f"{name}: {state}")


def run_universal_models(args) -> None:
    from ..models.registry import load_model_spec
    from ..reference.universal import dataset_names
    from ..study.universal import evaluate_model, write_json

    names = dataset_names(args.sets)  # before any model is loaded
    _out_folder(args.out)
    out = Path(args.out)
    for spec in args.models:
        label = spec.partition("=")[0] if "=" in spec else spec
        path = out / f"{label}.json"
        if path.is_file() and not args.force:
            print(f"{label}: done ({path})")
            continue
        label, model = load_model_spec(spec)
        result = {
            **evaluate_model(label, model, names=names),
            "kind": args.kind,
            "spec": spec,
        }
        write_json(path, result)
        print(f"{label}: wrote {path} ({result['wall_time_s']:.0f} s)")


def run_universal_report(args) -> None:
    from ..study.universal import DATA_DIR
    from ..study.universal_report import write_report

    _out_folder(args.out)
    data = DATA_DIR if args.data is None else Path(args.data)
    command = f"ase-bodyorder study universal report --out {args.out}" + (
        "" if args.data is None else f" --data {args.data}"
    )
    readme = write_report(args.out, data_dir=data, models_dir=args.models_dir, command=command)
    print(f"wrote {readme}")
