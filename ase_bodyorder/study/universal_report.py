"""The universal-MLIP study's report (issue 32): ``README.md``, the figures and
``universal.json`` from the exported PBE reference and the model results only.

Every number in the text is computed by :func:`~.universal_claims.analyse` (and
:mod:`.universal_stats`) from those files; the claims are
:class:`~.universal_claims.Claim` data judged on them. Energies in eV
(per atom where the table says so), distances in Angstrom.
"""

from __future__ import annotations

from pathlib import Path

from ..io import write_text_atomically
from ..reference.universal import DATASETS
from .numbers import significant
from .universal import DATA_DIR, read_models, read_reference, write_json
from .universal_claims import CPU_BUDGET_HOURS, Claim, analyse
from .universal_figures import (
    dimer_figure,
    model_colors,
    relative_figure,
    split_figure,
    truncation_figure,
)
from .universal_stats import REPRODUCES_FRACTION, paired, relative_rmse, set_size

__all__ = ["write_report"]

_FCI_DIR = DATA_DIR.parent


def _signed(value: float) -> str:
    text = significant(value)
    return text if text.startswith("-") else "+" + text


def _set_lines(name: str, reference: dict, per_model: dict[str, dict]) -> list[str]:
    """The orders table and the truncation table of one data set (eV per atom)."""
    n_atoms = set_size(reference)
    order = len(reference["clusters"][0]["energies_eV"])
    missing = "" if reference["complete"] else f", missing {reference['missing_clusters']}"
    lines = [
        f"### {name}: {len(reference['clusters'])} clusters of {n_atoms} atoms, "
        f"PBE/{reference['calculation']['basis']}{missing}",
        "",
    ]
    if not per_model:
        return [*lines, "No model result on this set.", ""]
    ref = next(iter(per_model.values()))
    orders = range(2, order + 1)
    lines += [
        "| eV per atom | E^(1) offset | "
        + " | ".join(f"E^({n}) mean error (RMSE) | RMSE/RMS" for n in orders)
        + " | residual |",
        "|---|---|" + "---|---|" * len(orders) + "---|",
        "| PBE: mean (RMS) | 0 | "
        + " | ".join(
            f"{_signed(ref['reference_mean_eV'][n - 1] / n_atoms)} "
            f"({significant(ref['reference_rms_eV'][n - 1] / n_atoms)}) | -"
            for n in orders
        )
        + f" | {_signed(-ref['reference_truncation_mean_eV'][-1] / n_atoms)} |",
    ]
    for label, errors in per_model.items():
        lines.append(
            f"| {label} | {_signed(errors['atom_offset_eV_per_atom'])} | "
            + " | ".join(
                f"{_signed(errors['mean_error_eV'][n - 1] / n_atoms)} "
                f"({significant(errors['rmse_eV'][n - 1] / n_atoms)}) | "
                f"{significant(relative_rmse(errors, n), 2)}"
                for n in orders
            )
            + f" | {_signed(errors['residual_mean_eV'] / n_atoms)} |"
        )
    ks = range(1, order + 1)
    lines += [
        "",
        "Truncation error, RMSE of (E_<=K - E)/N over the clusters (eV per atom), each "
        "expansion against its own total energy:",
        "",
        "| | " + " | ".join(f"K = {k}" for k in ks) + " |",
        "|---|" + "---|" * len(ks),
        "| PBE | "
        + " | ".join(significant(v / n_atoms) for v in ref["reference_truncation_rmse_eV"])
        + " |",
        *(
            f"| {label} | "
            + " | ".join(significant(v / n_atoms) for v in errors["truncation_rmse_eV"])
            + " |"
            for label, errors in per_model.items()
        ),
        "",
    ]
    return lines


def _dimer_lines(dimers: dict) -> list[str]:
    lines = []
    for element, entry in dimers.items():
        lines += [
            f"### {element}2 binding curve (PBE/{entry['basis']}, {entry['distances']} distances)",
            "",
            "| | well depth / eV | at / Angstrom | RMSE vs PBE / eV |",
            "|---|---|---|---|",
            *(
                f"| {label} | {depth:.3f} | {at:.2f} | {rmse:.3f} |"
                for label, (depth, at, rmse) in entry["rows"].items()
            ),
            "",
        ]
    return lines


