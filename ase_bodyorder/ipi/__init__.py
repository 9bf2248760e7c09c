"""i-PI molecular dynamics with on-the-fly body-order statistics.

* :mod:`~ase_bodyorder.ipi.driver`: ``BodyOrderDriver``, an i-PI driver (``ipi.pes``
  style) returning body-order extras; the file is also a plugin for
  ``i-pi-py_driver -m custom -P`` (:func:`driver_plugin_path`).
* :mod:`~ase_bodyorder.ipi.client`: a bounded socket client (``run_driver``) that exits
  when the server goes away.
* :mod:`~ase_bodyorder.ipi.session`: ``IPISession`` starts i-PI and its drivers (each
  ending with this process), waits for them with bounds, and stops them.
* :mod:`~ase_bodyorder.ipi.runner`: ``run_md`` / ``restart_md`` run a case in an
  ``IPISession``, show progress, and write the run manifest.
* :mod:`ase_bodyorder.runs` (not of this package: the monitor reads runs through it):
  the run manifest ``run.json`` (``MDRun``, ``MDRun.load``, the ``killed`` status of a
  run whose runner died), ``MDRunError``, and the files of a run.
* :mod:`~ase_bodyorder.ipi.cases`: the cases of ``md_inputs/``.
* :mod:`~ase_bodyorder.ipi.extras`: the extras keys and the trajectories that write them
  (read back with :mod:`ase_bodyorder.monitor`).

Only the driver and the client import i-PI (``pip install 'ase-bodyorder[ipi]'``).
"""

from pathlib import Path

from ..runs import CENTROID_FILE, EXTRAS_TRAJECTORIES, MDRun, MDRunError
from .extras import EXTRAS_KEYS
from .runner import restart_md, run_md
from .session import IPISession

__all__ = [
    "CENTROID_FILE",
    "EXTRAS_KEYS",
    "EXTRAS_TRAJECTORIES",
    "IPISession",
    "MDRun",
    "MDRunError",
    "driver_plugin_path",
    "restart_md",
    "run_md",
]


def driver_plugin_path() -> Path:
    """Path of the driver file to pass to ``i-pi-py_driver -m custom -P``."""
    return Path(__file__).with_name("driver.py")
