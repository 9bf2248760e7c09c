"""``ase-bodyorder``: thin parsers over importable functions."""

from __future__ import annotations

import argparse
import json
import sys
from importlib import resources

__all__ = ["EXAMPLE_CLUSTER", "main"]

EXAMPLE_CLUSTER = "h8_high_density.xyz"


def example_path(name: str = EXAMPLE_CLUSTER):
    """Path of a shipped example structure."""
    return resources.files("ase_bodyorder") / "data" / "examples" / name


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_decompose(
    path,
    *,
    model: str,
    order: int | None,
    r_mbe: float | None,
    output=None,
    as_json: bool = False,
    index: str = ":",
    forces: bool = False,
    stream=None,
) -> list:
    """Decompose every structure in ``path``; print tables (or JSON lines); return results."""
    import ase.io

    from .calculator import store_body_order_results
    from .decompose import decompose
    from .models import load_model

    stream = sys.stdout if stream is None else stream
    the_model = load_model(model)
    frames = ase.io.read(str(path), index=index)
    results = []
    for k, atoms in enumerate(frames):
        max_order = len(atoms) if order is None and not atoms.pbc.any() else order
        if max_order is None:
            max_order = 3
        body = decompose(atoms, the_model, max_order=max_order, r_mbe=r_mbe, forces=forces)
        results.append(body)
        if as_json:
            print(json.dumps({"structure": k, **body.to_dict()}), file=stream)
        else:
            title = f"structure {k}: {atoms.get_chemical_formula()}, model {model}"
            print(body.table(title) + "\n", file=stream)
        if output is not None:
            store_body_order_results(atoms, body)
    if output is not None:
        ase.io.write(str(output), frames, format="extxyz")
    return results


def _build_parser() -> argparse.ArgumentParser:
    from .models import DEFAULT_MODEL

    parser = argparse.ArgumentParser(
        prog="ase-bodyorder",
        description="Many-body (body-order) decomposition of interatomic potentials.",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (default 1; see README)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    dec = sub.add_parser("decompose", help="body-order table of every structure in a file")
    dec.add_argument("file", help="any structure file ASE reads (extxyz, xyz, traj, ...)")
    dec.add_argument("--model", default=DEFAULT_MODEL, help=f"model name (default {DEFAULT_MODEL})")
    dec.add_argument(
        "--order", type=int, default=None, help="truncation order K (default: N for clusters)"
    )
    dec.add_argument("--r-mbe", type=float, default=None, help="expansion radius, Angstrom")
    dec.add_argument("--index", default=":", help="frames to read (ASE index syntax)")
    dec.add_argument("--forces", action="store_true", help="also compute forces per order")
    dec.add_argument("--output", help="write extxyz with the results in info/arrays")
    dec.add_argument("--json", action="store_true", help="print one JSON line per structure")

    demo = sub.add_parser("demo", help="the main job: decompose the shipped example cluster")
    demo.add_argument("--model", default=DEFAULT_MODEL)

    sub.add_parser("models", help="list the models that can be loaded by name")
    return parser


def main(argv=None) -> int:
    from .expansion import BodyOrderError

    args = _build_parser().parse_args(argv)
    _set_threads(args.threads)
    try:
        if args.command == "decompose":
            run_decompose(
                args.file,
                model=args.model,
                order=args.order,
                r_mbe=args.r_mbe,
                output=args.output,
                as_json=args.json,
                index=args.index,
                forces=args.forces,
            )
        elif args.command == "demo":
            path = example_path()
            print(f"Full many-body expansion of {path.name} with model {args.model!r}\n")
            run_decompose(path, model=args.model, order=None, r_mbe=None)
        elif args.command == "models":
            from .models import available_models

            for name, description in available_models().items():
                print(f"{name:16s} {description}")
    except (BodyOrderError, FileNotFoundError) as error:
        print(f"ase-bodyorder: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
