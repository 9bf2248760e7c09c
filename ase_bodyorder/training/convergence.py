"""How flat a training's validation loss is when it ends: the verdict that shipped models'
provenance and the study's report both record."""

from __future__ import annotations

__all__ = ["FLAT_FRACTION", "FLAT_WINDOW", "convergence"]

#: a validation loss is called flat when its best value improved by less than this
#: fraction over the last :data:`FLAT_WINDOW` epochs of training
FLAT_FRACTION = 0.05
FLAT_WINDOW = 20


def convergence(curve: list[dict], epochs: int | None = None) -> dict:
    """How flat the validation loss is at the end of a training curve.

    ``improvement``: relative drop of the best validation loss over the last
    :data:`FLAT_WINDOW` epochs; ``flat``: below :data:`FLAT_FRACTION`. ``epochs``: the
    number of epochs trained where known (metatrain's final checkpoint holds it); without
    it, the last logged epoch plus the logging interval (exact for mace, which logs every
    epoch, and for metatrain runs whose length is a multiple of its interval).
    """
    points = [
        (e["epoch"], e["validation_loss"]) for e in curve if e.get("validation_loss") is not None
    ]
    if epochs is None:
        step = points[-1][0] - points[-2][0] if len(points) > 1 else 1
        epochs = points[-1][0] + step if points else 0
    before = [loss for epoch, loss in points if epoch < epochs - FLAT_WINDOW]
    if not before:
        return {"epochs": epochs, "improvement": None, "flat": False}
    best_before, best = min(before), min(loss for _, loss in points)
    improvement = (best_before - best) / best_before if best_before > 0 else 0.0
    return {
        "epochs": epochs,
        "improvement": float(improvement),
        "flat": bool(improvement < FLAT_FRACTION),
    }
