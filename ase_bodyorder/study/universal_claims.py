"""The universal-MLIP study's claims as data (issue 32), and every number of its report
(:func:`analyse`) from the exported reference and the model results.

A :class:`Claim` is a statement, the quantity that decides it, the measured values and
the threshold; :attr:`Claim.verdict` is ``true``, ``false`` or, for lower bounds that do not
decide it yet, ``open``, so a test can move a number across the threshold and see the
verdict flip. Energies in eV, distances in Angstrom, CPU time in
hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..reference.universal import DATASETS, load_clusters
from .universal import DATA_DIR
from .universal_stats import (
    COMPARED,
    REPRODUCES_FRACTION,
    SEPARATION_TOLERANCE_EV,
    basis_cost,
    basis_gap,
    cost_by_element,
    dimer_errors,
    h8_study_rows,
    order_errors,
    relative_rmse,
    separation_failures,
    shown_on,
    unbound_distance,
)

__all__ = [
    "CPU_BUDGET_HOURS",
    "Claim",
    "analyse",
    "budget_claim",
    "collect",
    "judge",
    "level_of_theory_claims",
    "resemblance_claim",
    "separation",
    "separation_claim",
    "two_not_three_claim",
]

#: the issue's budget for the whole reference (CPU hours)
CPU_BUDGET_HOURS = 8.0
#: the FCI MBE files of the H8 sets (the study's H8 models' reference)
_FCI_DIR = DATA_DIR.parent


class Claim(NamedTuple):
    """A statement judged on numbers: it holds when every ``values[i] senses[i]
    threshold`` does (``senses``: ``"<"`` or ``">="``)."""

    key: str
    statement: str
    quantity: str
    values: tuple[float, ...]
    senses: tuple[str, ...]
    threshold: float
    #: the values are lower bounds (work not done yet): a bound that already breaks a
    #: ``<`` makes the claim false; one that keeps it leaves the claim open
    lower_bounds: bool = False

    @property
    def holds(self) -> bool:
        """Whether every value is on its stated side of the threshold."""
        return all(
            (v < self.threshold) if s == "<" else (v >= self.threshold)
            for v, s in zip(self.values, self.senses, strict=True)
        )

    @property
    def verdict(self) -> str:
        """``true``, ``false``, or ``open`` (lower bounds that do not decide it yet)."""
        if self.lower_bounds and self.holds:
            return "open"
        return "true" if self.holds else "false"


def two_not_three_claim(name: str, per_model: dict[str, dict]) -> Claim:
    """ "Universal MLIPs reproduce PBE's 2-body terms but not its 3-body terms" on set
    ``name``: the largest relative RMSE of E^(2) over the models below
    :data:`REPRODUCES_FRACTION`, the smallest of E^(3) at or above it."""
    two = max(relative_rmse(e, 2) for e in per_model.values())
    three = min(relative_rmse(e, 3) for e in per_model.values())
    return Claim(
        f"two-not-three/{name}",
        f"{name}: universal MLIPs reproduce PBE's 2-body terms but not its 3-body terms",
        f"largest RMSE/RMS(PBE) of E^(2) over the {len(per_model)} universal models < "
        "threshold; smallest of E^(3) >= threshold",
        (two, three),
        ("<", ">="),
        REPRODUCES_FRACTION,
    )


def _log_distance(a: Sequence[float], b: Sequence[float]) -> float:
    """Mean |log(a/b)| over orders 2..4 (relative RMSEs, index n - 1)."""
    idx = [n - 1 for n in COMPARED]
    return float(np.mean(np.abs(np.log(np.asarray(a)[idx]) - np.log(np.asarray(b)[idx]))))


def resemblance_claim(
    name: str, per_model: dict[str, dict], study_rows: dict[str, dict]
) -> tuple[Claim, dict[str, str]] | None:
    """ "Universal MLIPs split the energy like the plain H8 models, not like the
    fragment-aware ones": the share of universal models whose relative RMSEs of E^(2..4)
    against PBE are nearer (mean log-distance) to the fragment-aware H8 models' against FCI
    than to the plain ones'; holds below a half (a majority nearer the plain ones). Also
    each model's verdict."""
    plain = [v["relative_rmse"] for v in study_rows.values() if v["fraction"] == 0]
    aware = [v["relative_rmse"] for v in study_rows.values() if v["fraction"] > 0]
    if not plain or not aware or not per_model:
        return None
    like = {}
    for label, errors in per_model.items():
        mine = [relative_rmse(errors, n) for n in range(1, len(errors["rmse_eV"]) + 1)]
        d_plain = np.mean([_log_distance(mine, p) for p in plain])
        d_aware = np.mean([_log_distance(mine, a) for a in aware])
        like[label] = "plain" if d_plain < d_aware else "fragment-aware"
    share = sum(v == "fragment-aware" for v in like.values()) / len(like)
    claim = Claim(
        f"like-plain/{name}",
        f"{name}: universal MLIPs split hydrogen's energy like the plain H8 models, not like "
        "the fragment-aware ones",
        f"share of the {len(like)} universal models whose RMSE/RMS of E^(2..4) (against PBE) "
        f"is nearer to the {len(aware)} fragment-aware H8 models' (against FCI) than to the "
        f"{len(plain)} plain ones' (mean |log ratio|) < threshold (a majority nearer the "
        "plain ones)",
        (share,),
        ("<",),
        0.5,
    )
    return claim, like


