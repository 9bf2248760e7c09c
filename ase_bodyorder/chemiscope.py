"""chemiscope datasets of body-order results: look at structures coloured by their atoms'
n-body energies.

:func:`write_chemiscope` writes, through the ``chemiscope`` package's own writer
(:func:`chemiscope.write_input`), one dataset of frames and their
:class:`~ase_bodyorder.decompose.BodyOrderResult`:

* atom properties ``e_i^(n)`` (eV; the model's per-atom n-body terms, NaN for the atoms
  an atom-sampled expansion did not draw) and ``e_i residual`` (eV);
* structure properties ``E^(n)/N`` (eV/atom; estimates for atom-sampled results),
  ``residual/N`` (eV/atom), ``share^(n)`` = E^(n)/(E - E^(1)) for n >= 2 (a ratio, no unit),
  ``E/N`` (eV/atom) and ``N``;
* more properties (``properties``: chemiscope's own property dictionaries, e.g. the
  reference's terms beside the model's, or the step of an MD frame).

``chemiscope`` is the ``chemiscope`` extra (``pip install 'ase-bodyorder[chemiscope]'``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from .decompose import BodyOrderResult
from .expansion import BodyOrderError

__all__ = ["body_order_properties", "check_chemiscope_path", "write_chemiscope"]

#: what a dataset's file name must end with (the chemiscope writer's rule)
SUFFIXES = (".json", ".json.gz")


def check_chemiscope_path(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` if chemiscope can write it (``.json`` or
    ``.json.gz``, in an existing directory), else a one-line ``BodyOrderError``."""
    path = Path(path)
    if not path.name.endswith(SUFFIXES):
        raise BodyOrderError(f"a chemiscope dataset is a .json or .json.gz file, got {path}")
    if not path.parent.is_dir():
        raise BodyOrderError(f"cannot write {path}: directory {path.parent} does not exist")
    return path


def _max_order(results: Sequence[BodyOrderResult]) -> int:
    orders = {r.max_order for r in results}
    if len(orders) != 1:
        raise BodyOrderError(
            f"a chemiscope dataset needs one truncation order for all frames, got {sorted(orders)}"
        )
    return orders.pop()


def _per_atom(result: BodyOrderResult, atoms: Atoms) -> np.ndarray:
    if result.energies_per_atom_eV is None:
        raise BodyOrderError(
            "per-atom body-order terms are missing (a model of total energies only, e.g. an "
            "ASE calculator without per-atom energies): no atom properties to show"
        )
    values = np.asarray(result.energies_per_atom_eV, dtype=float)
    if values.shape != (len(atoms), result.max_order):
        raise BodyOrderError(
            f"per-atom terms of shape {values.shape} for a structure of {len(atoms)} atoms"
        )
    return values


def body_order_properties(
    frames: Sequence[Atoms], results: Sequence[BodyOrderResult], *, source: str = "model"
) -> dict[str, dict[str, Any]]:
    """chemiscope property dictionaries (``target``, ``values``, ``units``,
    ``description``) of the expansions ``results`` of ``frames`` (see the module's
    docstring). ``source`` names what was expanded in the descriptions."""
    if len(frames) != len(results):
        raise BodyOrderError(f"{len(frames)} frames but {len(results)} results")
    if not results:
        raise BodyOrderError("no frames: nothing to write")
    k = _max_order(results)
    per_atom = np.concatenate([_per_atom(r, a) for a, r in zip(frames, results, strict=True)])
    n_atoms = np.array([len(a) for a in frames], dtype=float)
    mean = np.array([_mean_per_atom(r, len(a)) for a, r in zip(frames, results, strict=True)])
    shares = np.array([r.shares for r in results])
    residual_atom = np.concatenate(
        [
            np.full(len(a), np.nan)
            if r.residual_per_atom_eV is None
            else np.asarray(r.residual_per_atom_eV, dtype=float)
            for a, r in zip(frames, results, strict=True)
        ]
    )
    # no "NaN" in a description: chemiscope's viewer reads NaN values by replacing that
    # word everywhere in the file, strings included, and then fails to parse it
    sampled = "no value where the atom was not expanded (atom sampling)"
    estimate = "an estimate where atoms were sampled"
    interaction = "the share of the interaction energy E - E^(1)"
    # name: (target, values, units or None, description)
    table: dict[str, tuple[str, np.ndarray, str | None, str]] = {}
    for n in range(1, k + 1):
        table[f"e_i^({n})"] = ("atom", per_atom[:, n - 1], "eV", f"{n}-body energy of each atom")
        table[f"E^({n})/N"] = ("structure", mean[:, n - 1], "eV/atom", f"{n}-body energy per atom")
        if n > 1:
            table[f"share^({n})"] = ("structure", shares[:, n - 1], None, f"E^({n}), {interaction}")
    residual = np.array([r.residual_eV for r in results]) / n_atoms
    table["e_i residual"] = ("atom", residual_atom, "eV", f"atom energy - its terms up to K = {k}")
    table["residual/N"] = ("structure", residual, "eV/atom", f"E - E^(n) up to K = {k}, per atom")
    energy = np.array([r.energy_eV for r in results]) / n_atoms
    table["E/N"] = ("structure", energy, "eV/atom", "energy per atom of the whole structure")
    properties: dict[str, dict[str, Any]] = {}
    for name, (target, values, units, text) in table.items():
        note = sampled if target == "atom" else estimate
        description = f"{text} ({source}'s expansion truncated at K = {k}; {note})"
        properties[name] = {"target": target, "values": values, "description": description}
        if units is not None:
            properties[name]["units"] = units
    properties["N"] = {"target": "structure", "values": n_atoms, "units": "atoms"}
    properties["N"]["description"] = "number of atoms"
    return properties


