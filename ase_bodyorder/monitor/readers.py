"""Read body-order statistics along a trajectory into one table.

Two sources, one result (:class:`BodyOrderTrace`):

* an i-PI run: the property file (``PREFIX.out``) and the extras trajectories written
  by ``<trajectory extra_type="body_order_..."> extras </trajectory>``;
* the ASE route: the JSON-lines log of :class:`~ase_bodyorder.monitor.BodyOrderLogger`.

Energies are in eV (total per cell and per atom), time in fs, temperature in K.

Both carry the expansion's summary (:mod:`ase_bodyorder.summary`); files written before
it, which named the average E^(n)/N ``body_order_energies_per_atom`` (``..._eV`` in the
ASE log), are read with the current names (:data:`~ase_bodyorder.summary.LEGACY_KEYS`).

The files may be read while they grow: only complete records count. A last line
without its newline is still being written (or was cut off) and is ignored, and so is
a row with fewer values than the others (or than the property file's header names).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError
from ..runs import EXTRAS_HEADER, complete_lines, parse_numbers, read_ipi_extras
from ..summary import EXTRAS_SCALAR_KEYS, current_key, logged_key

__all__ = ["BodyOrderTrace", "read_ase_log", "read_ipi_extras", "read_ipi_properties", "read_run"]

_COLUMN = re.compile(r"#\s*(?:column|cols\.)\s+(\d+)(?:-(\d+))?\s*-->\s*([^\s:]+)")
_PS_TO_FS = 1000.0


@dataclass
class BodyOrderTrace:
    """Body-order statistics of the monitored frames of a trajectory.

    ``step``, ``time_fs``: per monitored frame; ``energies_eV`` (F, K) per cell,
    ``energies_per_atom_eV`` (F, K; the average E^(n)/N), ``shares`` (F, K; first column
    NaN), ``residual_eV`` (F,); ``properties`` holds the thermodynamic columns of every
    step (``step``, ``time_fs``, ``temperature_K``, ``potential_eV``, ``conserved_eV``
    where available).

    Atom-sampled expansions (``sample_atoms``) give estimates; where the records carry
    their standard errors, ``energies_per_atom_stderr_eV`` (F, K; eV/atom) and
    ``residual_stderr_eV`` (F,; eV per cell) hold them (zeros for frames expanded in
    full), else they are None.
    """

    step: np.ndarray
    time_fs: np.ndarray
    energies_eV: np.ndarray
    energies_per_atom_eV: np.ndarray
    shares: np.ndarray
    residual_eV: np.ndarray
    properties: dict[str, np.ndarray] = field(default_factory=dict)
    source: str = ""
    energies_per_atom_stderr_eV: np.ndarray | None = None
    residual_stderr_eV: np.ndarray | None = None

    @property
    def max_order(self) -> int:
        return self.energies_eV.shape[1] if self.energies_eV.ndim == 2 else 0

    def __len__(self) -> int:
        return len(self.step)

    def from_step(self, first: int) -> BodyOrderTrace:
        """The frames (and thermodynamic rows) at i-PI steps ``>= first``: the trace
        after an equilibration period of ``first`` steps."""
        keep = self.step >= first
        rows = None
        if "step" in self.properties:
            rows = np.asarray(self.properties["step"]) >= first
        properties = {
            key: (np.asarray(value)[rows] if rows is not None else value)
            for key, value in self.properties.items()
        }

        def cut(array: np.ndarray | None) -> np.ndarray | None:
            return None if array is None else array[keep]

        return replace(
            self,
            step=self.step[keep],
            time_fs=self.time_fs[keep],
            energies_eV=self.energies_eV[keep],
            energies_per_atom_eV=self.energies_per_atom_eV[keep],
            shares=self.shares[keep],
            residual_eV=self.residual_eV[keep],
            properties=properties,
            energies_per_atom_stderr_eV=cut(self.energies_per_atom_stderr_eV),
            residual_stderr_eV=cut(self.residual_stderr_eV),
        )


def read_ipi_properties(
    path: str | os.PathLike[str], columns: list[str] | None = None
) -> dict[str, np.ndarray]:
    """Columns of an i-PI property file, named as in its header (``name{unit}``), plus
    ``time_fs``, ``temperature_K``, ``potential_eV``, ``conserved_eV`` aliases when the
    file has them in picosecond / kelvin / electronvolt.

    ``columns``: the names to use when the file has no header (i-PI writes none when it
    continues a run from a checkpoint). Rows with fewer values than the header names
    (or than the widest row) are incomplete and dropped.
    """
    path = Path(path)
    if not path.exists():
        raise BodyOrderError(f"no property file {path}")
    names = dict(enumerate(columns or ()))
    header_width = 0  # the columns the file's header names (its last column's number)
    data = []
    for number, line in enumerate(complete_lines(path), start=1):
        if line.startswith("#"):
            match = _COLUMN.search(line)
            if match:
                names[int(match.group(1)) - 1] = match.group(3)
                header_width = max(header_width, int(match.group(2) or match.group(1)))
            continue
        if line.strip():
            data.append(parse_numbers(line, path, number))
    expected = header_width or len(columns or ())
    width = max([expected, *(len(r) for r in data)])
    array = np.array([r for r in data if len(r) == width], dtype=float).reshape(-1, width)
    out = {}
    for column, raw in sorted(names.items()):
        if column < width:
            out[raw] = array[:, column]
    aliases = {
        "time{picosecond}": ("time_fs", _PS_TO_FS),
        "temperature{kelvin}": ("temperature_K", 1.0),
        "potential{electronvolt}": ("potential_eV", 1.0),
        "conserved{electronvolt}": ("conserved_eV", 1.0),
    }
    for raw, (alias, factor) in aliases.items():
        if raw in out:
            out[alias] = out[raw] * factor
    if "step" in out:
        out["step"] = out["step"].astype(int)
    return out


_SCALAR_KEYS = frozenset(EXTRAS_SCALAR_KEYS)


def _input_property_names(run_dir: Path) -> list[str] | None:
    """``name{unit}`` of each property column, from the run's own ``input.xml``."""
    path = run_dir / "input.xml"
    if not path.exists():
        return None
    element = ET.parse(path).getroot().find("output/properties")
    if element is None or element.text is None:
        return None
    return [name.strip() for name in element.text.strip("[] \n").split(",")]