def _gap_lines(gap: dict, reference: dict, models: dict, stats: dict) -> list[str]:
    """The basis gap of each set's first cluster beside each model's error on it."""
    lines = []
    for name, entry in gap["clusters"].items():
        n_atoms = set_size(reference["sets"][name])
        k = entry["cluster"]
        small, large = entry["bases"]
        orders = range(2, len(entry["difference_eV"]) + 1)
        lines += [
            f"### {name}, cluster {k} (eV per atom)",
            "",
            "| | " + " | ".join(f"E^({n})" for n in orders) + " |",
            "|---|" + "---|" * len(orders),
            f"| PBE/{large} - PBE/{small} | "
            + " | ".join(_signed(entry["difference_eV"][n - 1] / n_atoms) for n in orders)
            + " |",
        ]
        for label in stats.get(name, {}):
            ref_rows, rows = paired(reference["sets"][name], models[label]["sets"][name])
            mine = [(r, m) for r, m in zip(ref_rows, rows, strict=True) if r["cluster"] == k]
            if mine:
                r, m = mine[0]
                lines.append(
                    f"| {label} - PBE/{small} | "
                    + " | ".join(
                        _signed((m["energies_eV"][n - 1] - r["energies_eV"][n - 1]) / n_atoms)
                        for n in orders
                    )
                    + " |"
                )
        lines.append("")
    for key in ("dimers", "pseudo_dimers"):
        for element, entry in gap.get(key, {}).items():
            lines.append(
                f"- {element}2 binding curve, PBE/{entry['bases'][1]} - "
                f"PBE/{entry['bases'][0]} over {entry['distances']} distances: RMS "
                f"{entry['rms_eV']:.4f} eV, largest {entry['max_eV']:.4f} eV"
            )
    return lines or ["No larger-basis result yet."]


def _cost_lines(rows: list[dict], costs: dict) -> list[str]:
    if not rows:
        return ["No cost measured yet."]
    lines = [
        "| element | jobs done / planned | CPU h measured | CPU h projected | planned jobs "
        "of types not run yet (not projected) |",
        "|---|---|---|---|---|",
    ]
    total = {k: 0.0 for k in ("jobs", "planned_jobs", "measured_h", "projected_h")}
    for element, c in {**costs, "total": total}.items():
        if element != "total":
            for key in total:
                total[key] += c[key]
        unmeasured = sum(e["unmeasured_jobs"] for e in costs.values())
        lines.append(
            f"| {element} | {c['jobs']:.0f} / {c['planned_jobs']:.0f} | "
            f"{c['measured_h']:.2f} | {c['projected_h']:.2f} | "
            + (
                f"{unmeasured} (budget {CPU_BUDGET_HOURS:g} h)"
                if c is total
                else f"{c['unmeasured_jobs']}"
            )
            + " |"
        )
    lines += [
        "",
        "Per job type (CPU seconds, one thread; '-': not run yet):",
        "",
        "| set | basis | size | jobs done / planned | mean | median | max |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['set']} | {r['basis']} | {r['size']} | {r['jobs']} / "
        f"{r.get('planned_jobs', '?')} | "
        + " | ".join(
            "-" if r[k] is None else f"{r[k]:.2f}"
            for k in ("cpu_s_mean", "cpu_s_median", "cpu_s_max")
        )
        + " |"
        for r in rows
    ]
    return lines


