"""``ase-bodyorder demo``: the main job, end to end (:func:`ase_bodyorder.demo.run_demo`)."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    from ..models import DEFAULT_MD_MODEL, DEFAULT_MODEL

    parser = subparsers.add_parser(
        "demo",
        help="the main job: body orders of the shipped H8 cluster, then a short monitored "
        "i-PI run of high-density hydrogen, ending with the report",
    )
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--md-model",
        default=DEFAULT_MD_MODEL,
        help=f"model of the MD part (default {DEFAULT_MD_MODEL}: trained on periodic cells "
        "and isolated fragments at one level of theory; the H8 models are trained on "
        "isolated clusters and do not describe bulk hydrogen)",
    )
    parser.add_argument("--steps", type=int, default=20, help="MD steps (default 20)")
    parser.add_argument("--stride", type=int, default=5, help="expand every S steps")
    parser.add_argument("--output-dir", default=None, help="run directory (default md_runs/...)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="MD time limit, s")
    parser.set_defaults(handler=run)


def run(args) -> None:
    from ..demo import run_demo

    run_demo(
        args.model,
        md_model=args.md_model,
        steps=args.steps,
        stride=args.stride,
        output_dir=args.output_dir,
        timeout_s=args.timeout,
    )
