"""Packed sub-cluster evaluation of trained models against the packages' own routes.

Per architecture (PET, SOAP-BPNN through metatomic; MACE through mace-torch), per-atom
energies of every sub-cluster of

* full MBEs of 8-atom high-density clusters (255 sub-clusters each), and
* a 3-body-truncated MBE of a 64-atom periodic high-density cell (r_mbe = 2.0 A),

three ways, measured in one run: our packed path (one model call), one ASE calculator
call per sub-cluster, and the package's own batched API (metatomic ``compute_energy``
on a list; mace's data loader). Energies only; torch threads as given.

    python benchmarks/bench_models.py [--models pet-h8-high soap-bpnn-h8-high mace-h8-high]
        [--clusters 4] [--threads 1] [--batch-size 64] [--forward-share] [--flops]
        [--workloads h8 cell] [--no-routes]

``--forward-share`` also profiles the packed and the batched route of the metatomic models
once (torch profiler, so slower than the timed runs) and prints the time spent inside the
model's own forward (``Model::forward``): what no packing can remove, so
``batched / forward(packed)`` bounds the speed-up over the package's batching.

``--flops`` measures, in the same run, the machine's matrix-product rate (best of several
1024x1024 ``torch.mm``, float64 and float32, torch threads as given; and a model-shaped
4096x64 @ 64x64 float64 product), then per model and workload counts the floating-point
operations of one packed pass (energies, and energies + forces by autograd) with
``torch.profiler.profile(with_flops=True)``, times the same pass unprofiled (best of 3)
and prints GFLOP/s and the fraction of the float64 matrix-product rate, and the top ops
by self CPU time of the packed energy pass. Torch counts flops only for matrix products
(``mm``, ``addmm``, ``bmm``, ``baddbmm``, ``conv2d``) and for ``mul`` / ``add`` (one per
output element); ``sub``, ``div``, ``exp``, activations, gathers and scatters count zero,
so the counts are lower bounds. ``--no-routes`` skips the ASE and package-batched routes.

``--mace-cap MODEL`` times, in the same run, the K=3 expansion of the 64-atom NVT cell
(``md_inputs/nvt``) at r_mbe = 2 and 2.5 A with a MACE model's packed sub-clusters in
one call and in calls of at most 8192, 2048 and 512 atoms (best of 2), as ratios to the
single call, with the largest energy difference, and a plain energy + forces call.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from ase import Atoms
from ase.build import bulk

from ase_bodyorder.decompose import plan_for
from ase_bodyorder.models import FragmentBatch, load_model
from ase_bodyorder.reference import HighDensity, sample_clusters


def subclusters(atoms, model, order, r_mbe):
    plan = plan_for(atoms, model, max_order=order, r_mbe=r_mbe)
    flat = plan.flat_positions()
    numbers = atoms.numbers[plan.atoms]
    frames = [
        Atoms(numbers=numbers[a:b], positions=flat[a:b])
        for a, b in zip(plan.offsets[:-1], plan.offsets[1:], strict=True)
    ]
    return plan, flat, numbers, frames


def packed(model, plan, flat, numbers):
    with torch.no_grad():
        batch = FragmentBatch(torch.as_tensor(flat), numbers, plan.offsets)
        return model.fragment_energies(batch).numpy()


def ase_calculator(model):
    if model.__class__.__name__ == "MACEModel":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=str(model.path), default_dtype="float64", device="cpu")
    from metatomic_ase import MetatomicCalculator

    return MetatomicCalculator(str(model.path))


def one_ase_call_each(calc, frames):
    out = []
    for atoms in frames:
        atoms.calc = calc
        out.append(atoms.get_potential_energies())
    return np.concatenate(out)


def package_batched(model, calc, frames, batch_size):
    if model.__class__.__name__ == "MACEModel":
        from mace import data as mace_data
        from mace.tools import AtomicNumberTable, torch_geometric, torch_tools

        table = AtomicNumberTable(model.z_list)
        with torch_tools.default_dtype(torch.float64):
            configs = mace_data.config_from_atoms_list(
                frames, key_specification=mace_data.KeySpecification()
            )
            graphs = [
                mace_data.AtomicData.from_config(
                    c, z_table=table, cutoff=model.cutoff, heads=model.heads
                )
                for c in configs
            ]
        loader = torch_geometric.dataloader.DataLoader(
            graphs, batch_size=batch_size, shuffle=False, drop_last=False
        )
        out = []
        for batch in loader:
            result = model.model(batch.to_dict(), compute_force=False, training=False)
            out.append(result["node_energy"].detach().numpy())
        return np.concatenate(out)
    out = []
    for start in range(0, len(frames), batch_size):
        result = calc.compute_energy(frames[start : start + batch_size], per_atom=True)
        out.extend(result["energies"])
    return np.concatenate(out)


def timed(function, *args):
    start = time.perf_counter()
    value = function(*args)
    return time.perf_counter() - start, value


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--models", nargs="+", default=["pet-h8-high", "soap-bpnn-h8-high", "mace-h8-high"]
    )
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--forward-share", action="store_true")
    parser.add_argument("--flops", action="store_true")
    parser.add_argument("--workloads", nargs="+", choices=["h8", "cell"], default=["h8", "cell"])
    parser.add_argument("--no-routes", action="store_true")
    parser.add_argument("--mace-cap", metavar="MODEL", help="only the MACE call-size table")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    if args.mace_cap:
        mace_cap_table(args.mace_cap)
        return
    clusters = sample_clusters(HighDensity(n_atoms=8), args.clusters, seed=99)
    cell = bulk("H", "bcc", a=1.65, cubic=True).repeat((4, 4, 2))  # 64 atoms
    cell.rattle(0.05, seed=1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"64-atom cell: {cell.get_volume() / len(cell):.2f} A^3/atom"
    )
    rates = machine_rates() if args.flops else None
    header = (
        f"{'model':>18} {'workload':>22} {'subclusters':>11} {'packed/s':>9} "
        f"{'ASE each/s':>10} {'batched/s':>9} {'x ASE':>6} {'x batched':>9}"
    )
    if not args.no_routes:
        print(header)
        print("-" * len(header))
    rows, flop_rows = [], []
    for name in args.models:
        model = load_model(name)
        calc = None if args.no_routes else ase_calculator(model)
        workloads = {}
        if "h8" in args.workloads:
            workloads[f"{len(clusters)} x H8 full MBE"] = [(a, 8, None) for a in clusters]
        if "cell" in args.workloads:
            workloads["H64 cell, K=3, r=2.0"] = [(cell, 3, 2.0)]
        for label, items in workloads.items():
            plans = [subclusters(a, model, k, r) for a, k, r in items]
            n_sub = sum(p[0].n_subclusters for p in plans)
            for _ in range(2):  # warm-up: TorchScript profiles the first two calls
                packed(model, *plans[0][:3])
            if args.flops:
                flop_rows.append((name, label, n_sub, *flop_profile(model, plans)))
            if args.no_routes:
                continue
            t_packed = sum(timed(packed, model, *p[:3])[0] for p in plans)
            frames = [f for p in plans for f in p[3]]
            package_batched(model, calc, frames[: 2 * args.batch_size], args.batch_size)
            t_batched, e_batched = timed(package_batched, model, calc, frames, args.batch_size)
            t_ase, e_ase = timed(one_ase_call_each, calc, frames)
            e_packed = np.concatenate([packed(model, *p[:3]) for p in plans])
            assert np.allclose(e_packed, e_ase, atol=1e-5), "packed and ASE disagree"
            assert np.allclose(e_packed, e_batched, atol=1e-5), "packed and batched disagree"
            print(
                f"{name:>18} {label:>22} {n_sub:11d} {t_packed:9.3f} {t_ase:10.2f} "
                f"{t_batched:9.2f} {t_ase / t_packed:6.1f} {t_batched / t_packed:9.1f}"
            )
            if args.forward_share and model.__class__.__name__ == "MetatomicModel":
                rows.append((name, label, *forward_share(model, calc, plans, frames, args)))
    for name, label, wall_p, fwd_p, wall_b, fwd_b in rows:
        print(
            f"  {name} {label}: model forward {fwd_p:.3f} of {wall_p:.3f} s packed, "
            f"{fwd_b:.3f} of {wall_b:.3f} s batched (profiled); bound on x batched: "
            f"{wall_b / fwd_p:.1f}"
        )
    if args.flops:
        print_flops(rates, flop_rows)


def mace_cap_table(name, caps=(None, 8192, 2048, 512), radii=(2.0, 2.5)):
    """The MACE call-size table of ``--mace-cap`` (see the module docstring)."""
    from pathlib import Path

    import ase.io

    from ase_bodyorder.decompose import decompose
    from ase_bodyorder.models.mace import MACEModel

    atoms = ase.io.read(Path(__file__).resolve().parent.parent / "md_inputs/nvt/init.extxyz")
    path = load_model(name).path
    plain_model = MACEModel(path)  # loaded once: the plain step is the call, not the load
    plain = min(timed(lambda: plain_model.system(atoms, forces=True))[0] for _ in range(3))
    print(f"{name}, torch {torch.__version__}, {torch.get_num_threads()} thread(s)")
    print(f"64-atom NVT cell, K=3; plain energy + forces call {plain:.3f} s")
    header = (
        f"{'r_mbe/A':>7} {'atoms/call':>10} {'time/s':>8} {'x one call':>10} {'plain steps':>11}"
    )
    print(f"{header} {'max|dE^(n)|/eV':>15}")
    print("-" * (len(header) + 16))
    for r_mbe in radii:
        first = None
        for cap in caps:
            model = MACEModel(path, max_atoms_per_call=cap)
            seconds, result = min(
                (
                    timed(lambda: decompose(atoms, model, max_order=3, r_mbe=r_mbe))  # noqa: B023
                    for _ in range(2)
                ),
                key=lambda pair: pair[0],
            )
            if first is None:
                first = (seconds, result.energies_eV)
            diff = float(np.abs(result.energies_eV - first[1]).max())
            print(
                f"{r_mbe:7.1f} {str(cap or 'all'):>10} {seconds:8.3f} {first[0] / seconds:10.2f} "
                f"{seconds / plain:11.1f} {diff:15.1e}"
            )


def forward_share(model, calc, plans, frames, args):
    """Wall time and time inside ``Model::forward`` of the packed and batched routes."""
    from torch.profiler import profile

    def inside(prof):
        return sum(e.cpu_time_total for e in prof.key_averages() if e.key == "Model::forward")

    with profile() as packed_profile:
        wall_p = sum(timed(packed, model, *p[:3])[0] for p in plans)
    with profile() as batched_profile:
        wall_b = timed(package_batched, model, calc, frames, args.batch_size)[0]
    return wall_p, inside(packed_profile) / 1e6, wall_b, inside(batched_profile) / 1e6


#: ops for which torch's profiler counts flops as a matrix product (2 m n k)
MATMUL_OPS = frozenset({"aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::conv2d"})


def machine_rates(repeats=7):
    """GFLOP/s of torch.mm: 1024^3 float64 and float32, and 4096x64 @ 64x64 float64."""
    rates = {}
    for label, (m, k, n), dtype in (
        ("float64 1024^3", (1024, 1024, 1024), torch.float64),
        ("float32 1024^3", (1024, 1024, 1024), torch.float32),
        ("float64 4096x64 @ 64x64", (4096, 64, 64), torch.float64),
    ):
        a = torch.randn(m, k, dtype=dtype)
        b = torch.randn(k, n, dtype=dtype)
        torch.mm(a, b)
        best = min(timed(torch.mm, a, b)[0] for _ in range(repeats))
        rates[label] = 2 * m * k * n / best / 1e9
    return rates


def packed_pass(model, plans, forces):
    """One packed pass over the workload's plans: energies, or energies and forces."""
    out = []
    for plan, flat, numbers, _ in plans:
        if forces:
            positions = torch.tensor(flat, dtype=torch.float64, requires_grad=True)
            energies = model.fragment_energies(FragmentBatch(positions, numbers, plan.offsets))
            (grad,) = torch.autograd.grad(energies.sum(), positions)
            out.append(grad)
        else:
            out.append(torch.as_tensor(packed(model, plan, flat, numbers)))
    return out