def _separation_lines(found: dict[str, dict]) -> list[str]:
    """Size consistency of each set's PBE sub-cluster energies, with the worst cases."""
    lines = [
        "A sub-cluster with an atom beyond the distance at which the element's PBE dimer "
        "is unbound must have the energy of the rest plus a free atom; a failure is an SCF "
        "that stopped in an excited state.",
        "",
    ]
    for name, entry in found.items():
        element = DATASETS[name].element
        if entry["separated_A"] is None:
            lines.append(
                f"- {name}: not checked: the PBE {element}2 curve is bound at every distance "
                f"it has (up to {entry['curve_end_A']:g} Angstrom)"
            )
            continue
        if not entry["checked"]:
            lines.append(
                f"- {name}: not checked: no sub-cluster has an atom "
                f"{entry['separated_A']:g} Angstrom or more from the rest (where the PBE "
                f"{element}2 curve is unbound)"
            )
            continue
        worst = sorted(entry["failures"], key=lambda f: -abs(f[3]))[:4]
        lines.append(
            f"- {name}: {len(entry['failures'])} of {entry['checked']} separations "
            f"(atom >= {entry['separated_A']:g} Angstrom from the rest) fail"
            + (
                "; worst: "
                + ", ".join(
                    f"cluster {c} {label} (atom {i}) {g:+.2f} eV" for c, label, i, g in worst
                )
                if worst
                else ""
            )
        )
    return lines or ["- No set can be checked yet."]


def _claim_lines(claims: list[Claim], like: dict) -> list[str]:
    lines = []
    if not any(c.key.startswith("two-not-three/") for c in claims):
        lines += ["No set has both a reference and a universal model yet.", ""]
    if not claims:
        return lines
    lines += [
        "| claim | measured quantity | value | threshold | verdict |",
        "|---|---|---|---|---|",
    ]
    for c in claims:
        lines.append(
            f"| {c.statement} | {c.quantity} | "
            + ", ".join(significant(v) for v in c.values)
            + f" | {c.threshold:g} | **{c.verdict}** |"
        )
    for name, verdicts in like.items():
        lines += [
            "",
            f"On {name}, nearest H8 models per universal model: "
            + ", ".join(f"{m}: {v}" for m, v in verdicts.items())
            + ".",
        ]
    return lines