def _split_columns(keys: list[str], values: np.ndarray) -> dict[str, np.ndarray]:
    """Split i-PI's horizontally stacked extras into per-key arrays.

    Scalar keys take one column; every other key takes K columns, with K inferred from
    the width.
    """
    n_scalar = sum(k in _SCALAR_KEYS for k in keys)
    n_list = len(keys) - n_scalar
    width = values.shape[1]
    max_order = (width - n_scalar) // n_list if n_list else 1
    if n_list and n_scalar + n_list * max_order != width:
        raise BodyOrderError(f"extras columns {keys} do not divide into {width} values")
    out: dict[str, np.ndarray] = {}
    start = 0
    for key in keys:
        size = 1 if key in _SCALAR_KEYS else max_order
        out[key] = values[:, start : start + size]
        start += size
    return out


def _first_header(path: Path) -> str:
    with open(path) as handle:
        return next((line for line in handle if EXTRAS_HEADER.search(line)), "")


def read_run(
    run_dir: str | os.PathLike[str], *, prefix: str = "simulation", bead: int = 0
) -> BodyOrderTrace:
    """Read an i-PI run directory (property file and body-order extras of one bead).

    Every ``PREFIX.*_<bead>`` extras file with ``body_order_*`` keys is read; frames are
    matched by step and only the frames where the expansion was computed are kept.
    """
    run_dir = Path(run_dir)
    properties = read_ipi_properties(run_dir / f"{prefix}.out", _input_property_names(run_dir))
    by_key: dict[str, dict[int, np.ndarray]] = {}
    bead_file = re.compile(rf"{re.escape(prefix)}\..+_0*{bead}")
    for path in sorted(p for p in run_dir.iterdir() if bead_file.fullmatch(p.name)):
        try:
            keys, extras_steps, values = read_ipi_extras(path)
        except BodyOrderError:
            if "body_order" in _first_header(path):
                raise
            continue  # another extras trajectory, not numbers: not ours
        if not keys or not all(k.startswith("body_order") for k in keys) or not len(extras_steps):
            continue
        for key, array in _split_columns(keys, values).items():
            by_key[key] = dict(zip(extras_steps.tolist(), array, strict=True))
    if "body_order_energies" not in by_key:
        raise BodyOrderError(f"no body_order_energies extras ({prefix}.*_{bead}) in {run_dir}")
    steps = sorted(set.intersection(*(set(v) for v in by_key.values())))
    if "body_order_computed" in by_key:
        steps = [s for s in steps if by_key["body_order_computed"][s][0] > 0.5]
    k = len(next(iter(by_key["body_order_energies"].values())))

    def column(key: str, width: int) -> np.ndarray:
        if key not in by_key:
            return np.full((len(steps), width), np.nan)
        return np.array([by_key[key][s] for s in steps], dtype=float).reshape(len(steps), width)

    step = np.array(steps, dtype=int)
    reference = properties.get("step", step)
    time_fs = np.interp(step, reference, properties.get("time_fs", np.zeros(len(reference))))
    return BodyOrderTrace(
        step=step,
        time_fs=time_fs,
        energies_eV=column("body_order_energies", k),
        energies_per_atom_eV=column("body_order_energies_per_atom_mean", k),
        shares=column("body_order_shares", k),
        residual_eV=column("body_order_residual", 1)[:, 0],
        properties=properties,
        source=str(run_dir),
        energies_per_atom_stderr_eV=(
            column("body_order_energies_per_atom_stderr", k)
            if "body_order_energies_per_atom_stderr" in by_key
            else None
        ),
        residual_stderr_eV=(
            column("body_order_residual_stderr", 1)[:, 0]
            if "body_order_residual_stderr" in by_key
            else None
        ),
    )


