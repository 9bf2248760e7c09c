"""Full many-body expansion of random hydrogen clusters with the pair + ATM model.

Packed evaluation (all sub-clusters in one model call) against one model call per
sub-cluster, measured in one run, energies only and energies + forces per order.

    python benchmarks/bench_expansion.py [--sizes 8 10 12] [--repeats 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from ase_bodyorder.decompose import forces_per_order, plan_for
from ase_bodyorder.expansion import atomic_orders
from ase_bodyorder.models import FragmentBatch, hydrogen_demo_model
from ase_bodyorder.reference import HighDensity, sample_clusters


def packed(plan, atoms, model, forces):
    positions = torch.tensor(atoms.positions, requires_grad=forces)
    batch = FragmentBatch(plan.flat_positions(positions), atoms.numbers[plan.atoms], plan.offsets)
    energies = model.fragment_energies(batch)
    if forces:
        forces_per_order(plan, energies, positions)
    return atomic_orders(plan, energies.detach().numpy()).energies_eV


def one_by_one(plan, atoms, model, forces):
    positions = torch.tensor(atoms.positions, requires_grad=forces)
    flat = plan.flat_positions(positions)
    numbers = atoms.numbers[plan.atoms]
    parts = []
    for a, b in zip(plan.offsets[:-1], plan.offsets[1:], strict=True):
        one = FragmentBatch(flat[a:b], numbers[a:b], np.array([0, b - a]))
        parts.append(model.fragment_energies(one))
    energies = torch.cat(parts)
    if forces:
        forces_per_order(plan, energies, positions)
    return atomic_orders(plan, energies.detach().numpy()).energies_eV


def best_time(repeats, function, *args, **kwargs):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[8, 10, 12])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = hydrogen_demo_model()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"packed: best of {args.repeats} runs; one-by-one: one run")
    header = (
        f"{'N':>3} {'forces':>6} {'subclusters':>11} {'plan/s':>8} {'packed/s':>9} "
        f"{'one-by-one/s':>12} {'packed sc/s':>11} {'1-by-1 sc/s':>11} {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for n in args.sizes:
        (atoms,) = sample_clusters(HighDensity(n_atoms=n), 1, seed=n)
        t_plan, plan = best_time(1, plan_for, atoms, model, max_order=n)
        for forces in (False, True):
            t_packed, e1 = best_time(args.repeats, packed, plan, atoms, model, forces)
            t_loop, e2 = best_time(1, one_by_one, plan, atoms, model, forces)
            assert np.allclose(e1, e2, atol=1e-9), "packed and one-by-one disagree"
            m = plan.n_subclusters
            print(
                f"{n:3d} {str(forces):>6} {m:11d} {t_plan:8.3f} {t_packed:9.4f} {t_loop:12.3f} "
                f"{m / t_packed:11.0f} {m / t_loop:11.0f} {t_loop / t_packed:6.1f}"
            )


if __name__ == "__main__":
    main()