def flop_profile(model, plans):
    """Per mode: (matmul flops, mul/add flops, best-of-3 wall s, profiled matmul s,
    profiled self-time total s); the top 5 ops by self CPU time of the energy pass and its
    top 3 matrix-product input shapes."""
    from torch.profiler import profile

    results, top, shapes = {}, [], []
    for mode, forces in (("energies", False), ("energies+forces", True)):
        packed_pass(model, plans, forces)  # warm-up of this mode
        with profile(with_flops=True) as prof:
            packed_pass(model, plans, forces)
        events = prof.key_averages()
        matmul = sum(e.flops for e in events if e.key in MATMUL_OPS)
        elementwise = sum(e.flops for e in events if e.key not in MATMUL_OPS)
        t_matmul = sum(e.self_cpu_time_total for e in events if e.key in MATMUL_OPS) / 1e6
        t_self = sum(e.self_cpu_time_total for e in events) / 1e6
        wall = min(timed(packed_pass, model, plans, forces)[0] for _ in range(3))
        results[mode] = (matmul, elementwise, wall, t_matmul, t_self)
        if not forces:
            ranked = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
            top = [(e.key, e.self_cpu_time_total / 1e6 / t_self, e.count) for e in ranked[:5]]
            by_shape = [
                e for e in prof.key_averages(group_by_input_shape=True) if e.key in MATMUL_OPS
            ]
            by_shape.sort(key=lambda e: e.self_cpu_time_total, reverse=True)
            shapes = [
                (
                    e.key,
                    [list(x) for x in e.input_shapes if x],
                    e.self_cpu_time_total / 1e6 / t_self,
                    e.count,
                    e.flops / (e.self_cpu_time_total / 1e6) / 1e9 if e.self_cpu_time_total else 0.0,
                )
                for e in by_shape[:3]
            ]
            top.append(t_self)
    return results, (top, shapes)