def level_of_theory_claims(gap: dict, stats: dict, dimers: dict) -> list[Claim]:
    """ "A model's error is not the basis": per set with a larger-basis cluster, the largest
    ratio over n = 2..4 of the basis gap |dE^(n)| to the smallest model RMSE of E^(n)
    below 1; per element, the dimer curves' RMS basis gap, and their RMS gap between the
    GTH pseudopotential and all electrons, over the smallest model RMSE of the curve
    below 1."""
    claims = []
    for name, entry in gap["clusters"].items():
        per_model = stats.get(name, {})
        if not per_model:
            continue
        best = [min(e["rmse_eV"][n - 1] for e in per_model.values()) for n in COMPARED]
        ratio = max(
            abs(entry["difference_eV"][n - 1]) / b for n, b in zip(COMPARED, best, strict=True)
        )
        claims.append(
            Claim(
                f"basis/{name}",
                f"{name}: every model's E^(n) error (n = 2..4) is larger than PBE's basis gap",
                f"largest |E^(n)[{entry['bases'][1]}] - E^(n)[{entry['bases'][0]}]| (cluster "
                f"{entry['cluster']}) / smallest model RMSE of E^(n) < threshold",
                (ratio,),
                ("<",),
                1.0,
            )
        )
    kinds = (
        ("dimers", "basis", "basis gap"),
        ("pseudo_dimers", "pseudopotential", "all-electron/GTH-pseudopotential gap"),
    )
    for key, what, gap_name in kinds:
        for element, entry in gap.get(key, {}).items():
            rows = dimers.get(element, {}).get("rows", {})
            model_rmse = [r[2] for label, r in rows.items() if label != "PBE"]
            if not model_rmse:
                continue
            claims.append(
                Claim(
                    f"{what}/{element}2",
                    f"{element}2: every model's binding-curve error is larger than PBE's "
                    + gap_name,
                    f"RMS {entry['bases'][1]} - {entry['bases'][0]} over {entry['distances']} "
                    "distances / smallest model RMSE < threshold",
                    (entry["rms_eV"] / min(model_rmse),),
                    ("<",),
                    1.0,
                )
            )
    return claims


def budget_claim(costs: dict[str, dict]) -> Claim | None:
    """ "The reference computes within 8 CPU hours": the projected total (every planned
    job of a type already run at its measured mean; a lower bound while some types have
    not run), or the measured total where the export has no plan."""
    if not costs:
        return None
    planned = all(c["planned"] for c in costs.values())
    total = sum(c["projected_h" if planned else "measured_h"] for c in costs.values())
    unmeasured = sum(c["unmeasured_jobs"] for c in costs.values())
    if not planned:
        quantity = "CPU hours measured so far (the export has no plan) < threshold"
    else:
        quantity = "projected CPU hours of every planned job < threshold" + (
            f" (a lower bound: {unmeasured} planned jobs of types not run yet not counted)"
            if unmeasured
            else ""
        )
    return Claim(
        "budget",
        f"the PBE reference computes within {CPU_BUDGET_HOURS:g} CPU hours",
        quantity,
        (total,),
        ("<",),
        CPU_BUDGET_HOURS,
        lower_bounds=not planned or unmeasured > 0,
    )