def read_ase_log(path: str | os.PathLike[str]) -> BodyOrderTrace:
    """Read the JSON-lines log written by :class:`~ase_bodyorder.monitor.BodyOrderLogger`.

    A last line without its newline is still being written and is ignored; a complete
    line that is not a JSON object is an error.
    """
    path = Path(path)
    if not path.exists():
        raise BodyOrderError(f"no body-order log {path}")
    records = []
    for number, line in enumerate(complete_lines(path), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise BodyOrderError(f"{path}, line {number}: not a JSON record of BodyOrderLogger")
        records.append({current_key(key): value for key, value in record.items()})
    frames = [r for r in records if r.get("body_order_energies_eV") is not None]
    if not frames:
        raise BodyOrderError(f"{path} holds no body-order frames")

    def stack(key: str) -> np.ndarray:
        rows = [r[key] if isinstance(r[key], list) else [r[key]] for r in frames]
        array = np.array([[np.nan if v is None else v for v in row] for row in rows], float)
        return array if isinstance(frames[0][key], list) else array[:, 0]

    def optional(key: str, width: int) -> np.ndarray | None:
        """Stacked values of a key some records may lack (NaN there), or None."""
        if not any(key in r for r in frames):
            return None
        rows = []
        for r in frames:
            value = r.get(key)
            row = value if isinstance(value, list) else [value] * width
            rows.append([np.nan if v is None else v for v in row])
        array = np.array(rows, dtype=float).reshape(len(frames), width)
        return array if width > 1 or isinstance(frames[0].get(key), list) else array[:, 0]

    properties = {
        "step": np.array([r["step"] for r in records], dtype=int),
        "time_fs": np.array([r["time_fs"] for r in records], dtype=float),
        "temperature_K": np.array([r["temperature_K"] for r in records], dtype=float),
        "potential_eV": np.array([r["potential_eV"] for r in records], dtype=float),
        "conserved_eV": np.array([r["conserved_eV"] for r in records], dtype=float),
    }
    return BodyOrderTrace(
        step=np.array([r["step"] for r in frames], dtype=int),
        time_fs=stack("time_fs"),
        energies_eV=stack("body_order_energies_eV"),
        energies_per_atom_eV=stack(logged_key("body_order_energies_per_atom_mean")),
        shares=stack("body_order_shares"),
        residual_eV=stack("body_order_residual_eV"),
        properties=properties,
        source=str(path),
        energies_per_atom_stderr_eV=optional(
            "body_order_energies_per_atom_stderr_eV", len(frames[0]["body_order_energies_eV"])
        ),
        residual_stderr_eV=optional("body_order_residual_stderr_eV", 1),
    )
