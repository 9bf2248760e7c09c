"""Mixed precision: ``decompose`` with sub-clusters in float32 against float64.

Per model and structure set, measured in one run (best of ``--repeat`` after a warm-up
call, which also loads the float32 copy of the model): the time of ``decompose`` in
float64 and in float32 (``precision="float32"``, which includes evaluating 16 sub-clusters
per size again in float64 to bound the round-off), their ratio, the largest
``|E^(n)_32 - E^(n)_64|`` over orders and structures, and the largest reported
round-off estimate (which must be larger). Energies only unless ``--forces``.

    python benchmarks/bench_precision.py [--models pet-h8-high soap-bpnn-h8-high mace-h8-high]
        [--clusters 2] [--cell 2 2 2] [--repeat 3] [--threads 1] [--forces]

Structures: full MBEs (K = 8, 255 sub-clusters) of 8-atom high-density hydrogen clusters,
and the K = 3, r_mbe = 2 Angstrom expansion of a bcc hydrogen cell (2 atoms per cubic
cell, a = 1.65 Angstrom, repeated ``--cell``: 2 2 2 gives 16 atoms).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from ase.build import bulk

from ase_bodyorder import decompose
from ase_bodyorder.models import load_model
from ase_bodyorder.reference import HighDensity, sample_clusters


def timed(structures, model, repeat, **options):
    """(best seconds over ``repeat`` runs of all structures, the last results)."""
    best, results = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        results = [decompose(atoms, model, **options, **own) for atoms, own in structures]
        best = min(best, time.perf_counter() - start)
    return best, results


def compare(model, structures, repeat, forces):
    options = {"forces": forces, "max_roundoff_eV": np.inf}
    single = {**options, "precision": "float32"}
    timed(structures[:1], model, 1, **options)  # warm-up
    timed(structures[:1], model, 1, **single)  # warm-up, loads the float32 copy
    t64, exact = timed(structures, model, repeat, **options)
    t32, mixed = timed(structures, model, repeat, **single)
    pairs = list(zip(exact, mixed, strict=True))
    difference = max(float(np.max(np.abs(a.energies_eV - b.energies_eV))) for a, b in pairs)
    bound = max(float(b.roundoff_eV.max()) for b in mixed)
    covered = all(np.all(np.abs(a.energies_eV - b.energies_eV) <= b.roundoff_eV) for a, b in pairs)
    return t64, t32, difference, bound, covered


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["pet-h8-high", "soap-bpnn-h8-high", "mace-h8-high"]
    )
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--cell", type=int, nargs=3, default=[2, 2, 2])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--forces", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")  # third-party deprecation noise at model loading

    clusters = sample_clusters(HighDensity(n_atoms=8), args.clusters, seed=99)
    cell = bulk("H", "bcc", a=1.65, cubic=True).repeat(tuple(args.cell))
    cell.rattle(0.05, seed=1)
    sets = {
        f"{args.clusters} x H8, K=8": [(a, {"max_order": 8}) for a in clusters],
        f"H{len(cell)} cell, K=3, r=2": [(cell, {"max_order": 3, "r_mbe": 2.0})],
    }
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), best of "
        f"{args.repeat}, {'energies and forces' if args.forces else 'energies'}"
    )
    header = (
        f"{'model':<20} {'structures':<20} {'f64/s':>8} {'f32/s':>8} {'f64/f32':>8} "
        f"{'max|dE^(n)|/eV':>15} {'max bound/eV':>13} {'bound/diff':>10} {'holds':>6}"
    )
    print(header)
    print("-" * len(header))
    for name in args.models:
        model = load_model(name)
        for label, structures in sets.items():
            t64, t32, diff, bound, covered = compare(model, structures, args.repeat, args.forces)
            print(
                f"{name:<20} {label:<20} {t64:8.3f} {t32:8.3f} {t64 / t32:8.2f} "
                f"{diff:15.2e} {bound:13.2e} {bound / diff:10.0f} {'yes' if covered else 'NO':>6}"
            )


if __name__ == "__main__":
    main()