_NAN_WORD = re.compile(r"\bNaN\b")


def _no_nan_word(text: str) -> str:
    """``text`` without the word NaN: chemiscope's viewer reads the NaN values of a
    dataset by replacing that word everywhere in the file, strings included."""
    return _NAN_WORD.sub("not-a-number", text)


def _mean_per_atom(result: BodyOrderResult, n_atoms: int) -> np.ndarray:
    if result.energies_per_atom_mean_eV is not None:
        return np.asarray(result.energies_per_atom_mean_eV, dtype=float)
    return np.asarray(result.energies_eV, dtype=float) / n_atoms


def write_chemiscope(
    path: str | os.PathLike[str],
    frames: Sequence[Atoms],
    results: Sequence[BodyOrderResult],
    *,
    name: str,
    description: str = "",
    properties: Mapping[str, Mapping[str, Any]] | None = None,
    color: str | None = None,
    axes: tuple[str, str] | None = None,
    trajectory: bool = False,
) -> Path:
    """Write a chemiscope dataset of ``frames`` and their expansions ``results`` to
    ``path`` (``.json``, or ``.json.gz``: compressed) with :func:`chemiscope.write_input`.

    ``properties``: more chemiscope properties, added to :func:`body_order_properties`'
    (a name used twice is an error). ``color``: the atom property that colours the
    structures (default ``e_i^(3)``, or the highest order below 3); the map shows
    E^(2)/N against E^(3)/N (or E^(1)/N against E^(2)/N) coloured by the residual, or
    the structure properties ``axes`` (x, y). ``trajectory``: frames of one trajectory
    (fixed viewpoint, a line through the map's points). Returns the path.
    """
    path = check_chemiscope_path(path)
    try:
        import chemiscope  # chemiscope (optional)
    except ImportError as error:
        raise ImportError(
            f"writing a chemiscope dataset needs chemiscope: pip install "
            f"'ase-bodyorder[chemiscope]' ({error})"
        ) from None
    all_properties = body_order_properties(frames, results)
    for key, value in (properties or {}).items():
        if key in all_properties:
            raise BodyOrderError(f"property {key!r} is already in the dataset")
        all_properties[key] = dict(value)
        if "description" in value:
            all_properties[key]["description"] = _no_nan_word(str(value["description"]))
    k = _max_order(results)
    color = color or f"e_i^({min(k, 3)})"
    if color not in all_properties or all_properties[color]["target"] != "atom":
        raise BodyOrderError(f"cannot colour atoms by {color!r}: not an atom property")
    x, y = axes or (("E^(2)/N", "E^(3)/N") if k >= 3 else ("E^(1)/N", f"E^({k})/N"))
    for axis in (x, y):
        if axis not in all_properties or all_properties[axis]["target"] != "structure":
            raise BodyOrderError(f"cannot plot {axis!r} on the map: not a structure property")
    settings = chemiscope.quick_settings(
        x=x,
        y=y,
        map_color="residual/N",
        structure_color=color,
        trajectory=trajectory,
        periodic=bool(any(a.pbc.any() for a in frames)),
    )
    chemiscope.write_input(
        str(path),
        structures=list(frames),
        properties=all_properties,
        environments=chemiscope.all_atomic_environments(list(frames)),
        metadata={"name": _no_nan_word(name), "description": _no_nan_word(description)},
        settings=settings,
    )
    return path
