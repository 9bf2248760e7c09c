"""The result of a body-order expansion: :class:`BodyOrderResult`, its table and its
dictionary (JSON) form."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

__all__ = ["BodyOrderResult"]


@dataclass
class BodyOrderResult:
    """The many-body expansion of a model's energy for one structure (eV, Angstrom).

    ``energies_eV[n-1]`` is the n-body energy E^(n); ``residual_eV`` is
    ``energy_eV - sum(energies_eV)``: zero to round-off for a complete cluster expansion,
    otherwise what lies beyond the truncation order or beyond ``r_mbe``.
    ``roundoff_eV`` estimates the round-off of each order: machine epsilon of the
    model's dtype times ``cancellation_eV``, the sum of absolute values of its terms;
    for sub-clusters evaluated in float32 (``decompose(..., precision="float32")``) of a
    float64 model, plus a bound on what float32 changes, measured on a few sub-clusters
    (:mod:`ase_bodyorder.precision`).

    ``energies_per_atom_mean_eV`` (K,) is E^(n)/N and ``energies_per_atom_stderr_eV``
    (K,) its standard error from atom sampling (zeros when every atom was expanded);
    ``residual_per_atom_mean_eV`` and ``residual_per_atom_stderr_eV`` likewise for the
    residual per atom. ``n_atoms`` is N.

    **Atom-sampled results** (``decompose(..., sample_atoms=m)``, ``sampled`` true; see
    ``docs/science.md`` section 9): only the m atoms ``sample_indices`` (sorted, drawn
    uniformly without replacement by ``numpy.random.default_rng(sample_seed)``) were
    expanded, each exactly. Then

    - ``energies_per_atom_mean_eV[n-1]`` is the sample mean of e_i^(n), an unbiased
      estimate of E^(n)/N, with standard error ``s_n / sqrt(m) * sqrt(1 - m/N)``
      (``s_n`` the sample standard deviation of e_i^(n); finite-population correction:
      0 for m = N, NaN for m = 1 < N);
    - ``energies_eV`` is the estimate ``N * energies_per_atom_mean_eV`` (its standard
      error is ``N * energies_per_atom_stderr_eV``), ``cancellation_eV`` and
      ``roundoff_eV`` are scaled by N/m likewise;
    - ``energies_per_atom_eV`` (N, K) and ``residual_per_atom_eV`` (N,) hold the exact
      terms of the sampled atoms and NaN for the other atoms;
    - ``residual_eV`` is ``N * residual_per_atom_mean_eV``, estimated from the residuals
      ``e_i - sum_n e_i^(n)`` of the sampled atoms (``e_i`` the model's per-atom energy
      in the whole structure); ``energy_eV`` stays the model's exact total energy, so
      ``energy_eV - sum(energies_eV) - residual_eV`` is a sampling error, not zero;
    - forces per order are not available.
    """

    max_order: int
    energy_eV: float
    energies_eV: np.ndarray
    residual_eV: float
    cancellation_eV: np.ndarray
    roundoff_eV: np.ndarray
    n_subclusters: int
    n_screened_out: int = 0
    energies_per_atom_eV: np.ndarray | None = None
    residual_per_atom_eV: np.ndarray | None = None
    forces_eV_per_A: np.ndarray | None = None
    n_atoms: int | None = None
    energies_per_atom_mean_eV: np.ndarray | None = None
    energies_per_atom_stderr_eV: np.ndarray | None = None
    residual_per_atom_mean_eV: float | None = None
    residual_per_atom_stderr_eV: float | None = None
    sample_indices: np.ndarray | None = None
    sample_size: int | None = None
    sample_seed: int | None = None

    @property
    def sampled(self) -> bool:
        """Whether this is an atom-sampled estimate (only ``sample_indices`` expanded)."""
        return self.sample_indices is not None

    @property
    def _atom_count(self) -> int | None:
        """N: ``n_atoms``, or the rows of the per-atom terms of an older result."""
        if self.n_atoms is None and self.energies_per_atom_eV is not None:
            return len(self.energies_per_atom_eV)
        return self.n_atoms

    @property
    def truncated_energy_eV(self) -> float:
        """E_{<=K}: the sum of the body-order energies up to the truncation order."""
        return float(np.sum(self.energies_eV))

    @property
    def truncated_forces_eV_per_A(self) -> np.ndarray | None:
        """F_{<=K} = -dE_{<=K}/dR, shape (N, 3), if forces per order were computed."""
        return None if self.forces_eV_per_A is None else self.forces_eV_per_A.sum(axis=0)

    @property
    def shares(self) -> np.ndarray:
        """E^(n) / (E - E^(1)): each order's share of the interaction energy (n >= 2).

        The first entry (the 1-body energy is the reference, not a share) is NaN.
        """
        interaction = self.energy_eV - self.energies_eV[0]
        out = np.full(self.max_order, np.nan)
        if abs(interaction) > 0:
            out[1:] = self.energies_eV[1:] / interaction
        return out

    def table(self, title: str | None = None) -> str:
        """A plain-text table: order, energy (eV), per atom (eV), share.

        An atom-sampled result says so, gives the estimates (energies N x the sample
        mean) and adds the standard error per atom (eV) of each order and the residual.
        """
        n_atoms = self._atom_count
        sampled = self.sampled
        lines = [] if title is None else [title]
        if sampled:
            lines.append(
                f"atom-sampled estimate: {self.sample_size} of {n_atoms} atoms expanded "
                f"(seed {self.sample_seed}); energy/eV = N x mean over the sampled atoms, "
                "+- = standard error per atom"
            )
        header = f"{'order':>8} {'energy/eV':>16} {'per atom/eV':>14}"
        header += f" {'+-/eV':>10}" if sampled else ""
        lines.append(f"{header} {'share':>9}")
        shares = self.shares
        stderr = self.energies_per_atom_stderr_eV

        def row(label: str, value: float, share: float, error: float | None = None) -> str:
            per_atom = f"{value / n_atoms:14.6f}" if n_atoms else f"{'':>14}"
            if sampled:
                known = error is not None and np.isfinite(error)
                per_atom += f" {error:10.6f}" if known else f" {'-':>10}"
            text = f"{share:9.4f}" if np.isfinite(share) else f"{'-':>9}"
            return f"{label:>8} {value:16.8f} {per_atom} {text}"

        for n in range(self.max_order):
            error = None if stderr is None else stderr[n]
            lines.append(row(str(n + 1), self.energies_eV[n], shares[n], error))
        interaction = self.energy_eV - self.energies_eV[0]
        share = self.residual_eV / interaction if abs(interaction) > 0 else np.nan
        lines.append(row("residual", self.residual_eV, share, self.residual_per_atom_stderr_eV))
        lines.append(row("total", self.energy_eV, np.nan, 0.0))
        lines.append(
            f"{self.n_subclusters} sub-clusters evaluated, {self.n_screened_out} skipped by "
            f"exact screening; largest round-off estimate {self.roundoff_eV.max():.2e} eV"
        )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dictionary (arrays as nested lists; NaN, e.g. the atoms not
        sampled, as ``None``)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = _nan_to_none(value.tolist())
            elif isinstance(value, float) and not math.isfinite(value):
                value = None if math.isnan(value) else value
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BodyOrderResult:
        """Inverse of :meth:`to_dict` (missing fields, as in older dictionaries: None)."""
        kwargs: dict[str, Any] = {}
        for f in fields(cls):
            value = data.get(f.name)
            if f.name == "sample_indices" and value is not None:
                value = np.asarray(value, dtype=np.int64)
            elif isinstance(value, list):
                value = np.asarray(value, dtype=float)  # None -> NaN
            kwargs[f.name] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    def calculator_results(self) -> dict[str, Any]:
        """The body-order properties of :class:`~ase_bodyorder.BodyOrderCalculator` (its
        ``BODY_ORDER_PROPERTIES`` names; eV, eV/Angstrom) that this result holds."""
        out: dict[str, Any] = {
            "body_order_energies": self.energies_eV,
            "body_order_residual": self.residual_eV,
            "body_order_roundoff": self.roundoff_eV,
        }
        n_atoms = self._atom_count
        mean, stderr = self.energies_per_atom_mean_eV, self.energies_per_atom_stderr_eV
        if mean is None and n_atoms:  # a result made before these fields existed: exact
            mean, stderr = np.asarray(self.energies_eV) / n_atoms, np.zeros(self.max_order)
        if mean is not None:
            out["body_order_energies_per_atom_mean"] = np.asarray(mean)
            out["body_order_energies_per_atom_stderr"] = np.asarray(stderr)
        if self.energies_per_atom_eV is not None:
            out["body_order_energies_per_atom"] = self.energies_per_atom_eV
        if self.forces_eV_per_A is not None:
            out["body_order_forces"] = self.forces_eV_per_A
        return out


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, list):
        return [_nan_to_none(v) for v in value]
    return None if isinstance(value, float) and math.isnan(value) else value
