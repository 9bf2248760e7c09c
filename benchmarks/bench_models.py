"""Packed sub-cluster evaluation of trained models against the packages' own routes.

Per architecture (PET, SOAP-BPNN through metatomic; MACE through mace-torch), per-atom
energies of every sub-cluster of

* full MBEs of 8-atom high-density clusters (255 sub-clusters each), and
* a 3-body-truncated MBE of a 64-atom periodic high-density cell (r_mbe = 2.0 A),

three ways, measured in one run: our packed path (one model call), one ASE calculator
call per sub-cluster, and the package's own batched API (metatomic ``compute_energy``
on a list; mace's data loader). Energies only; torch threads as given.

    python benchmarks/bench_models.py [--models pet-h8-high soap-bpnn-h8-high mace-h8-high]
        [--clusters 4] [--threads 1] [--batch-size 64] [--forward-share]

``--forward-share`` also profiles the packed and the batched route of the metatomic models
once (torch profiler, so slower than the timed runs) and prints the time spent inside the
model's own forward (``Model::forward``): what no packing can remove, so
``batched / forward(packed)`` bounds the speed-up over the package's batching.
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
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    clusters = sample_clusters(HighDensity(n_atoms=8), args.clusters, seed=99)
    cell = bulk("H", "bcc", a=1.65, cubic=True).repeat((4, 4, 2))  # 64 atoms
    cell.rattle(0.05, seed=1)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} thread(s); "
        f"64-atom cell: {cell.get_volume() / len(cell):.2f} A^3/atom"
    )
    header = (
        f"{'model':>18} {'workload':>22} {'subclusters':>11} {'packed/s':>9} "
        f"{'ASE each/s':>10} {'batched/s':>9} {'x ASE':>6} {'x batched':>9}"
    )
    print(header)
    print("-" * len(header))
    rows = []
    for name in args.models:
        model = load_model(name)
        calc = ase_calculator(model)
        workloads = {
            f"{len(clusters)} x H8 full MBE": [(a, 8, None) for a in clusters],
            "H64 cell, K=3, r=2.0": [(cell, 3, 2.0)],
        }
        for label, items in workloads.items():
            plans = [subclusters(a, model, k, r) for a, k, r in items]
            n_sub = sum(p[0].n_subclusters for p in plans)
            for _ in range(2):  # warm-up: TorchScript profiles the first two calls
                packed(model, *plans[0][:3])
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


if __name__ == "__main__":
    main()
