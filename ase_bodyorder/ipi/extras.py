"""The body-order statistics the i-PI driver returns as JSON extras, and their files.

What the driver puts in the extras JSON of every structure (bead) it evaluates; all
energies in eV, never converted by i-PI:

``body_order_energies``
    list of K floats: E^(n), n = 1..K, for the whole cell (eV).
``body_order_energies_per_atom``
    list of K floats: E^(n) / N (eV/atom). (Not the per-atom terms e_i^(n) of
    :class:`~ase_bodyorder.BodyOrderCalculator`: one number per order, divided by N.)
``body_order_shares``
    list of K floats: E^(n) / (E - E^(1)); the first entry is NaN.
``body_order_energies_per_atom_mean``
    list of K floats: E^(n) / N (eV/atom), the same numbers as
    ``body_order_energies_per_atom``; with atom sampling (driver option
    ``sample_atoms=m``) the mean of e_i^(n) over the m sampled atoms, an unbiased
    estimate (and ``body_order_energies`` is N times it).
``body_order_energies_per_atom_stderr``
    list of K floats: the standard error (eV/atom) of that mean from atom sampling,
    ``s_n / sqrt(m) * sqrt(1 - m/N)``; zeros when every atom is expanded.
``body_order_residual``
    float: E - sum_{n<=K} E^(n) (eV); with atom sampling N times the mean residual of
    the sampled atoms.
``body_order_residual_stderr``
    float: standard error of ``body_order_residual`` from atom sampling (eV; 0 without).
``body_order_sample_size``
    int: the number of atoms expanded (m with sampling, N without).
``body_order_order``
    int: the truncation order K.
``body_order_computed``
    1.0 if the expansion was computed for this structure, 0.0 if not (then every value
    above except the order is NaN: the driver expands every ``stride``-th step only).
``body_order_call``
    int: the driver's step counter (0 for the first positions i-PI sends).

Every structure carries every key (i-PI stops with ``KeyError`` when a requested key is
missing). i-PI writes the trajectories of :data:`EXTRAS_TRAJECTORIES` as
``<prefix>.<name>_<bead>``: for each written step, a header line
``#EXTRAS(<extra_type>)# Step: <step>`` then one line of floats (the keys' values side
by side); :func:`ase_bodyorder.monitor.read_ipi_extras` reads such a file back, and
:func:`ase_bodyorder.monitor.read_run` reads every ``body_order_*`` trajectory of a run,
including ones an input file adds, such as
``<trajectory filename="bo_stderr" extra_type="body_order_energies_per_atom_stderr">``
(the monitor's report then combines the atom-sampling errors with the time
correlation). The
header's step is i-PI's step (0: the initial positions); it equals ``body_order_call``
(also after a restart, and with several drivers when each gets one batch per step).
"""

from __future__ import annotations

import math

import numpy as np

from ..decompose import BodyOrderResult

__all__ = [
    "EXTRAS_KEYS",
    "EXTRAS_TRAJECTORIES",
    "SCALAR_KEYS",
    "STATUS_COLUMNS",
    "expansion_extras",
    "placeholder_extras",
]

#: every key of the extras JSON, in a stable order
EXTRAS_KEYS = (
    "body_order_energies",
    "body_order_energies_per_atom",
    "body_order_shares",
    "body_order_residual",
    "body_order_order",
    "body_order_computed",
    "body_order_call",
    "body_order_energies_per_atom_mean",
    "body_order_energies_per_atom_stderr",
    "body_order_residual_stderr",
    "body_order_sample_size",
)

#: columns of the ``bo_status`` trajectory
STATUS_COLUMNS = (
    "body_order_residual",
    "body_order_order",
    "body_order_computed",
    "body_order_call",
)

#: keys with one value per structure (every other key has K values)
SCALAR_KEYS = (*STATUS_COLUMNS, "body_order_residual_stderr", "body_order_sample_size")

#: i-PI trajectory ``filename`` -> ``extra_type`` written by every case and run
EXTRAS_TRAJECTORIES = {
    "bo": "body_order_energies",
    "bo_per_atom": "body_order_energies_per_atom",
    "bo_shares": "body_order_shares",
    "bo_status": ",".join(STATUS_COLUMNS),
    "bo_stderr": "body_order_energies_per_atom_stderr",
}


def expansion_extras(body: BodyOrderResult, n_atoms: int, call: int) -> dict:
    """Extras of a structure of ``n_atoms`` atoms whose expansion ``body`` was computed
    at the driver's step ``call``."""
    energies = np.asarray(body.energies_eV, dtype=float)
    per_atom = energies / n_atoms
    stderr = body.energies_per_atom_stderr_eV
    stderr = np.zeros(len(energies)) if stderr is None else np.asarray(stderr, dtype=float)
    residual_stderr = body.residual_per_atom_stderr_eV
    residual_stderr = 0.0 if residual_stderr is None else float(residual_stderr) * n_atoms
    return {
        "body_order_energies": energies.tolist(),
        "body_order_energies_per_atom": per_atom.tolist(),
        "body_order_shares": np.asarray(body.shares, dtype=float).tolist(),
        "body_order_residual": float(body.residual_eV),
        "body_order_order": len(energies),
        "body_order_computed": 1.0,
        "body_order_call": int(call),
        "body_order_energies_per_atom_mean": per_atom.tolist(),
        "body_order_energies_per_atom_stderr": stderr.tolist(),
        "body_order_residual_stderr": residual_stderr,
        "body_order_sample_size": int(body.sample_size if body.sampled else n_atoms),
    }


def placeholder_extras(order: int, call: int) -> dict:
    """Extras of a structure between expansions: the same keys, NaN values."""
    nan = [math.nan] * order
    return {
        "body_order_energies": nan,
        "body_order_energies_per_atom": nan,
        "body_order_shares": nan,
        "body_order_residual": math.nan,
        "body_order_order": int(order),
        "body_order_computed": 0.0,
        "body_order_call": int(call),
        "body_order_energies_per_atom_mean": nan,
        "body_order_energies_per_atom_stderr": nan,
        "body_order_residual_stderr": math.nan,
        "body_order_sample_size": 0,
    }
