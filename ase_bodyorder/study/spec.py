"""Training specs of the study, their cache keys, and the learning-curve plan."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import ase.io
import numpy as np

from ..expansion import BodyOrderError
from ..io import sha256_file
from ..training.mace import MACESettings
from ..training.metatrain import MetatrainSettings
from ..training.recipes import H_ATOM_STO6G_EV, pet_h8, soap_bpnn_h8
from .fragments import (
    check_fraction,
    check_fragment_parents,
    draw_fragments,
    fragment_count,
    fragment_sizes,
    fragments_path,
)

__all__ = [
    "ARCHITECTURES",
    "DENSITIES",
    "TrainingSpec",
    "fit_power_law",
    "learning_curve_specs",
    "study_settings",
]

ARCHITECTURES = ("pet", "soap-bpnn", "mace")
DENSITIES = ("high", "low")
DATA = Path(__file__).resolve().parent.parent / "data" / "reference"


#: learning-rate schedule and early stopping of the study's MACE recipe: the rate halves
#: after 10 epochs without a better validation loss, training stops after 30
_MACE_SCHEDULE = {"scheduler_patience": 10, "lr_factor": 0.5, "patience": 30, "ema": None}


def study_settings(architecture: str) -> MetatrainSettings | MACESettings:
    """The study's recipe for one architecture (1-body baseline: the exact STO-6G H atom).

    The same recipe serves both densities and every training-set size, so that learning
    curves and architectures compare like with like. PET and SOAP-BPNN: the shipped
    H8 recipes (:mod:`~ase_bodyorder.training.recipes`) for 300 epochs.
    """
    if architecture == "mace":
        return MACESettings(
            r_max=4.5,
            num_interactions=2,
            hidden_irreps="32x0e+32x1o",
            correlation=2,
            max_L=1,
            max_num_epochs=300,
            batch_size=16,
            lr=0.01,
            E0s={1: H_ATOM_STO6G_EV},
            model="ScaleShiftMACE",
            energy_weight=10.0,
            forces_weight=100.0,
            extra_args=dict(_MACE_SCHEDULE),
        )
    if architecture == "pet":
        return pet_h8(300)
    if architecture == "soap-bpnn":
        return soap_bpnn_h8(300)
    raise BodyOrderError(
        f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
    )


def _merged(base, override):
    """``override`` on top of ``base``; dictionaries merge key by key, recursively."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for key, value in override.items():
            out[key] = _merged(base.get(key), value)
        return out
    return override


def _with(settings, overrides: dict, seed: int):
    """``settings`` with ``overrides`` applied and the seed set (unknown keys: an error).

    Dictionary settings merge: ``{"extra_args": {"patience": 5}}`` changes MACE's
    patience and keeps the rest of the recipe's schedule; ``extra_hypers`` of metatrain
    keeps the atomic baseline unless it is overridden itself."""
    data = settings.to_dict()
    unknown = sorted(set(overrides) - set(data))
    if unknown:
        raise BodyOrderError(
            f"unknown {type(settings).__name__} setting(s) {', '.join(map(repr, unknown))}"
        )
    if "seed" in overrides:
        raise BodyOrderError(
            "'seed' is not a setting override: give seeds with --seeds (the seed draws the "
            "training set and seeds the trainer)"
        )
    data = _merged(data, overrides)
    data["seed"] = seed
    return type(settings).from_dict(data)


@cache
def _file_hash(path: Path) -> str:
    return sha256_file(path)


def _fragment_file_hash(path: Path) -> str:
    if not path.is_file():
        raise BodyOrderError(
            f"no fragment file {path}; make it with `ase-bodyorder reference fragments` "
            "(README, 'Reference data')"
        )
    return _file_hash(path)


def check_architecture(architecture: str) -> str:
    """``architecture`` if the study knows it, else a :class:`BodyOrderError` naming the
    known ones."""
    if architecture not in ARCHITECTURES:
        raise BodyOrderError(
            f"unknown architecture {architecture!r}; known: {', '.join(ARCHITECTURES)}"
        )
    return architecture


