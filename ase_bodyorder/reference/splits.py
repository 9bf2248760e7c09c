"""The train/validation/test splits of a cluster data set, as fragment data needs them.

A split file (``{dataset}_split.json`` of :func:`~.pipeline.export_dataset`) names the
clusters of each part by their index in the data set (``atoms.info["index"]``).
Fragments (:mod:`.fragments`) are cut from ``train`` clusters only: fragments of
validation or test clusters would leak the held-out clusters' sub-cluster energies into
training. Positions in Angstrom.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import ase.io
import numpy as np
from ase import Atoms

from ..expansion import BodyOrderError

__all__ = [
    "check_split_clusters",
    "cluster_index",
    "read_split",
    "split_part_indices",
    "train_clusters",
]


def cluster_index(atoms: Atoms) -> int:
    """A cluster's index in its data set (``atoms.info["index"]``); one line if it has none."""
    if "index" not in atoms.info:
        raise BodyOrderError(
            "a cluster has no info['index'] (its index in the data set); read clusters "
            "from the file written by `ase-bodyorder reference sample`"
        )
    return int(atoms.info["index"])


def read_split(path) -> dict:
    """A split file (``{dataset}_split.json`` of :func:`~.pipeline.export_dataset`)."""
    path = Path(path)
    try:
        split = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise BodyOrderError(f"split file {path} is not JSON: {error}") from None
    if not isinstance(split, dict):
        raise BodyOrderError(f"split file {path} holds no split (a JSON object is expected)")
    split_part_indices(split, source=str(path))  # checks the parts
    return split


def split_part_indices(split: dict, *, source: str = "the split") -> dict[str, list[int]]:
    """``{"train": [...], "validation": [...], "test": [...]}`` of a split.

    Accepts the split file's layout (``files.{part}.indices``) or the plain one of
    :func:`~.pipeline.split_indices`. The train part must exist and the parts must be
    disjoint.
    """
    files = split.get("files")
    parts = {}
    for part in ("train", "validation", "test"):
        if isinstance(files, dict):
            entry = files.get(part)
            indices = entry.get("indices") if isinstance(entry, dict) else None
        else:
            indices = split.get(part)
        if indices is not None:
            parts[part] = [int(i) for i in indices]
    if not parts.get("train"):
        raise BodyOrderError(f"{source} has no train indices")
    seen: dict[int, str] = {}
    for part, indices in parts.items():
        for i in indices:
            if i in seen and seen[i] != part:
                raise BodyOrderError(
                    f"{source} is inconsistent: cluster {i} is in both {seen[i]} and {part}"
                )
            seen[i] = part
    return parts


def train_clusters(
    clusters: Sequence[Atoms],
    split: dict,
    *,
    count: int | None = None,
    indices: Iterable[int] | None = None,
) -> list[Atoms]:
    """The training clusters of ``split`` to cut fragments from.

    ``count``: the first ``count`` train indices of the split (sorted as in the split);
    ``indices``: explicit cluster indices, each of which must be a train index (a
    validation or test index, or one outside the split, is an error naming it). Exactly
    one of them. Clusters are matched by ``atoms.info["index"]``.
    """
    parts = split_part_indices(split)
    train = parts["train"]
    if (count is None) == (indices is None):
        raise BodyOrderError("give either a count of train clusters or their indices")
    if count is not None:
        if not 1 <= count <= len(train):
            raise BodyOrderError(
                f"--count must be between 1 and the {len(train)} train clusters of the split, "
                f"got {count}"
            )
        wanted = train[:count]
    else:
        wanted = [int(i) for i in indices]
        allowed = set(train)
        for i in wanted:
            if i not in allowed:
                part = next((p for p, idx in parts.items() if i in idx), None)
                where = f"a {part} cluster" if part else "not in the split"
                raise BodyOrderError(
                    f"cluster {i} is {where}: fragments are cut from train clusters only"
                )
    by_index = {}
    for atoms in clusters:
        by_index.setdefault(cluster_index(atoms), atoms)
    missing = [i for i in wanted if i not in by_index]
    if missing:
        raise BodyOrderError(
            f"{len(missing)} train clusters of the split are not in the cluster file, "
            f"e.g. index {missing[0]}"
        )
    return [by_index[i] for i in wanted]


def check_split_clusters(clusters: Sequence[Atoms], split: dict, split_file) -> int:
    """Check that ``clusters`` are the clusters the split was made from.

    The split's train file (``files.train.file``, next to ``split_file``), when present,
    holds the train clusters: each of ``clusters`` found there by index must have the
    same species and positions (to 1e-6 Angstrom), so that a cluster file of another
    density or sampling is not cut under this split. Returns how many were compared.
    """
    files = split.get("files")
    entry = files.get("train") if isinstance(files, dict) else None
    name = entry.get("file") if isinstance(entry, dict) else None
    if not name:
        return 0
    train_file = Path(split_file).parent / name
    if not train_file.exists():
        return 0
    reference = {}
    for frame in ase.io.read(train_file, ":"):
        if "index" in frame.info:
            reference[int(frame.info["index"])] = frame
    compared = 0
    for atoms in clusters:
        index = cluster_index(atoms)
        frame = reference.get(index)
        if frame is None:
            continue
        same = np.array_equal(frame.numbers, atoms.numbers) and np.allclose(
            frame.positions, atoms.positions, rtol=0.0, atol=2e-6
        )
        if not same:
            raise BodyOrderError(
                f"cluster {index} differs from frame {index} of the split's train file "
                f"{train_file}: the cluster file is not the one this split was made from"
            )
        compared += 1
    return compared
