"""Uncertain faces: a face whose top probability is below the model card's threshold is shown
as "uncertain" with its two leading emotions instead of one confident-looking label.

The threshold is measured, never typed: ``evaluate --write-card`` reads it off the PublicTest
reliability curve of the calibrated probabilities (``fer_core.models.calibration``) and records it as
``calibration.uncertain_below`` in the card. A model without it labels every face plainly.
"""

from __future__ import annotations

import numpy as np

from fer_core.labels import EMOTIONS
from fer_core.models.card import ModelCard

UNCERTAIN = "uncertain"


def threshold_of(model) -> float | None:
    """The uncertainty threshold of an EmotionModel (or a ModelCard): its card's
    ``uncertain_below``; None for a model without a calibrated card."""
    card = model if isinstance(model, ModelCard) else getattr(model, "card", None)
    return card.uncertain_below if card is not None else None


def leading_two(probs) -> tuple[str, str]:
    order = np.argsort(np.asarray(probs, dtype=np.float64))[::-1]
    return EMOTIONS[int(order[0])], EMOTIONS[int(order[1])]


def is_uncertain(probs, threshold: float | None) -> bool:
    return threshold is not None and float(np.max(probs)) < threshold


def short_label(probs, threshold: float | None) -> str:
    """``"happy"``, or ``"uncertain: sad/neutral"`` when the top probability is low."""
    first, second = leading_two(probs)
    return f"{UNCERTAIN}: {first}/{second}" if is_uncertain(probs, threshold) else first


def caption(probs, threshold: float | None) -> str:
    """The label drawn on a face: ``"happy 91%"`` or ``"uncertain: sad 41%/neutral 35%"``."""
    probs = np.asarray(probs, dtype=np.float64)
    first, second = leading_two(probs)
    p1, p2 = probs[EMOTIONS.index(first)], probs[EMOTIONS.index(second)]
    if is_uncertain(probs, threshold):
        return f"{UNCERTAIN}: {first} {p1 * 100:.0f}%/{second} {p2 * 100:.0f}%"
    return f"{first} {p1 * 100:.0f}%"


def uncertainty_columns(probs, threshold: float | None) -> dict:
    """The columns a result row gets: ``uncertain`` (True/False; None without a threshold)
    and ``second`` (the runner-up emotion)."""
    return {
        "uncertain": None if threshold is None else is_uncertain(probs, threshold),
        "second": leading_two(probs)[1],
    }


__all__ = [
    "threshold_of",
    "leading_two",
    "is_uncertain",
    "short_label",
    "caption",
    "uncertainty_columns",
    "UNCERTAIN",
]