def separation_claim(name: str, found: dict) -> Claim:
    """ "The PBE sub-cluster energies of ``name`` are size-consistent": the share of the
    checked separations that fail is 0."""
    share = len(found["failures"]) / found["checked"] if found["checked"] else 0.0
    return Claim(
        f"separates/{name}",
        f"{name}: every PBE sub-cluster with a far atom is the rest plus a free atom",
        f"share of the {found['checked']} sub-clusters with an atom >= "
        f"{found['separated_A']:g} Angstrom from the rest whose |E(S) - E(S-i) - E(i)| > "
        f"{SEPARATION_TOLERANCE_EV:g} eV < threshold",
        (share,),
        ("<",),
        1e-12,
    )


def collect(reference: dict, models: dict[str, dict]) -> dict[str, dict]:
    """Per data set with a cluster: each shown model's :func:`order_errors`."""
    stats: dict[str, dict] = {}
    for name, data in reference["sets"].items():
        if not data["clusters"]:
            continue
        stats[name] = {}
        for label, model in models.items():
            rows = model["sets"].get(name)
            if rows and shown_on(name, label, model.get("kind", "universal")):
                errors = order_errors(data, rows)
                if errors is not None:
                    stats[name][label] = errors
    return stats


def analyse(
    reference: dict,
    models: dict[str, dict],
    *,
    study_dir: str | Path = "reports/study",
    fci_dir: str | Path = _FCI_DIR,
) -> dict[str, Any]:
    """Every number of the report: ``stats`` (:func:`collect`), ``study_rows`` (the H8
    models against FCI per H8 set), ``gap`` (the basis gap), ``dimers``, ``costs`` (per
    element), ``basis_costs`` (per set with a check cluster: its jobs at its own and at
    the check basis, :func:`~.universal_stats.basis_cost`), ``claims`` and ``like``
    (:func:`judge`)."""
    kinds = {label: data.get("kind", "universal") for label, data in models.items()}
    stats = collect(reference, models)
    found: dict[str, Any] = {
        "stats": stats,
        "study_rows": {
            name: h8_study_rows(study_dir, fci_dir, name[3:])
            for name in stats
            if name.startswith("h8-")
        },
        "gap": basis_gap(reference),
        "dimers": dimer_errors(reference["dimers"], models),
        "costs": cost_by_element(reference["costs"]),
        "basis_costs": {
            name: basis_cost(
                reference["costs"],
                name,
                data["calculation"]["basis"],
                reference["checks"][name]["calculation"]["basis"],
            )
            for name, data in reference["sets"].items()
            if name in reference["checks"]
        },
        "separation": separation(reference),
    }
    found["claims"], found["like"] = judge(
        stats, kinds, found["study_rows"], found["gap"], found["dimers"], found["costs"]
    )
    found["claims"][:0] = [
        separation_claim(n, v) for n, v in found["separation"].items() if v["checked"]
    ]
    return found


def separation(reference: dict) -> dict[str, dict]:
    """Per set with clusters: :func:`~.universal_stats.separation_failures` at the
    distance from which its element's PBE dimer curve is unbound; where the curve is
    bound at every distance it has, ``separated_A`` is None and ``curve_end_A`` its
    largest distance (nothing checked, and the report says why)."""
    out: dict[str, dict] = {}
    for name, data in reference["sets"].items():
        curve = reference["dimers"].get(data["element"], {}).get("reference")
        if not (data["clusters"] and curve and name in DATASETS):
            continue
        separated = unbound_distance(curve)
        if separated is None:
            end = max(curve["distances_A"])
            out[name] = {"separated_A": None, "curve_end_A": end, "checked": 0, "failures": []}
            continue
        distances = {int(a.info["index"]): a.get_all_distances() for a in load_clusters(name)}
        out[name] = separation_failures(data, distances, separated)
    return out


def judge(
    stats: dict, kinds: dict[str, str], study_rows: dict, gap: dict, dimers: dict, costs: dict
) -> tuple[list[Claim], dict[str, dict[str, str]]]:
    """Every claim the numbers allow, and per H8 set which H8 models each universal model
    resembles."""
    claims, like = [], {}
    for name, per_model in stats.items():
        # the claims are about PBE, the functional of the models' training data: the
        # models trained on r2SCAN are in the tables, not in the claims
        universal = {
            m: e for m, e in per_model.items() if kinds.get(m) == "universal" and "r2scan" not in m
        }
        if not universal:
            continue
        claims.append(two_not_three_claim(name, universal))
        found = resemblance_claim(name, universal, study_rows.get(name, {}))
        if found is not None:
            claims.append(found[0])
            like[name] = found[1]
    claims += level_of_theory_claims(gap, stats, dimers)
    budget = budget_claim(costs)
    if budget is not None:
        claims.append(budget)
    return claims, like
