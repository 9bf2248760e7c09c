"""Which fragments a makeup training set holds: counts, the draw across sizes, the file.

The makeup experiment (``docs/science.md``, section 7) trains on the H8 training clusters
plus fragments (sub-clusters of sizes 1 to 7 cut from training clusters, FCI/STO-6G,
shipped as ``h8-<density>_fragments_fci_sto6g.xyz.gz`` by ``ase-bodyorder reference
fragments``) making up a fraction ``f`` of the structures.

How fragments are drawn (:func:`draw_fragments`):

* ``count = round(n_clusters * f / (1 - f))`` fragments for ``n_clusters`` H8 clusters, so
  that fragments are the fraction ``f`` of the training set's structures;
* the isolated atom first (one frame, whenever ``count >= 1``): it fixes the 1-body term;
* the others spread evenly over sizes 2 to 7 (counts differ by at most one, the extra
  ones going to the smaller sizes), each size drawn uniformly without replacement from
  every fragment of that size in the file. Equal numbers per size give every body order
  the same weight; drawing uniformly over all fragments would give 4-atom fragments
  (70 per parent) 2.5 times the weight of dimers (28 per parent);
* draws of one seed are nested: the fragments of a smaller fraction are a subset of
  those of a larger one, so that fractions differ only by what is added.
"""

from __future__ import annotations

import gzip
import json
from functools import cache
from pathlib import Path

import numpy as np

from ..expansion import BodyOrderError

__all__ = [
    "FRACTIONS",
    "draw_fragments",
    "fragment_count",
    "fragment_frames",
    "fragment_sizes",
    "fragments_path",
]

DATA = Path(__file__).resolve().parent.parent / "data" / "reference"
#: fragment fractions of the makeup experiment
FRACTIONS = (0.0, 0.05, 0.2, 0.5)


def fragments_path(density: str) -> Path:
    """The shipped fragment file (extxyz, gzipped) of the H8 set of one density."""
    return DATA / f"h8-{density}_fragments_fci_sto6g.xyz.gz"


def check_fraction(fraction) -> float:
    """``fraction`` as a float in [0, 1), or a :class:`BodyOrderError` saying why not."""
    try:
        value = float(fraction)
    except (TypeError, ValueError):
        raise BodyOrderError(f"fragment fraction must be a number, got {fraction!r}") from None
    if isinstance(fraction, bool) or not 0.0 <= value < 1.0:
        raise BodyOrderError(f"fragment fraction must be in [0, 1), got {fraction!r}")
    return value


def fragment_count(n_clusters: int, fraction: float) -> int:
    """Number of fragments that make up ``fraction`` of a set with ``n_clusters`` clusters."""
    fraction = check_fraction(fraction)
    return int(round(n_clusters * fraction / (1.0 - fraction)))


def _read_text(path: Path) -> str:
    if not path.is_file():
        raise BodyOrderError(
            f"no fragment file {path}; make it with `ase-bodyorder reference fragments` "
            "(see the README's data section)"
        )
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as handle:
            return handle.read()
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise BodyOrderError(f"cannot read fragment file {path}: {error}") from None


def split_frames(text: str, source: object) -> tuple[str, ...]:
    """The frames of extxyz text as text blocks (copied byte for byte into subsets);
    ``source`` names the file in errors."""
    lines = text.splitlines(keepends=True)
    frames, i = [], 0
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        try:
            count = int(lines[i])
        except ValueError:
            raise BodyOrderError(
                f"{source}: line {i + 1} should be an atom count, got {lines[i].strip()[:40]!r}"
            ) from None
        frames.append("".join(lines[i : i + count + 2]))
        i += count + 2
    return tuple(frames)


@cache
def fragment_frames(path: Path) -> tuple[str, ...]:
    """The frames of a fragment file as extxyz text blocks (copied byte for byte)."""
    return split_frames(_read_text(Path(path)), f"fragment file {path}")


@cache
def fragment_sizes(path: Path) -> np.ndarray:
    """Number of atoms of each frame of a fragment file."""
    return np.array([int(frame.split("\n", 1)[0]) for frame in fragment_frames(Path(path))])


@cache
def fragment_parents(path: Path) -> np.ndarray:
    """The parent cluster index (``parent=`` in the comment line) of each frame."""
    parents = []
    for frame in fragment_frames(Path(path)):
        comment = frame.split("\n", 2)[1]
        found = [word for word in comment.split() if word.startswith("parent=")]
        if not found:
            raise BodyOrderError(f"fragment file {path}: a frame has no parent= ({comment[:60]})")
        parents.append(int(found[0].split("=", 1)[1]))
    return np.array(parents)


def _per_size(count: int, sizes: list[int]) -> dict[int, int]:
    base, extra = divmod(count, len(sizes))
    return {size: base + (k < extra) for k, size in enumerate(sizes)}


def draw_fragments(sizes: np.ndarray, count: int, seed: int) -> list[int]:
    """Indices of ``count`` fragments among frames of ``sizes`` atoms (see the module doc).

    ``sizes``: atoms per frame of the fragment file. Returns sorted frame indices. Nested
    in ``count`` for one seed. A size with fewer fragments than its share is an error.
    """
    sizes = np.asarray(sizes)
    if count < 0:
        raise BodyOrderError(f"fragment count must be non-negative, got {count}")
    if count == 0:
        return []
    atoms = np.flatnonzero(sizes == 1)
    if len(atoms) == 0:
        raise BodyOrderError("the fragment file holds no isolated atom (size 1)")
    chosen = [int(atoms[0])]
    larger = sorted(int(s) for s in set(sizes.tolist()) - {1})
    if count > 1 and not larger:
        raise BodyOrderError("the fragment file holds no fragment larger than one atom")
    rng = np.random.default_rng(int(seed))
    # one permutation per size, drawn in a fixed order whatever the count: nested draws
    order = {size: rng.permutation(np.flatnonzero(sizes == size)) for size in larger}
    for size, wanted in _per_size(count - 1, larger).items():
        if wanted > len(order[size]):
            raise BodyOrderError(
                f"{wanted} fragments of size {size} requested, the file holds {len(order[size])}"
            )
        chosen.extend(int(i) for i in order[size][:wanted])
    return sorted(chosen)


def check_fragment_parents(path: Path, split_file: Path) -> None:
    """Every fragment's parent is a training cluster of ``split_file`` (never a held-out one)."""
    split = json.loads(Path(split_file).read_text(encoding="utf-8"))
    train = set(split["files"]["train"]["indices"])
    parents = set(fragment_parents(path).tolist())
    leaked = sorted(parents - train)
    if leaked:
        raise BodyOrderError(
            f"fragment file {path} holds fragments of clusters {leaked[:5]} that are not "
            f"training clusters of {split_file}"
        )