def print_flops(rates, rows):
    peak = rates["float64 1024^3"]
    print()
    print(
        "machine matrix-product rate (torch.mm, best of 7, "
        f"{torch.get_num_threads()} thread(s)): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in rates.items())
    )
    print(
        "flops counted by torch's profiler: matrix products (mm/addmm/bmm/baddbmm/conv2d) "
        "and mul/add (1 per element);\nsub/div/exp/activations/gathers/scatters count "
        "zero: the counts and rates below are LOWER BOUNDS.\n'GFLOP mm': matrix products "
        "only; 'GFLOP/s': all counted flops / wall; 'of f64 peak': fraction of the float64 "
        "1024^3 rate;\n'in mm GF/s': matrix-product flops / profiled self time of the "
        "matrix-product ops; 'mm time': their share of the profiled self CPU time.\n"
        "Wall: best of 3, unprofiled."
    )
    header = (
        f"{'model':>18} {'workload':>22} {'pass':>15} {'GFLOP mm':>8} {'GFLOP +mul/add':>14} "
        f"{'wall/s':>7} {'GFLOP/s':>7} {'of f64 peak':>11} {'in mm GF/s':>10} {'mm time':>7}"
    )
    print(header)
    print("-" * len(header))
    for name, label, _, results, _ in rows:
        for mode, (matmul, elementwise, wall, t_matmul, t_self) in results.items():
            rate = (matmul + elementwise) / wall / 1e9
            in_mm = matmul / t_matmul / 1e9 if t_matmul else float("nan")
            print(
                f"{name:>18} {label:>22} {mode:>15} {matmul / 1e9:8.3f} "
                f"{(matmul + elementwise) / 1e9:14.3f} {wall:7.3f} {rate:7.2f} "
                f"{rate / peak:11.1%} {in_mm:10.1f} {t_matmul / t_self:7.1%}"
            )
    print()
    print(
        "top 5 ops by self CPU time, packed energy pass (share of profiled self time, calls), "
        "and the 3 costliest matrix-product input shapes (share, calls, GFLOP/s inside)"
    )
    for name, label, n_sub, _, (top, shapes) in rows:
        t_self = top.pop()
        print(f"  {name}, {label} ({n_sub} sub-clusters, {t_self:.3f} s profiled self time):")
        for key, share, count in top:
            print(f"    {share:6.1%}  {key} ({count})")
        for key, dims, share, count, rate in shapes:
            print(f"    mm  {share:6.1%}  {key} {dims} ({count}, {rate:.1f} GFLOP/s)")


if __name__ == "__main__":
    main()
