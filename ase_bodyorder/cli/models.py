"""``ase-bodyorder models``: the models that can be loaded by name."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("models", help="list the models that can be loaded by name")
    parser.set_defaults(handler=run)


def run(args) -> None:
    from ..models import available_models

    models = available_models()
    width = max(map(len, models), default=0)
    for name, description in models.items():
        print(f"{name:{width}s}  {description}")
