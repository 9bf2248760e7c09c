"""Density scan: short monitored NVT runs of hydrogen at several densities, and how the
body-order structure changes across them.

    ase-bodyorder md scan --rs 1.6 1.9 2.2 2.6 3.0 --steps 200 --stride 10 \\
        --sample-atoms 8 --output-dir md_runs/scan

For each Wigner-Seitz radius ``rs`` (bohr) a case is written (:class:`~.cases.Case`:
``n_atoms`` atoms, a rattled bcc crystal, or H2 molecules above
``molecular_above_rs_bohr``; NVT with stochastic velocity rescaling) and run with the
monitor (:func:`~.runner.run_md`). The expansion radius grows with the spacing of the
atoms, ``r_mbe = r_mbe_per_rs * rs`` (Angstrom per bohr; 1.25 gives 2.0 Angstrom at
rs 1.6 and 3.75 at rs 3.0, about 13 neighbours everywhere) unless the expansion's
``r_mbe`` is given. The expansion is one :class:`~ase_bodyorder.ExpansionSettings`
(order, stride, r_mbe, atom sampling and its seed, ...).
A finished run is reused only if it was made with exactly the same settings (its case,
with the model, and its expansion, recorded in the run's ``scan_run.json``; a run of an
earlier version, which recorded the case and ``sample_atoms``, is reused where the
expansion is what it ran: the case's order, stride and r_mbe, the sample, seed 0, the
rest default), so a scan resumes
where it stopped; a run of other settings (another ``--model``, ``--temperature``,
``--sample-atoms``, ...) is left as it is, and the new one is run beside it
(``runs/rs1.60-2``, ...). The report
(:func:`write_scan_report`) gives, per density, the trajectory averages of E^(n)/N and of
the residual per atom with their errors (time correlation and atom sampling), as
``scan.json``, ``scan.png`` and ``README.md``. Energies in eV, lengths in Angstrom.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError
from ..io import write_json_atomically, write_text_atomically
from ..models import DEFAULT_MD_MODEL
from ..monitor import mean_and_error, read_run
from ..monitor.report import order_statistics
from ..runs import MDRun, MDRunError
from ..settings import ExpansionSettings
from ..structures import density_g_cm3
from . import runner  # runner.run_md looked up when called: tests replace it there
from .cases import Case, write_case

__all__ = [
    "DEFAULT_SCAN_EXPANSION",
    "ScanSettings",
    "run_density_scan",
    "run_settings",
    "scan_case",
    "write_scan_report",
]


#: a scan's expansion unless given: K = 3, every 10th step, 8 atoms sampled, seed 0
DEFAULT_SCAN_EXPANSION = ExpansionSettings(order=3, stride=10, sample_atoms=8, seed=0)


@dataclass(frozen=True)
class ScanSettings:
    """What a density scan runs (see the module docstring). Temperatures in K, times in
    fs, ``rs_bohr`` in bohr; ``expansion``: the drivers' expansion (default: order 3,
    every 10th step, 8 atoms sampled with seed 0; its ``r_mbe`` in Angstrom, None:
    ``r_mbe_per_rs * rs``; its ``order`` None: 3); ``seed``: the starting structures'."""

    rs_bohr: tuple[float, ...]
    model: str | None = None
    steps: int = 200
    equilibration_steps: int = 0
    expansion: ExpansionSettings = DEFAULT_SCAN_EXPANSION
    r_mbe_per_rs: float = 1.25
    temperature_K: float = 1000.0
    n_atoms: int = 64
    molecular_above_rs_bohr: float = 2.2
    timestep_fs: float = 0.2
    seed: int = 20261301

    def __post_init__(self) -> None:
        if not isinstance(self.expansion, ExpansionSettings):
            raise BodyOrderError(f"expansion must be ExpansionSettings, got {self.expansion!r}")
        if self.expansion.order is None:  # a cell's default order
            object.__setattr__(self, "expansion", self.expansion.replace(order=3))
        if not self.rs_bohr or any(rs <= 0 for rs in self.rs_bohr):
            raise BodyOrderError(f"a density scan needs positive rs values, got {self.rs_bohr}")
        stride = self.expansion.stride
        if self.steps < 1 or stride < 1 or self.steps < stride:
            raise BodyOrderError(
                f"steps ({self.steps}) must be at least stride ({stride}) >= 1: "
                "a run with no monitored frame has no statistics"
            )
        if self.equilibration_steps < 0:
            raise BodyOrderError(
                f"equilibration_steps must be >= 0, got {self.equilibration_steps}"
            )
        # checked before any folder is made or i-PI is started
        positive = {
            "temperature_K": self.temperature_K,
            "timestep_fs": self.timestep_fs,
            "r_mbe_per_rs": self.r_mbe_per_rs,
            "molecular_above_rs_bohr": self.molecular_above_rs_bohr,
        }
        for name, value in positive.items():
            if value is not None and not 0 < value < math.inf:
                raise BodyOrderError(f"{name} must be a positive number, got {value}")
        if self.n_atoms < 2 or self.n_atoms % 2:
            raise BodyOrderError(
                f"n_atoms must be even and >= 2 (bcc cells, H2 molecules), got {self.n_atoms}"
            )

    @property
    def total_steps(self) -> int:
        """Steps per run: the equilibration period, then the ``steps`` whose monitored
        frames make the statistics."""
        return self.equilibration_steps + self.steps

    def r_mbe_at(self, rs_bohr: float) -> float:
        """The expansion radius (Angstrom) at ``rs_bohr``."""
        r_mbe = self.expansion.r_mbe
        return r_mbe if r_mbe is not None else round(self.r_mbe_per_rs * rs_bohr, 3)

    def expansion_at(self, rs_bohr: float) -> ExpansionSettings:
        """The expansion of the run at ``rs_bohr``: its r_mbe resolved."""
        return self.expansion.replace(r_mbe=self.r_mbe_at(rs_bohr))


