"""Packed evaluation of an ASE calculator against one calculator call per sub-cluster.

The full MBE (K = 8, 255 sub-clusters each) of the first ``--clusters`` shipped H8
high-density test clusters (``ase_bodyorder/data/reference/h8-high_test.xyz``), with a
model resolved by name (``--model``, default SevenNet-0, ``7net-0``: run it in
``.venv-universal``), timed in one run three ways:

- ``per call (calculator)``: one call of the model's own ASE calculator per sub-cluster
  (energy and forces, as a user wrapping the calculator gets today);
- ``per call (energies)``: one call per sub-cluster of the calculator the expansion uses
  for sub-clusters (for SevenNet: energies only, no backward pass);
- ``packed``: every sub-cluster of a cluster in one call (the default path, after its
  first-use exactness check, which is timed separately).

It prints the times, the ratios to the packed path, and the largest difference of
E^(n) between the packed and per-call paths over orders and clusters, against the bound
stated for float32 models: 16 float32 ulps of every term, ``16 * roundoff_eV`` (the
round-off estimate is machine epsilon times the sum of |terms| of each order).

    OMP_NUM_THREADS=1 .venv-universal/bin/python benchmarks/bench_packed_ase.py \
        [--model 7net-0] [--clusters 4] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import ase.io
import numpy as np
import torch

import ase_bodyorder
from ase_bodyorder import decompose, resolve_model
from ase_bodyorder.models import ASEAtomicModel

CLUSTERS = Path(ase_bodyorder.__file__).parent / "data" / "reference" / "h8-high_test.xyz"


def timed(clusters, model):
    start = time.perf_counter()
    results = [decompose(atoms, model, max_order=len(atoms)) for atoms in clusters]
    return time.perf_counter() - start, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="7net-0")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clusters = ase.io.read(CLUSTERS, f":{args.clusters}")
    start = time.perf_counter()
    model = resolve_model(args.model)
    load = time.perf_counter() - start
    assert isinstance(model, ASEAtomicModel), f"{args.model} is not an ASE-calculator model"
    options = dict(
        cutoff=model.cutoff,
        interaction_layers=model.interaction_layers,
        dtype=model.dtype,
        needs_cell=model.needs_cell,
        pack=False,
    )
    per_call_plain = ASEAtomicModel(model.calculator, **options)
    per_call_energies = ASEAtomicModel(
        model.fragment_calculator, **options, name=f"{model.name} (energies)"
    )
    start = time.perf_counter()
    decompose(clusters[0][:3], model, max_order=3)  # first use: the exactness check
    check = time.perf_counter() - start
    print(f"model {args.model}: {model.evaluation}")
    print(f"loading {load:.1f} s, first use with the exactness check {check:.2f} s")
    rows = []
    packed_time, packed = timed(clusters, model)
    for label, other in (
        ("per call (calculator)", per_call_plain),
        ("per call (energies)", per_call_energies),
    ):
        seconds, results = timed(clusters, other)
        difference = max(
            float(np.max(np.abs(a.energies_eV - b.energies_eV)))
            for a, b in zip(packed, results, strict=True)
        )
        ulps = max(
            float(np.max(np.abs(a.energies_eV - b.energies_eV) / a.roundoff_eV))
            for a, b in zip(packed, results, strict=True)
        )
        rows.append((label, seconds, difference, ulps))
    n_sub = sum(r.n_subclusters for r in packed)
    print(
        f"\n{len(clusters)} H8 clusters, full MBE, {n_sub} sub-clusters, "
        f"{args.threads} torch thread(s)"
    )
    print(
        f"{'path':24s} {'time/s':>8s} {'ms/sub-cluster':>15s} {'packed x':>9s} "
        f"{'max |dE^(n)|/eV':>16s} {'/ roundoff':>11s}"
    )
    print(f"{'packed':24s} {packed_time:8.2f} {1e3 * packed_time / n_sub:15.2f} {1.0:9.1f}")
    for label, seconds, difference, ulps in rows:
        print(
            f"{label:24s} {seconds:8.2f} {1e3 * seconds / n_sub:15.2f} "
            f"{seconds / packed_time:9.1f} {difference:16.2e} {ulps:11.2f}"
        )
    worst = max(ulps for *_, ulps in rows)
    print(
        f"\nbound: |dE^(n)| <= 16 x roundoff_eV (16 float32 ulps of every term): "
        f"{'holds' if worst <= 16 else 'VIOLATED'} (largest {worst:.2f})"
    )
    residual = max(abs(r.residual_eV) / r.roundoff_eV.sum() for r in packed)
    print(f"packed full MBE residual / total round-off estimate: at most {residual:.2f}")


if __name__ == "__main__":
    main()
