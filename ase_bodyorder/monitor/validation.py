"""Does the monitor mean what it claims? A model's expansion of MD frames against the ab
initio expansion of the same frames (``ase-bodyorder reference frames --model``).

    ase-bodyorder report validation NVT.json LOW.json --out-dir reports/monitor_validation

Each input is the JSON of one case (frames of one run): for every frame, the atoms
expanded and their terms e_i^(n) (eV) for the reference (isolated sub-clusters at the
cells' level of theory, totals shared by increments, ``docs/science.md`` section 10), the
model as the monitor reports it (its own atom energies), the model with its totals
shared by increments (the reference's definition), and both with the former equal
shares E(T)/|T|, which put pair energy into E^(3) at finite r_mbe. Per order n the
report gives E^(n)/N of each (the mean of e_i^(n) over the expanded atoms of all frames),
the model's error against the reference, atom by atom on the same atoms, with standard
errors (atoms treated as independent), and how much of the equal-share E^(n)/N of the
reference was lower-order energy (equal shares - increments: for n = 3 exactly pair
increments), as a table, a JSON file and a figure.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError

__all__ = ["validation_summary", "write_validation_report"]

#: the expansions compared, in the JSON's names, with their labels
SERIES = {
    "reference": "ab initio (increments)",
    "model": "model (monitor, own atom energies)",
    "model_increment_share": "model (increments)",
    "reference_equal_share": "ab initio (equal shares, former)",
    "model_equal_share": "model (equal shares, former)",
}
#: the model series compared with the reference of the same definition
ERRORS = {
    "model": "reference",
    "model_increment_share": "reference",
    "model_equal_share": "reference_equal_share",
}


def _terms(case: dict, name: str) -> np.ndarray:
    rows = [row for frame in case["frames"] for row in frame[name]["atom_terms_eV"]]
    return np.asarray(rows, dtype=float)


def validation_summary(case: dict) -> dict:
    """Per order: E^(n)/N (eV/atom) of each series with its standard error, and the
    model's mean error (model - reference, atom by atom) with its standard error."""
    frames = case.get("frames") if isinstance(case, dict) else None
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        raise BodyOrderError(
            "not a JSON object of `reference frames --model` (it holds no list of frames)"
        )
    missing = [name for name in SERIES if name not in case["frames"][0]]
    if missing:
        raise BodyOrderError(
            f"the frames have no {', '.join(missing)}: run `reference frames` with --model"
        )
    terms = {name: _terms(case, name) for name in SERIES}
    count = len(terms["reference"])
    orders = terms["reference"].shape[1]
    out: dict = {"atoms": count, "frames": len(case["frames"]), "orders": []}

    def mean_se(values: np.ndarray) -> tuple[float, float]:
        se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else math.nan
        return float(values.mean()), se

    for n in range(orders):
        row: dict = {"order": n + 1}
        for name in SERIES:
            row[f"{name}_eV_per_atom"], row[f"{name}_stderr_eV_per_atom"] = mean_se(
                terms[name][:, n]
            )
        for name, against in ERRORS.items():
            difference = terms[name][:, n] - terms[against][:, n]
            row[f"{name}_error_eV_per_atom"], row[f"{name}_error_stderr_eV_per_atom"] = mean_se(
                difference
            )
        leak = terms["reference_equal_share"][:, n] - terms["reference"][:, n]
        row["reference_leak_eV_per_atom"], row["reference_leak_stderr_eV_per_atom"] = mean_se(leak)
        out["orders"].append(row)
    return out