def scan_case(settings: ScanSettings, index: int):
    """The :class:`~.cases.Case` of the ``index``-th density of the scan."""
    rs = float(settings.rs_bohr[index])
    molecular = rs > settings.molecular_above_rs_bohr
    return Case(
        name=f"rs{rs:.2f}",
        description=f"density scan: hydrogen at rs = {rs:.2f} bohr, classical NVT "
        f"({'H2 molecules' if molecular else 'rattled bcc'} start)",
        ensemble="nvt",
        rs_bohr=rs,
        n_atoms=settings.n_atoms,
        temperature_K=settings.temperature_K,
        timestep_fs=settings.timestep_fs,
        steps=settings.total_steps,
        seed=settings.seed + index,
        thermostat="svr",
        molecular=molecular,
        model=settings.model,
        order=settings.expansion.order,
        stride=settings.expansion.stride,
        r_mbe=settings.r_mbe_at(rs),
        min_intermolecular=0.55 * 2 * rs * 0.529177210903,
    )


#: the settings a finished run of a scan was made with, in its run directory
RUN_SETTINGS = "scan_run.json"


def run_settings(settings: ScanSettings, index: int) -> dict:
    """What makes the ``index``-th run of a scan (its case, with the model resolved, and
    its expansion), as JSON: a finished run is reused only for exactly these."""
    case = scan_case(settings, index)
    record = {
        "case": {**asdict(case), "model": case.model or DEFAULT_MD_MODEL},
        "expansion": settings.expansion_at(case.rs_bohr).to_dict(),
    }
    return json.loads(json.dumps(record))


def _former_record(record: dict) -> dict | None:
    """What a run of an earlier version (the case and ``sample_atoms``) recorded for the
    settings of ``record``; None if that version could not run its expansion."""
    case, expansion = record["case"], record["expansion"]
    ran = ExpansionSettings(
        order=case["order"],
        stride=case["stride"],
        r_mbe=case["r_mbe"],
        sample_atoms=expansion["sample_atoms"],
        seed=0,
    )
    if json.loads(json.dumps(ran.to_dict())) != expansion:
        return None
    return {"case": case, "sample_atoms": expansion["sample_atoms"]}


def _reusable(run_dir: Path, record: dict, steps: int) -> bool:
    """Whether ``run_dir`` is a finished run made with the settings ``record``."""
    try:
        made_with = json.loads((run_dir / RUN_SETTINGS).read_text())
    except (OSError, ValueError):  # a run of an earlier version records none
        return False
    same = made_with in (record, _former_record(record))
    return same and _finished(run_dir, steps)


def _finished(run_dir: Path, steps: int) -> bool:
    try:
        run = MDRun.load(run_dir)
    except (BodyOrderError, MDRunError, OSError, ValueError, KeyError, TypeError):
        return False
    return run.status == "completed" and run.last_step >= steps


def run_density_scan(
    settings: ScanSettings, output_dir, *, timeout_s: float = 3600.0, progress: bool = True
) -> list[dict]:
    """Run (or reuse) every density's monitored NVT run; return one point per density
    (:func:`scan_point`)."""
    output_dir = Path(output_dir)
    (output_dir / "cases").mkdir(parents=True, exist_ok=True)
    (output_dir / "runs").mkdir(parents=True, exist_ok=True)
    write_json_atomically(output_dir / "scan_settings.json", _settings_record(settings))
    points = []
    for index in range(len(settings.rs_bohr)):
        case = scan_case(settings, index)
        record = run_settings(settings, index)
        run_dir, attempt = output_dir / "runs" / case.name, 1
        # unfinished runs and runs of other settings are kept, a new one goes beside them
        while run_dir.exists() and not _reusable(run_dir, record, settings.total_steps):
            attempt += 1
            run_dir = output_dir / "runs" / f"{case.name}-{attempt}"
        if not run_dir.exists():
            case_dir = write_case(case, output_dir / "cases" / case.name)
            runner.run_md(
                case_dir,
                steps=settings.total_steps,
                settings=settings.expansion_at(case.rs_bohr),
                output_dir=run_dir,
                timeout_s=timeout_s,
                progress=progress,
            )
            write_json_atomically(run_dir / RUN_SETTINGS, record)
        points.append(scan_point(run_dir, case, first_step=settings.equilibration_steps))
    return points


