"""``ase-bodyorder train``: a model trained with a recipe of :mod:`ase_bodyorder.training`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ..expansion import BodyOrderError


def add_parser(subparsers) -> None:
    from ..training import TRAIN_ARCHITECTURES

    parser = subparsers.add_parser(
        "train",
        help="train a model (PET, SOAP-BPNN or MACE) on extxyz files with the recipes of "
        "ase_bodyorder.training; writes the model and provenance.json",
    )
    parser.add_argument(
        "--architecture",
        required=True,
        choices=list(TRAIN_ARCHITECTURES),
        help="pet, soap-bpnn (metatrain) or mace (mace-torch)",
    )
    parser.add_argument(
        "--data", required=True, help="training set: extxyz with energy (eV) and forces"
    )
    parser.add_argument(
        "--validation", default=None, help="validation set (default: part of --data)"
    )
    parser.add_argument("--test", default=None, help="test set (default: none)")
    parser.add_argument(
        "--settings",
        default=None,
        help="JSON file of MetatrainSettings (pet, soap-bpnn) or MACESettings (mace) fields; "
        "unknown keys are an error",
    )
    parser.add_argument(
        "--epochs", type=int, default=None, help="number of epochs (overrides --settings)"
    )
    parser.add_argument(
        "--output", default=None, help="output directory (default training-work/ARCHITECTURE)"
    )
    parser.add_argument("--timeout", type=float, default=None, help="training time limit, s")
    parser.set_defaults(handler=run)


def run(args) -> None:
    run_train(
        args.architecture,
        args.data,
        validation=args.validation,
        test=args.test,
        settings=args.settings,
        epochs=args.epochs,
        output=args.output,
        timeout_s=args.timeout,
    )


def run_train(
    architecture: str,
    data,
    *,
    validation=None,
    test=None,
    settings=None,
    epochs: int | None = None,
    output=None,
    timeout_s: float | None = None,
    stream=None,
) -> Path:
    """Train ``architecture`` (pet, soap-bpnn, mace) with the ase_bodyorder.training recipe;
    print the model, its provenance and the test metrics; return the model path."""
    from ..training import recipe, train_settings

    stream = sys.stdout if stream is None else stream
    the_settings = train_settings(architecture, settings, epochs)
    for role, source in (("training", data), ("validation", validation), ("test", test)):
        if source is not None and not Path(source).is_file():
            raise BodyOrderError(f"{role} data file {source} does not exist")
    output = Path(output) if output is not None else Path("training-work") / architecture
    train = recipe(architecture)
    print(f"training {architecture} in {output} (log and options there)", file=stream, flush=True)
    model = train(
        data, validation, test, the_settings, output, timeout=timeout_s, progress=sys.stderr
    )
    provenance_path = model.parent / "provenance.json"
    provenance = json.loads(provenance_path.read_text())
    print(f"model: {model}", file=stream)
    print(f"provenance: {provenance_path}", file=stream)
    metrics = provenance.get("metrics", {})
    found = metrics.get("test", metrics.get("TEST"))
    if test is None:
        print("test metrics: none (no --test set)", file=stream)
    elif not found:
        print("test metrics: not found in the training log", file=stream)
    else:
        print("test metrics:", file=stream)
        for line in _metric_lines(found):
            print(f"  {line}", file=stream)
    return model


def _metric_lines(metrics) -> list[str]:
    """Test-set metrics of a provenance record (metatrain or MACE format), one per line."""
    if isinstance(metrics, dict):  # metatrain: {metric: {"value", "unit"}}
        return [f"{key}: {item['value']:g} {item['unit']}" for key, item in metrics.items()]
    lines = []  # MACE: error-table rows
    for row in metrics:
        cells = [f"{key} = {value:g}" for key, value in row.items() if not isinstance(value, str)]
        label = row.get("config_type", "")
        lines.append(f"{label}: {', '.join(cells)}" if label else ", ".join(cells))
    return lines
