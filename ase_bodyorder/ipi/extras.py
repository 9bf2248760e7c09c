"""The body-order statistics the i-PI driver returns as JSON extras, and their files.

What the driver puts in the extras JSON of every structure (bead) it evaluates; all
energies in eV, never converted by i-PI:

* the summary of the expansion, :func:`ase_bodyorder.summary.body_order_summary` (its
  docstring defines the keys: ``body_order_energies``,
  ``body_order_energies_per_atom_mean`` (E^(n)/N, one value per order),
  ``body_order_energies_per_atom_stderr``, ``body_order_shares``,
  ``body_order_residual``, ``body_order_residual_stderr``, ``body_order_sample_size``,
  ``body_order_order``), the same numbers the ASE logger writes;
* ``body_order_computed``: 1.0 if the expansion was computed for this structure, 0.0 if
  not (then every value of the summary except the order is NaN, and the sample size
  0: the driver expands every ``stride``-th step only);
* ``body_order_call``: int, the driver's step counter (0 for the first positions i-PI
  sends);
* ``body_order_energies_per_atom``: deprecated, the same numbers as
  ``body_order_energies_per_atom_mean`` under the name that, elsewhere, means the
  per-atom array e_i^(n) (see :mod:`ase_bodyorder.summary`). It is still sent so that
  i-PI inputs written before the rename keep running; the runner's inputs and the
  shipped cases ask for ``body_order_energies_per_atom_mean``.

Every structure carries every key (i-PI stops with ``KeyError`` when a requested key is
missing). i-PI writes the trajectories of :data:`EXTRAS_TRAJECTORIES` (defined, with
:data:`STATUS_COLUMNS`, in :mod:`ase_bodyorder.runs`, the layout of a run) as
``<prefix>.<name>_<bead>``: for each written step, a header line
``#EXTRAS(<extra_type>)# Step: <step>`` then one line of floats (the keys' values side
by side); :func:`ase_bodyorder.monitor.read_ipi_extras` reads such a file back, and
:func:`ase_bodyorder.monitor.read_run` reads every ``body_order_*`` trajectory of a run,
including ones an input file adds (the monitor's report combines the atom-sampling
errors of ``bo_stderr`` with the time correlation), and files that use the old names
(:data:`ase_bodyorder.summary.LEGACY_KEYS`). The header's step is i-PI's step (0: the
initial positions); it equals ``body_order_call`` (also after a restart, and with
several drivers when each gets one batch per step).
"""

from __future__ import annotations

import math

from ..decompose import BodyOrderResult
from ..runs import EXTRAS_TRAJECTORIES, STATUS_COLUMNS
from ..summary import EXTRAS_SCALAR_KEYS, EXTRAS_STATUS_KEYS, SUMMARY_KEYS, body_order_summary

__all__ = [
    "EXTRAS_KEYS",
    "EXTRAS_TRAJECTORIES",
    "SCALAR_KEYS",
    "STATUS_COLUMNS",
    "expansion_extras",
    "placeholder_extras",
]

#: the deprecated name of ``body_order_energies_per_atom_mean`` that the extras still carry
LEGACY_MEAN_KEY = "body_order_energies_per_atom"

#: every key of the extras JSON, in a stable order
EXTRAS_KEYS = (*SUMMARY_KEYS, *EXTRAS_STATUS_KEYS, LEGACY_MEAN_KEY)

#: keys with one value per structure (every other key has K values)
SCALAR_KEYS = EXTRAS_SCALAR_KEYS


def expansion_extras(body: BodyOrderResult, n_atoms: int, call: int) -> dict:
    """Extras of a structure of ``n_atoms`` atoms whose expansion ``body`` was computed
    at the driver's step ``call``."""
    extras = body_order_summary(body, n_atoms)
    extras.update(body_order_computed=1.0, body_order_call=int(call))
    extras[LEGACY_MEAN_KEY] = list(extras["body_order_energies_per_atom_mean"])
    return extras


def placeholder_extras(order: int, call: int) -> dict:
    """Extras of a structure between expansions: the same keys, NaN values."""
    extras = {key: math.nan if key in SCALAR_KEYS else [math.nan] * order for key in EXTRAS_KEYS}
    extras.update(
        body_order_order=int(order),
        body_order_computed=0.0,
        body_order_call=int(call),
        body_order_sample_size=0,
    )
    return extras
