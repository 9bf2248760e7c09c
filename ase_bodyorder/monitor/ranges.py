"""Share ranges seen on a shipped model's training data: what ``watch`` compares against.

The share of order n is ``E^(n) / (E - E^(1))`` (as in the i-PI extras). For a shipped
model, the training structures are known from its ``provenance.json`` (``dataset``:
``data/reference/<dataset>_train.xyz``); their expansion at the run's order and r_mbe
gives, per order, the range a run should stay in. :func:`training_ranges` computes them
once per run directory of ``md`` and caches them there; :func:`read_ranges` reads ranges
given as a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

import ase.io
import numpy as np

from ..decompose import decompose
from ..expansion import BodyOrderError
from ..io import read_json_object, write_json_atomically
from ..models import load_model
from ..runs import MDRun, MDRunError
from .report import check_quantity, share_ranges

if TYPE_CHECKING:
    from ase import Atoms

__all__ = ["read_ranges", "training_ranges", "training_share_ranges"]

_DATA = Path(__file__).resolve().parent.parent / "data"


def training_frames(model_name: str, *, data_dir: Path = _DATA) -> list[Atoms]:
    """The training structures of a shipped model (``BodyOrderError`` for other models)."""
    provenance = data_dir / "models" / model_name / "provenance.json"
    if not provenance.is_file():
        raise BodyOrderError(
            f"no training data is known for model {model_name!r} (only shipped models "
            f"record theirs, in {provenance.parent}/provenance.json); pass ranges explicitly"
        )
    dataset = json.loads(provenance.read_text()).get("dataset")
    path = data_dir / "reference" / f"{dataset}_train.xyz"
    if not dataset or not path.is_file():
        raise BodyOrderError(f"training set {path} of model {model_name!r} is not installed")
    return cast("list[Atoms]", ase.io.read(path, ":"))  # index ":": a list of every frame


def training_share_ranges(
    model_name: str,
    *,
    order: int,
    r_mbe: float | None,
    margin: float = 0.0,
    max_frames: int | None = 200,
    data_dir: Path = _DATA,
    quantity: str = "shares",
) -> dict[int, tuple[float, float]]:
    """Per order n >= 2, ``(min, max)`` of the share on the model's training structures.

    ``quantity="energies_per_atom"``: of E^(n) / N (eV/atom) instead; shares are
    ill-conditioned where E - E^(1) comes close to zero (a model whose isolated-atom
    energy lies inside the range of its per-atom energies).
    Periodic structures are expanded within ``r_mbe`` (Angstrom); clusters are expanded
    in full up to ``order`` (r_mbe only when given). ``max_frames``: an evenly spaced
    subset of the training set (``None``: all). ``margin`` widens each range by that
    fraction of its width.
    """
    check_quantity(quantity)
    frames = training_frames(model_name, data_dir=data_dir)
    if max_frames is not None and len(frames) > max_frames:
        frames = [frames[i] for i in np.linspace(0, len(frames) - 1, max_frames).astype(int)]
    model = load_model(model_name)
    shares = []
    for atoms in frames:
        periodic = bool(atoms.pbc.any())
        if periodic and r_mbe is None:
            raise BodyOrderError("periodic training structures need r_mbe (Angstrom)")
        k = min(order, len(atoms)) if not periodic else order
        result = decompose(atoms, model, max_order=k, r_mbe=r_mbe)
        values = (
            result.shares if quantity == "shares" else np.asarray(result.energies_eV) / len(atoms)
        )
        row = np.full(order, np.nan)
        row[: len(values)] = values
        shares.append(row[None, :])
    return share_ranges(shares, margin=margin)


def read_ranges(path: str | os.PathLike[str]) -> dict[int, tuple[float, float]]:
    """Ranges ``{order: (low, high)}`` from a JSON file ``{"2": [low, high], ...}``."""
    ranges: dict[int, tuple[float, float]] = {}
    for key, value in read_json_object(path, "ranges").items():
        try:
            order, (low, high) = int(key), (float(v) for v in value)
            valid = isinstance(value, list) and order >= 1 and low <= high
        except (TypeError, ValueError):
            valid = False
        if not valid:
            raise BodyOrderError(
                f"ranges file {path}: {key!r}: {value!r} is not order: [low, high] "
                "(an order >= 1, low <= high)"
            )
        ranges[order] = (low, high)
    return ranges


def training_ranges(
    run_dir: Path, quantity: str, *, stream: TextIO | None = None
) -> dict[int, tuple[float, float]]:
    """The ranges of ``quantity`` (``shares`` or ``energies_per_atom``) of a run's model on
    its training data, at the run's order and r_mbe (:func:`training_share_ranges`).

    ``run_dir``: a run directory of ``md`` (its manifest names the model). The ranges
    are computed once and cached in ``run_dir/training_ranges_<quantity>.json``.
    ``stream``: a text stream told what is computed, and the ranges (None: silent).
    """
    if not run_dir.is_dir():
        raise BodyOrderError(
            f"{run_dir} is not a run directory of `md`: pass --ranges FILE, the ranges to "
            "check its frames against"
        )
    cache = run_dir / f"training_ranges_{quantity}.json"
    if cache.is_file():
        return read_ranges(cache)
    try:
        driver = MDRun.load(run_dir).driver
    except FileNotFoundError as error:
        raise BodyOrderError(f"{error}; pass --ranges for runs not made by `md`") from None
    except (MDRunError, ValueError, KeyError, TypeError) as error:  # not a manifest
        raise BodyOrderError(
            f"cannot read the run manifest of {run_dir} ({error}); pass --ranges FILE"
        ) from None
    # a run's order is always recorded (md resolves it); None would be the driver's 3
    order, r_mbe = driver.expansion.order or 3, driver.expansion.r_mbe
    _say(
        stream,
        f"{quantity} of {driver.model} on its training structures (order "
        f"{order}, r_mbe {r_mbe} A) ...",
    )
    ranges = training_share_ranges(driver.model, order=order, r_mbe=r_mbe, quantity=quantity)
    write_json_atomically(cache, {str(k): list(v) for k, v in ranges.items()})
    for n, (low, high) in ranges.items():
        _say(stream, f"  order {n}: {low:+.4f} .. {high:+.4f}")
    return ranges


def _say(stream: TextIO | None, text: str) -> None:
    if stream is not None:
        print(text, file=stream, flush=True)
