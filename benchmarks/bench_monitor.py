"""Cost of monitoring dense hydrogen: body-order frames in plain MD steps, sampled and exact.

Four tables, each measured in one run (ratios, so a busy machine shifts both sides):

1. a monitored K=3 frame of the 64-atom high-density cell (rs = 1.6 bohr, the NVT case)
   in plain MD steps (one energy + forces call of the model): exact at r_mbe = 2 and
   3 Angstrom, atom-sampled (m atoms) at 3 Angstrom, with the standard error of E^(n)/N;
2. time per atom and planning share at K=3, r_mbe = 2 Angstrom for N = 64, 512, 4096
   (the 64-atom cell repeated 1, 2, 4 times along each axis): the monitor's cost, given
   the frame's whole-cell result as an MD step gives it, beside the model's own
   whole-cell energy call;
3. trajectory averages of E^(n)/N over F frames of Langevin MD: atom-sampled against
   exact, the difference in units of the sampled average's standard error;
4. a trajectory on a dask LocalCluster (2 workers, 1 thread each) against one process.

    python benchmarks/bench_monitor.py [--model soap-bpnn-hbulk-high] [--sample 8]
        [--sizes 64 512 4096] [--frames 200] [--r-traj 2.0] [--dask-frames 16]
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

from ase_bodyorder.decompose import decompose, decompose_frames, plan_for
from ase_bodyorder.models import load_model

ROOT = Path(__file__).resolve().parent.parent


def cell():
    """The NVT case's initial structure (``md_inputs/nvt``: 64 atoms, rs = 1.6 bohr)."""
    return ase.io.read(ROOT / "md_inputs" / "nvt" / "init.extxyz")


def best(repeats: int, function, *args, **kwargs):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = function(*args, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times), result


def plain_step(model, atoms):
    return model.system(atoms, forces=True)


def table_frame_cost(model, sample: int, repeats: int) -> None:
    atoms = cell()
    t_plain, _ = best(repeats * 3, plain_step, model, atoms)
    print(f"\n1. monitored K=3 frame, 64 atoms, in plain MD steps ({t_plain * 1e3:.1f} ms each)")
    header = (
        f"{'expansion':<30} {'subclusters':>11} {'time/s':>8} {'plain steps':>11}  "
        "stderr E^(n)/N / meV"
    )
    print(header)
    print("-" * len(header))
    cases = [
        ("exact, r_mbe = 2 A", {"r_mbe": 2.0}),
        ("exact, r_mbe = 3 A", {"r_mbe": 3.0}),
        (f"sampled m={sample}, r_mbe = 3 A", {"r_mbe": 3.0, "sample_atoms": sample, "seed": 1}),
        (f"sampled m={sample}, r_mbe = 2 A", {"r_mbe": 2.0, "sample_atoms": sample, "seed": 1}),
    ]
    for name, options in cases:
        reps = 1 if options["r_mbe"] == 3.0 and "sample_atoms" not in options else repeats
        t, result = best(reps, decompose, atoms, model, max_order=3, **options)
        stderr = result.energies_per_atom_stderr_eV
        text = ", ".join(f"{1e3 * s:.1f}" for s in stderr) if stderr.any() else "exact"
        print(f"{name:<30} {result.n_subclusters:11d} {t:8.3f} {t / t_plain:11.1f}  {text}")


def table_scaling(model, sizes: list[int], repeats: int) -> None:
    """Time per atom of the monitor: planning and expansion of a frame whose whole-cell
    result the MD step has already computed (as the calculator and the i-PI driver pass
    it), beside the model's own whole-cell energy call, which ``decompose`` makes when it
    is not given one.

    The sizes are timed in interleaved rounds (64, 512, 4096, 64, 512, ...), each keeping
    its best time, so that a change of the host's speed during the run (seen here: the
    same 64-atom row 15 and 26 ms/atom on two days) touches every size alike; the spread
    of the per-round ratio to N=64 is printed beside the ratio of the best times.
    """
    print(
        "\n2. K=3, r_mbe = 2 A: time per atom and planning share of the monitor "
        "(the frame's whole-cell result given, as in MD), and the model's own whole-cell call"
    )
    cells = {}
    for n in sizes:
        repeat = round((n / 64) ** (1 / 3))
        if repeat**3 * 64 != n:
            raise SystemExit(f"size {n} is not 64 times a cube")
        cells[n] = cell().repeat(repeat)
    times: dict[int, dict[str, list[float]]] = {
        n: {"call": [], "plan": [], "total": []} for n in sizes
    }
    systems, results = {}, {}
    for n, atoms in cells.items():  # warm-up: the first call of a size pays for it
        systems[n] = model.system(atoms, forces=False)
        results[n] = decompose(atoms, model, max_order=3, r_mbe=2.0, system=systems[n])
    for _ in range(max(repeats, 1)):
        for n, atoms in cells.items():
            t, systems[n] = best(1, model.system, atoms, forces=False)
            times[n]["call"].append(t)
            t, _ = best(1, plan_for, atoms, model, max_order=3, r_mbe=2.0)
            times[n]["plan"].append(t)
            t, results[n] = best(
                1, decompose, atoms, model, max_order=3, r_mbe=2.0, system=systems[n]
            )
            times[n]["total"].append(t)
    header = (
        f"{'N':>5} {'subclusters':>11} {'plan/s':>8} {'monitor/s':>9} {'ms/atom':>8} "
        f"{'plan share':>10} {'per atom / N=64':>15} {'round range':>11} "
        f"{'cell call ms/atom':>17} {'/ N=64':>6}"
    )
    print(f"{len(times[sizes[0]]['total'])} interleaved rounds, best of each size")
    print(header)
    print("-" * len(header))
    first = sizes[0]
    base = min(times[first]["total"]) / first
    base_call = min(times[first]["call"]) / first
    for n in sizes:
        t_call, t_plan, t_total = (min(times[n][k]) for k in ("call", "plan", "total"))
        per_atom, call_per_atom = t_total / n, t_call / n
        rounds = [
            (t / n) / (t0 / first)
            for t, t0 in zip(times[n]["total"], times[first]["total"], strict=True)
        ]
        print(
            f"{n:5d} {results[n].n_subclusters:11d} {t_plan:8.2f} {t_total:9.2f} "
            f"{1e3 * per_atom:8.2f} {t_plan / t_total:10.1%} {per_atom / base:15.2f} "
            f"{min(rounds):5.2f}-{max(rounds):<5.2f} "
            f"{1e3 * call_per_atom:17.2f} {call_per_atom / base_call:6.2f}"
        )