def write_validation_report(
    cases: dict[str, dict], out_dir: str | os.PathLike[str], command: str
) -> Path:
    """``README.md``, ``validation.json`` and ``validation.png`` in ``out_dir`` for
    ``cases`` (``{label: frames JSON}``)."""
    summaries = {}
    for label, case in cases.items():  # every case checked before anything is written
        try:
            summaries[label] = validation_summary(case)
        except BodyOrderError as error:
            raise BodyOrderError(f"case {label}: {error}") from None
    import matplotlib  # matplotlib: the figures

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    payload = {
        "command": command,
        "cases": {
            label: {
                "model": case.get("model"),
                "trajectory": case.get("trajectory"),
                "order": case.get("order"),
                "r_mbe": case.get("r_mbe"),
                "sample_atoms": case.get("sample_atoms"),
                **summaries[label],
            }
            for label, case in cases.items()
        },
    }
    (out_dir / "validation.json").write_text(json.dumps(payload, indent=1) + "\n")

    figure, axes = plt.subplots(2, len(cases), figsize=(5.2 * len(cases), 7.5), squeeze=False)
    for column, (label, case) in enumerate(cases.items()):
        summary = summaries[label]
        orders = [row["order"] for row in summary["orders"]][1:]  # E^(1) is the baseline
        top, bottom = axes[0, column], axes[1, column]
        shown = ("reference", "model", "model_increment_share", "reference_equal_share")
        for shift, name in zip((-0.2, -0.07, 0.07, 0.2), shown, strict=True):
            text = SERIES[name]
            rows = summary["orders"][1:]
            top.errorbar(
                np.array(orders) + shift,
                [r[f"{name}_eV_per_atom"] for r in rows],
                yerr=[r[f"{name}_stderr_eV_per_atom"] for r in rows],
                fmt="x" if name.endswith("equal_share") else "o",
                capsize=3,
                label=text,
            )
        top.axhline(0, color="0.7", lw=0.8)
        top.set_ylabel("E^(n)/N (eV/atom)")
        top.set_title(
            f"{label}: {case.get('model')}, K={case.get('order')}, "
            f"r_mbe={case.get('r_mbe')} A\n{summary['frames']} frames, "
            f"{summary['atoms']} expanded atoms"
        )
        reference = _terms(case, "reference")
        for terms_name, marker in (("model", "o"), ("model_increment_share", "+")):
            model_terms = _terms(case, terms_name)
            for n in orders:
                bottom.scatter(
                    reference[:, n - 1],
                    model_terms[:, n - 1],
                    s=10,
                    marker=marker,
                    label=f"n={n}, {SERIES[terms_name]}",
                )
        low, high = zip(bottom.get_xlim(), bottom.get_ylim(), strict=True)
        limits = (min(low), max(high))
        bottom.plot(limits, limits, color="0.5", lw=0.8, label="model = ab initio")
        bottom.set_xlabel("ab initio e_i^(n), increments (eV)")
        bottom.set_ylabel("model e_i^(n) (eV)")
        bottom.legend(fontsize=6)
        top.legend(fontsize=7, loc="upper left")
        top.set_xticks(orders)
        top.set_xlim(min(orders) - 0.5, max(orders) + 0.5)
        top.set_xlabel("body order n")
    figure.suptitle(f"{command}", fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "validation.png", dpi=110)
    plt.close(figure)

    lines = [
        "# The monitor against the ab initio expansion of the same frames",
        "",
        f"Made by `{command}`; numbers in `validation.json`, figure `validation.png`.",
        "E^(n)/N in eV/atom: the mean of e_i^(n) over the expanded atoms of all frames, with",
        "its standard error; error = model - ab initio, atom by atom. The ab initio terms",
        "share each sub-cluster's total by increments (each subset's many-body increment in",
        "equal parts to its members, docs/science.md section 10): a pair potential has no",
        "third order under it. 'model (increments)' shares the model's totals the same way;",
        "'model (monitor)' is the model's own atom-resolved expansion, what the monitor logs.",
        "The last two columns are the former definition, equal shares E(T)/|T|, and how much",
        "of its ab initio E^(n)/N was lower-order energy (equal shares - increments; for",
        "n = 3 exactly pair increments, for n <= 2 zero).",
        "",
    ]
    for label, case in cases.items():
        summary = summaries[label]
        lines += [
            f"## {label}",
            "",
            f"Model `{case.get('model')}`, trajectory `{case.get('trajectory')}` "
            f"(frames `{case.get('index')}`), K = {case.get('order')}, r_mbe = "
            f"{case.get('r_mbe')} Angstrom, {summary['frames']} frames, "
            f"{summary['atoms']} expanded atoms.",
            "",
            "| n | ab initio | model (monitor) | model (increments) | error (monitor) "
            "| error (increments) | ab initio, equal shares | pair energy in it |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in summary["orders"]:

            def pm(name: str, row: dict = r) -> str:
                mean, se = row[name + "_eV_per_atom"], row[name + "_stderr_eV_per_atom"]
                return f"{mean:+.4f} ± {se:.4f}"

            lines.append(
                f"| {r['order']} | {pm('reference')} | {pm('model')} | "
                f"{pm('model_increment_share')} | {pm('model_error')} | "
                f"{pm('model_increment_share_error')} | {pm('reference_equal_share')} | "
                f"{pm('reference_leak')} |"
            )
        lines.append("")
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path
