"""One summary of a body-order expansion, the numbers every run records per frame.

The i-PI driver's extras (:mod:`ase_bodyorder.ipi.extras`) and the ASE logger
(:class:`~ase_bodyorder.monitor.BodyOrderLogger`) both write :func:`body_order_summary`
of each expanded structure; the monitor reads either back into one table
(:mod:`ase_bodyorder.monitor.readers`). This is the one place where the keys are
defined.

**Per atom: arrays versus averages.** Two quantities are "per atom", and their names
say which:

- ``body_order_energies_per_atom``: the *per-atom array* e_i^(n), shape (N, K), one
  row per atom (its terms sum over atoms to E^(n)). Only the ASE calculator and
  :func:`~ase_bodyorder.store_body_order_results` give it
  (``calc.results``, ``atoms.arrays``); it is not part of the summary.
- ``body_order_energies_per_atom_mean``: the *per-atom average* E^(n)/N, shape (K,),
  one number per order. This is what the summary gives (with its standard error
  ``body_order_energies_per_atom_stderr``, also (K,)).

Before this module, the i-PI extras and the ASE log used ``body_order_energies_per_atom``
(``..._eV`` in the log) for the average E^(n)/N; files written then are still read:
:data:`LEGACY_KEYS` maps those names to the current ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .decompose import BodyOrderResult

__all__ = [
    "ENERGY_KEYS",
    "EXTRAS_SCALAR_KEYS",
    "EXTRAS_STATUS_KEYS",
    "LEGACY_KEYS",
    "SCALAR_KEYS",
    "SUMMARY_KEYS",
    "body_order_summary",
    "current_key",
    "logged_key",
]

#: the keys of :func:`body_order_summary`, in a stable order
SUMMARY_KEYS = (
    "body_order_energies",
    "body_order_energies_per_atom_mean",
    "body_order_energies_per_atom_stderr",
    "body_order_shares",
    "body_order_residual",
    "body_order_residual_stderr",
    "body_order_sample_size",
    "body_order_order",
)

#: keys whose values are energies (eV; per atom for the ``_per_atom_`` ones)
ENERGY_KEYS = (
    "body_order_energies",
    "body_order_energies_per_atom_mean",
    "body_order_energies_per_atom_stderr",
    "body_order_residual",
    "body_order_residual_stderr",
)

#: keys with one value per structure (the others have K values, one per order)
SCALAR_KEYS = (
    "body_order_residual",
    "body_order_residual_stderr",
    "body_order_sample_size",
    "body_order_order",
)

#: what the i-PI extras of a structure add to the summary: whether its expansion was
#: computed (1.0 or 0.0) and the driver's step counter (:mod:`ase_bodyorder.ipi.extras`)
EXTRAS_STATUS_KEYS = ("body_order_computed", "body_order_call")

#: keys of the i-PI extras with one value per structure: what the extras' writer and the
#: monitor's reader of their trajectories (:mod:`ase_bodyorder.monitor.readers`) share
EXTRAS_SCALAR_KEYS = (*SCALAR_KEYS, *EXTRAS_STATUS_KEYS)

#: names in files written before the summary (i-PI extras and ASE log) -> current names
LEGACY_KEYS = {
    "body_order_energies_per_atom": "body_order_energies_per_atom_mean",
    "body_order_energies_per_atom_eV": "body_order_energies_per_atom_mean_eV",
}


def logged_key(key: str) -> str:
    """The name of a summary key in the ASE log: energies carry their unit (``_eV``)."""
    return f"{key}_eV" if key in ENERGY_KEYS else key


def current_key(key: str) -> str:
    """The current name of a key read from a file (old names through :data:`LEGACY_KEYS`)."""
    return LEGACY_KEYS.get(key, key)


def body_order_summary(body: BodyOrderResult, n_atoms: int | None = None) -> dict[str, Any]:
    """The per-frame numbers of an expansion ``body`` of a structure of ``n_atoms`` atoms
    (default ``body.n_atoms``); plain Python numbers and lists, NaN where undefined.

    ``body_order_energies``
        list of K floats: E^(n), n = 1..K, for the whole structure (eV). With atom
        sampling (``sample_atoms=m``): N times the sample mean, an unbiased estimate.
    ``body_order_energies_per_atom_mean``
        list of K floats: the per-atom average E^(n)/N (eV/atom); with atom sampling the
        mean of e_i^(n) over the m sampled atoms. Not the per-atom array e_i^(n), shape
        (N, K), which the calculator calls ``body_order_energies_per_atom`` (see the
        module's documentation).
    ``body_order_energies_per_atom_stderr``
        list of K floats: the standard error (eV/atom) of that average from atom
        sampling, ``s_n / sqrt(m) * sqrt(1 - m/N)``; zeros when every atom is expanded.
    ``body_order_shares``
        list of K floats: E^(n) / (E - E^(1)); the first entry is NaN.
    ``body_order_residual``
        float: E - sum_{n<=K} E^(n) (eV); with atom sampling N times the mean residual of
        the sampled atoms.
    ``body_order_residual_stderr``
        float: the standard error of ``body_order_residual`` from atom sampling (eV;
        0 without).
    ``body_order_sample_size``
        int: the number of atoms expanded (m with sampling, N without).
    ``body_order_order``
        int: the truncation order K.

    The i-PI extras carry these keys as they are; the ASE log names the energies with
    their unit (:func:`logged_key`: ``body_order_energies_eV``, ...).
    """
    if n_atoms is None:
        n_atoms = body.n_atoms
    if n_atoms is None and body.energies_per_atom_eV is not None:
        n_atoms = len(body.energies_per_atom_eV)
    if not n_atoms:
        raise ValueError("body_order_summary needs the number of atoms (n_atoms)")
    energies = np.asarray(body.energies_eV, dtype=float)
    stderr = body.energies_per_atom_stderr_eV
    stderr = np.zeros(len(energies)) if stderr is None else np.asarray(stderr, dtype=float)
    residual_stderr = body.residual_per_atom_stderr_eV
    residual_stderr = 0.0 if residual_stderr is None else float(residual_stderr) * n_atoms
    sample_size = body.sample_size if body.sampled else n_atoms
    assert sample_size is not None  # an atom-sampled result records its sample size
    return {
        "body_order_energies": energies.tolist(),
        "body_order_energies_per_atom_mean": (energies / n_atoms).tolist(),
        "body_order_energies_per_atom_stderr": stderr.tolist(),
        "body_order_shares": np.asarray(body.shares, dtype=float).tolist(),
        "body_order_residual": float(body.residual_eV),
        "body_order_residual_stderr": residual_stderr,
        "body_order_sample_size": int(sample_size),
        "body_order_order": len(energies),
    }