def trajectory(model, frames: int, seed: int = 0):
    """``frames`` Langevin frames (1500 K, 0.2 fs, every step) of the 64-atom cell."""
    from ase import units
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution

    from ase_bodyorder.calculator import BodyOrderCalculator

    atoms = cell()
    atoms.calc = BodyOrderCalculator(model, stride=0)  # energy and forces only
    MaxwellBoltzmannDistribution(atoms, temperature_K=1500, rng=np.random.default_rng(seed))
    dyn = Langevin(
        atoms, 0.2 * units.fs, temperature_K=1500, friction=0.02, rng=np.random.default_rng(seed)
    )
    out = []
    for _ in range(frames):
        dyn.run(1)
        copy = atoms.copy()
        copy.calc = None
        out.append(copy)
    return out


def table_sampled_averages(model, frames: int, sample: int, r_mbe: float) -> list:
    traj = trajectory(model, frames)
    start = time.perf_counter()
    exact = list(decompose_frames(traj, model, order=3, r_mbe=r_mbe))
    t_exact = time.perf_counter() - start
    start = time.perf_counter()
    sampled = list(decompose_frames(traj, model, order=3, sample_atoms=sample, seed=7, r_mbe=r_mbe))
    t_sampled = time.perf_counter() - start
    n = len(traj[0])
    e_exact = np.array([r.energies_eV for r in exact]) / n
    e_sampled = np.array([r.energies_per_atom_mean_eV for r in sampled])
    se = np.array([r.energies_per_atom_stderr_eV for r in sampled])
    mean_exact, mean_sampled = e_exact.mean(0), e_sampled.mean(0)
    # per-frame samples are independent: the error of the average is the root sum of squares
    error = np.sqrt((se**2).sum(0)) / len(traj)
    print(
        f"\n3. trajectory averages of E^(n)/N over {frames} frames, K=3, r_mbe = {r_mbe} A: "
        f"exact {t_exact:.1f} s, sampled m={sample} {t_sampled:.1f} s ({t_exact / t_sampled:.1f}x)"
    )
    header = (
        f"{'n':>2} {'exact eV/atom':>14} {'sampled eV/atom':>16} {'stderr meV':>10} "
        f"{'|diff|/stderr':>13}"
    )
    print(header)
    print("-" * len(header))
    for k in range(len(mean_exact)):
        ratio = abs(mean_sampled[k] - mean_exact[k]) / error[k] if error[k] > 0 else math.nan
        print(
            f"{k + 1:2d} {mean_exact[k]:14.5f} {mean_sampled[k]:16.5f} {1e3 * error[k]:10.2f} "
            f"{ratio:13.2f}"
        )
    return traj


def table_dask(name: str, traj: list, frames: int) -> None:
    from distributed import LocalCluster

    from ase_bodyorder.trajectory import decompose_trajectory

    traj = traj[:frames]
    start = time.perf_counter()
    local = decompose_trajectory(traj, name, order=3, r_mbe=2.0)
    t_local = time.perf_counter() - start
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as cluster:
        start = time.perf_counter()
        remote = decompose_trajectory(
            traj, name, order=3, r_mbe=2.0, scheduler=cluster.scheduler_address
        )
        t_dask = time.perf_counter() - start
    same = all(
        np.array_equal(a.energies_eV, b.energies_eV) for a, b in zip(local, remote, strict=True)
    )
    print(f"\n4. {frames} frames, K=3, r_mbe = 2 A")
    print(f"{'route':<34} {'time/s':>8} {'speed-up':>8}")
    print(f"{'one process':<34} {t_local:8.1f} {1.0:8.2f}")
    print(f"{'dask LocalCluster, 2 workers':<34} {t_dask:8.1f} {t_local / t_dask:8.2f}")
    print(f"results bit-identical: {same}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="soap-bpnn-hbulk-high")
    parser.add_argument("--sample", type=int, default=8)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 512, 4096])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--r-traj", type=float, default=2.0)
    parser.add_argument("--dask-frames", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip", nargs="*", default=[], choices=["1", "2", "3", "4"])
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    model = load_model(args.model)
    print(f"model {args.model}, torch {torch.__version__}, 1 thread, md_inputs/nvt/init.extxyz")
    if "1" not in args.skip:
        table_frame_cost(model, args.sample, args.repeats)
    if "2" not in args.skip:
        table_scaling(model, args.sizes, args.repeats)
    traj = []
    if "3" not in args.skip:
        traj = table_sampled_averages(model, args.frames, args.sample, args.r_traj)
    if "4" not in args.skip:
        table_dask(args.model, traj or trajectory(model, args.dask_frames), args.dask_frames)


if __name__ == "__main__":
    main()
