"""Whether the study's trainings ended flat: the verdict of each entry, and the list of
those that did not (:func:`~ase_bodyorder.training.convergence.convergence` judges one
training curve)."""

from __future__ import annotations

from ..training.convergence import FLAT_FRACTION, FLAT_WINDOW, convergence

__all__ = ["FLAT_FRACTION", "FLAT_WINDOW", "convergence", "entry_convergence", "unconverged_lines"]


def entry_convergence(result: dict) -> dict:
    """:func:`convergence` of an entry's training curve; an archived entry without one
    keeps the verdict it was archived with."""
    if result.get("training_curve"):
        return convergence(result["training_curve"], result.get("epochs_trained"))
    return result.get("convergence") or {
        "epochs": result.get("epochs"),
        "improvement": None,
        "flat": False,
    }


def unconverged_lines(table: dict) -> list[str]:
    """One line per trained entry of a learning curve whose validation loss was not flat
    (or could not be judged) when its training ended, with the size of the last drop."""
    lines = []
    for name, group in table.items():
        for row in group["rows"]:
            for seed, verdict in zip(row["seeds"], row["convergence"], strict=True):
                if verdict["flat"]:
                    continue
                if verdict["improvement"] is None:
                    why = "no training curve long enough to judge"
                else:
                    why = (
                        f"best validation loss still fell {verdict['improvement']:.1%} over the "
                        f"last {FLAT_WINDOW} of its {verdict['epochs']} epochs"
                    )
                lines.append(f"- {name}, n={row['size']}, seed {seed}: {why}.")
    return lines