def check_density(density: str) -> str:
    """``density`` if the study has an H8 set of it, else a :class:`BodyOrderError`."""
    if density not in DENSITIES:
        raise BodyOrderError(f"unknown density {density!r}; known: {', '.join(DENSITIES)}")
    return density


@cache
def split_size(density: str, part: str = "train") -> int:
    """Number of structures in a shipped split (``train``, ``validation``, ``test``) of the
    H8 set of a density."""
    return len(ase.io.read(split_path(density, part), index=":"))


def split_path(density: str, part: str) -> Path:
    """Shipped split file of the H8 set of one density (``train``, ``validation``, ``test``)."""
    return DATA / f"h8-{density}_{part}.xyz"


@dataclass(frozen=True)
class TrainingSpec:
    """One model of a study: which architecture, on how many structures, seed, settings.

    The training set is ``size`` structures of the shipped H8 training split of
    ``density``, drawn with ``seed`` (the same seed also seeds the trainer); validation
    and test sets are the shipped ones, the same for every spec. ``overrides`` change
    fields of the architecture's :func:`study_settings`. ``fragment_fraction``: the
    fraction of the training set's structures that are fragments of training clusters
    (the makeup experiment; drawn as :mod:`ase_bodyorder.study.fragments` describes);
    0 (the default) is the plain H8 training set, with the key it always had.
    """

    architecture: str
    density: str
    size: int
    seed: int = 0
    overrides: dict = field(default_factory=dict)
    fragment_fraction: float = 0.0

    def __post_init__(self):
        check_architecture(self.architecture)
        check_density(self.density)
        for name in ("size", "seed"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise BodyOrderError(f"{name} must be an integer, got {value!r}")
        if self.size < 1:
            raise BodyOrderError(f"training-set size must be positive, got {self.size}")
        if self.seed < 0:
            raise BodyOrderError(f"seed must be non-negative, got {self.seed}")
        if not isinstance(self.overrides, dict):
            raise BodyOrderError(f"overrides must be a dict, got {self.overrides!r}")
        object.__setattr__(self, "fragment_fraction", check_fraction(self.fragment_fraction))
        self.settings()  # unknown or invalid settings fail now, not in the trainer

    def settings(self) -> MetatrainSettings | MACESettings:
        """The resolved trainer settings (recipe, overrides, seed)."""
        return _with(study_settings(self.architecture), self.overrides, int(self.seed))

    def files(self) -> dict[str, Path]:
        return {part: split_path(self.density, part) for part in ("train", "validation", "test")}

    def training_indices(self) -> list[int]:
        """Indices into the training split that make up this spec's training set."""
        pool = split_size(self.density)
        if self.size > pool:
            raise BodyOrderError(
                f"training-set size {self.size} exceeds the {pool} structures of "
                f"{split_path(self.density, 'train')}"
            )
        order = np.random.default_rng(int(self.seed)).permutation(pool)
        return sorted(order[: self.size].tolist())

    def fragment_indices(self) -> list[int]:
        """Indices into :func:`~.fragments.fragments_path` of this spec's fragments
        (empty without fragments)."""
        count = fragment_count(self.size, self.fragment_fraction)
        if count == 0:
            return []
        path = fragments_path(self.density)
        check_fragment_parents(path, DATA / f"h8-{self.density}_split.json")
        return draw_fragments(fragment_sizes(path), count, int(self.seed))

    def identity(self) -> dict:
        """Everything the trained model depends on (hashed into :attr:`key`)."""
        identity = {
            "architecture": self.architecture,
            "density": self.density,
            "size": int(self.size),
            "seed": int(self.seed),
            "data_sha256": {part: _file_hash(path) for part, path in self.files().items()},
            "settings": self.settings().to_dict(),
        }
        if self.fragment_fraction > 0:
            path = fragments_path(self.density)
            identity["fragments"] = {
                "fraction": self.fragment_fraction,
                "count": fragment_count(self.size, self.fragment_fraction),
                "file": path.name,
                "sha256": _fragment_file_hash(path),
                "draw": "atom once, the rest evenly over sizes 2-7, nested per seed",
            }
        return identity

    @property
    def key(self) -> str:
        """Readable, unique cache key: ``{arch}-{density}-n{size}-s{seed}[-f{fraction}]-{hash}``."""
        text = json.dumps(self.identity(), sort_keys=True, default=str)
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        makeup = f"-f{self.fragment_fraction:g}" if self.fragment_fraction > 0 else ""
        return f"{self.architecture}-{self.density}-n{self.size}-s{self.seed}{makeup}-{digest}"

    def to_dict(self) -> dict:
        data = {
            "architecture": self.architecture,
            "density": self.density,
            "size": int(self.size),
            "seed": int(self.seed),
            "overrides": self.overrides,
        }
        if self.fragment_fraction > 0:
            data["fragment_fraction"] = self.fragment_fraction
        return data


def _int_list(values, what: str) -> list[int]:
    out = []
    for value in values:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise BodyOrderError(f"{what} must be integers, got {value!r}") from None
        if isinstance(value, float) and value != number or isinstance(value, bool):
            raise BodyOrderError(f"{what} must be integers, got {value!r}")
        out.append(number)
    if not out:
        raise BodyOrderError(f"{what}: none given")
    return out


def learning_curve_specs(
    architectures: Sequence[str] = ARCHITECTURES,
    densities: Sequence[str] = DENSITIES,
    sizes: Sequence[int] = (50, 100, 200, 400, 800),
    seeds: Sequence[int] = (0, 1, 2),
    overrides: dict | None = None,
) -> list[TrainingSpec]:
    """Specs of the learning curves: every size with the first seed, the largest size with
    every seed (error bars). Per architecture and density: the largest size with the first
    seed (the final model), then the smaller sizes from the smallest up, then the largest
    size with the other seeds.

    Every input is checked (architecture, density, sizes within the training split,
    integer seeds) before anything is trained.
    """
    sizes = sorted(set(_int_list(sizes, "sizes")), reverse=True)
    seeds = list(dict.fromkeys(_int_list(seeds, "seeds")))
    specs = []
    for architecture in architectures:
        check_architecture(architecture)
    for density in densities:
        pool = split_size(check_density(density))
        if sizes[0] > pool:
            raise BodyOrderError(
                f"training-set size {sizes[0]} exceeds the {pool} structures of "
                f"{split_path(density, 'train')}"
            )
    # the final model first, then the curve from the smallest size, then the extra seeds
    plan = [(sizes[0], seeds[0])] + [(n, seeds[0]) for n in sizes[:0:-1]]
    plan += [(sizes[0], seed) for seed in seeds[1:]]
    for architecture in dict.fromkeys(architectures):
        for density in dict.fromkeys(densities):
            for size, seed in plan:
                specs.append(TrainingSpec(architecture, density, size, seed, overrides or {}))
    return specs


def fit_power_law(sizes, errors) -> dict:
    """Least-squares fit of ``error = prefactor * size**slope`` in log-log space.

    Returns ``slope``, ``prefactor`` and ``points`` (the number used); non-positive or
    non-finite errors are left out. Needs two distinct sizes.
    """
    x = np.asarray(sizes, dtype=float)
    y = np.asarray(errors, dtype=float)
    keep = np.isfinite(y) & (y > 0) & (x > 0)
    x, y = x[keep], y[keep]
    if len(np.unique(x)) < 2:
        raise BodyOrderError("a power-law fit needs errors at two or more sizes")
    slope, intercept = np.polyfit(np.log(x), np.log(y), 1)
    return {"slope": float(slope), "prefactor": float(math.exp(intercept)), "points": int(len(x))}