def write_report(
    out_dir: str | Path,
    *,
    data_dir: str | Path = DATA_DIR,
    models_dir: str | Path | None = None,
    study_dir: str | Path = "reports/study",
    fci_dir: str | Path = _FCI_DIR,
    command: str = "",
) -> Path:
    """``README.md``, the figures and ``universal.json`` in ``out_dir`` from the exported
    reference (``data_dir``), the model results (``models_dir``, default
    ``out_dir/models``) and the study's H8 models (``study_dir/makeup.json`` against the
    FCI MBE files of ``fci_dir``); returns the README's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    models_dir = out_dir / "models" if models_dir is None else Path(models_dir)
    reference = read_reference(data_dir)
    models = read_models(models_dir)
    kinds = {label: data.get("kind", "universal") for label, data in models.items()}
    found = analyse(reference, models, study_dir=study_dir, fci_dir=fci_dir)
    stats, study_rows, gap, dimers, costs = (
        found[k] for k in ("stats", "study_rows", "gap", "dimers", "costs")
    )
    claims, like = found["claims"], found["like"]
    colors = model_colors(models)
    basis_costs = found["basis_costs"]

    lines = [
        "# How universal MLIPs split energy into body orders (issue 32)",
        "",
        f"Made by `{command}` from the exported PBE expansions (`{Path(data_dir).name}/`), "
        f"the model results (`{models_dir.name}/`: "
        f"{sum(k == 'universal' for k in kinds.values())} universal MLIPs, "
        f"{sum(k == 'h8' for k in kinds.values())} of the study's H8 models) and the "
        "study's H8 models against FCI (`reports/study/makeup.json`).",
        "",
        "E^(1) is each model's own isolated-atom energy: a universal MLIP's per-element "
        "energy is fitted to periodic PAW data whose zero is not the all-electron atom's, so "
        "E^(1) is compared as an offset per atom only; every E^(n), n >= 2, is a difference "
        "of energies and is compared directly. The study's H8 models were trained on "
        "FCI/STO-6G, not PBE: against PBE their errors include that level-of-theory gap; "
        "they are shown on the H8 set of their density only. The universal models trained "
        "on r2SCAN (names with r2scan) are in the tables but not in the claims, which are "
        "about PBE.",
        "",
        "## Data sets",
        "",
    ]
    for name in DATASETS:
        data = reference["sets"].get(name)
        if data is None:
            lines.append(f"- {name}: no PBE result exported yet")
            continue
        state = (
            "complete" if data["complete"] else f"{len(data['missing_clusters'])} clusters missing"
        )
        calc = data["calculation"]
        lines.append(
            f"- {name}: {len(data['clusters'])} clusters ({state}); PBE/{calc['basis']}, "
            f"spin policy {calc['spin_policy']}, grid level {calc['grid_level']}"
        )
        cost = basis_costs.get(name)
        if cost is not None:
            lines[-1] += (
                f"; its {cost['jobs']} jobs cost {cost['own_h']:.2f} CPU h, at the check's "
                f"{cost['check_basis']} they would cost {cost['at_check_h']:.1f} CPU h "
                "(the check cluster's mean CPU s per sub-cluster size)"
            )
    lines += [
        "",
        f"Each set's basis is the one the study's {CPU_BUDGET_HOURS:g} CPU h budget allows "
        "(the costs above); "
        "its larger-basis check cluster measures what that choice moves (Level of theory).",
    ]
    lines += ["", "## Body orders against PBE", ""]
    lines += [
        "Per set: E^(n)/N mean error (model - PBE) and RMSE over the clusters in eV per "
        "atom; RMSE/RMS: the RMSE over the RMS of PBE's term (a model 'reproduces' an order "
        f"below {REPRODUCES_FRACTION}); E^(1) offset: (model's atom - PBE's atom) per atom; "
        "residual: mean (E - sum_{n<=4} E^(n))/N, each expansion its own.",
        "",
    ]
    for name, per_model in stats.items():
        lines += _set_lines(name, reference["sets"][name], per_model)
    figures = []
    shown = {name: per_model for name, per_model in stats.items() if per_model}
    if shown:
        figures = [
            split_figure(
                out_dir / f"split{suffix}.png",
                {name: reference["sets"][name] for name in shown if name.startswith(prefix)},
                {
                    name: {m: models[m]["sets"][name] for m in per_model if kinds[m] == kind}
                    for name, per_model in shown.items()
                },
                colors,
            )
            for kind, suffix, prefix in (("universal", "", ""), ("h8", "_h8", "h8-"))
            if any(kinds[m] == kind for per_model in shown.values() for m in per_model)
        ]
        figures += [
            relative_figure(out_dir / "relative.png", shown, study_rows, colors),
            truncation_figure(out_dir / "truncation.png", shown, colors),
        ]
    lines += [f"![{f}]({f})\n" for f in figures]
    lines += ["## Dimer curves", "", *_dimer_lines(dimers)]
    universal = {m: data for m, data in models.items() if kinds[m] == "universal"}
    made = dimer_figure(out_dir / "dimers.png", reference["dimers"], universal, colors)
    if made:
        lines += [f"![{made}]({made})", ""]
    lines += [
        "## Level of theory (larger basis, pseudopotential)",
        "",
        "The first cluster of each element at the larger basis: the change of PBE's E^(n) "
        "beside each model's error on the same cluster, so a model's error can be told from "
        "the basis. The dimer curves also with the core replaced by pyscf's GTH-PBE "
        "pseudopotential (basis gth-qzv3p) against all electrons at the larger basis: the "
        "models' training data used PAW, which rebuilds the all-electron density near the "
        "nucleus and is generally closer to all electrons than a norm-conserving GTH "
        "potential, so this gap measures the size of the core's effect, not PAW's.",
        "",
        *_gap_lines(gap, reference, models, stats),
        "",
        "## Cost of the reference",
        "",
        *_cost_lines(reference["costs"], costs),
        "",
        "## Reference checks",
        "",
        *_separation_lines(found["separation"]),
        "",
        "## Claims as measured",
        "",
        *_claim_lines(claims, like),
        "",
    ]
    write_text_atomically(out_dir / "README.md", "\n".join(lines))
    write_json(
        out_dir / "universal.json",
        {
            "command": command,
            "stats": stats,
            "claims": [{**c._asdict(), "holds": c.holds, "verdict": c.verdict} for c in claims],
            "resembles": like,
            "basis_gap": gap,
            "cost_by_element_h": costs,
            "cost_at_check_basis_h": basis_costs,
        },
    )
    return out_dir / "README.md"