def _settings_record(settings: ScanSettings) -> dict:
    """``scan_settings.json``: the settings, the expansion as its dictionary."""
    return {**asdict(settings), "expansion": settings.expansion.to_dict()}


def scan_point(run_dir, case, first_step: int = 0) -> dict:
    """The trajectory averages of one density: E^(n)/N and residual per atom (eV/atom)
    with their errors, and the run's settings, over the frames at steps ``>=
    first_step`` (after the equilibration period)."""
    trace = read_run(run_dir).from_step(first_step)
    if len(trace) == 0:
        raise BodyOrderError(f"{run_dir}: no monitored frames at steps >= {first_step}")
    orders = []
    for n in range(trace.max_order):
        stats = order_statistics(trace, n + 1)
        orders.append(
            {"order": n + 1, "mean_eV_per_atom": stats.mean, "error_eV_per_atom": stats.error}
        )
    residual_stderr = trace.residual_stderr_eV
    residual = mean_and_error(
        trace.residual_eV / case.n_atoms,
        stderr=None if residual_stderr is None else residual_stderr / case.n_atoms,
    )
    temperature = trace.properties.get("temperature_K")
    return {
        "rs_bohr": case.rs_bohr,
        "density_g_cm3": density_g_cm3(case.rs_bohr),
        "start": "molecular" if case.molecular else "bcc",
        "r_mbe_A": case.r_mbe,
        "order": case.order,
        "frames": len(trace),
        "first_step": int(first_step),
        "run_dir": str(run_dir),
        "temperature_K_mean": float(np.mean(temperature)) if temperature is not None else None,
        "orders": orders,
        "residual_eV_per_atom": residual.mean,
        "residual_error_eV_per_atom": residual.error,
    }


def write_scan_report(points: list[dict], out_dir, model: str, command: str) -> Path:
    """``README.md``, ``scan.json`` and ``scan.png`` of a density scan."""
    import matplotlib  # matplotlib: the figure

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json_atomically(
        out_dir / "scan.json", {"command": command, "model": model, "points": points}
    )
    rs = np.array([p["rs_bohr"] for p in points])
    max_order = max(len(p["orders"]) for p in points)
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for n in range(2, max_order + 1):
        mean = [p["orders"][n - 1]["mean_eV_per_atom"] for p in points]
        error = [p["orders"][n - 1]["error_eV_per_atom"] for p in points]
        axes[0].errorbar(rs, mean, yerr=error, fmt="o-", capsize=3, label=f"E^({n})/N")
    axes[0].errorbar(
        rs,
        [p["residual_eV_per_atom"] for p in points],
        yerr=[p["residual_error_eV_per_atom"] for p in points],
        fmt="s--",
        color="k",
        capsize=3,
        label="residual / N",
    )
    axes[0].axhline(0, color="0.7", lw=0.8)
    axes[0].set_xlabel("Wigner-Seitz radius rs (bohr)")
    axes[0].set_ylabel("energy per atom (eV/atom)")
    axes[0].set_title(f"{model}: body orders across densities")
    axes[0].legend(fontsize=7)
    first = [p["orders"][0]["mean_eV_per_atom"] for p in points]
    axes[1].plot(rs, first, "o-")
    axes[1].set_xlabel("Wigner-Seitz radius rs (bohr)")
    axes[1].set_ylabel("E^(1)/N (eV/atom)")
    axes[1].set_title("1-body term (the model's isolated atom)")
    figure.suptitle(command, fontsize=7)
    figure.tight_layout()
    figure.savefig(out_dir / "scan.png", dpi=110)
    plt.close(figure)

    lines = [
        f"# Density scan: {model}",
        "",
        f"Made by `{command}`; numbers in `scan.json`, figure `scan.png`. Trajectory "
        "averages of E^(n)/N and of the residual per atom (eV/atom), with their errors "
        "(time correlation and atom sampling)"
        + (
            f", over the frames after the first {points[0]['first_step']} steps of each run "
            "(equilibration; the T column is the mean over the same steps)."
            if points and points[0].get("first_step")
            else "."
        ),
        "",
        "| rs (bohr) | g/cm^3 | start | r_mbe (A) | frames | T (K) | "
        + " | ".join(f"E^({n})/N" for n in range(1, max_order + 1))
        + " | residual/N |",
        "|---|---|---|---|---|---|" + "---|" * (max_order + 1),
    ]
    for p in points:
        cells = " | ".join(
            f"{o['mean_eV_per_atom']:+.4f} ± {o['error_eV_per_atom']:.4f}" for o in p["orders"]
        )
        temperature = p["temperature_K_mean"]
        known = temperature is not None and math.isfinite(temperature)
        lines.append(
            f"| {p['rs_bohr']:.2f} | {p['density_g_cm3']:.3f} | {p['start']} | {p['r_mbe_A']:g} "
            f"| {p['frames']} | {f'{temperature:.0f}' if known else '-'} | {cells} | "
            f"{p['residual_eV_per_atom']:+.4f} ± {p['residual_error_eV_per_atom']:.4f} |"
        )
    path = out_dir / "README.md"
    write_text_atomically(path, "\n".join(lines) + "\n")
    return path
