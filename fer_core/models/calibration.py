"""Calibration: temperature scaling, the expected calibration error and the reliability curve.

A model outputs probabilities, not logits; ``log p`` is a logit up to a constant per face, so
temperature scaling is ``softmax(log p / T)``. A model trained with label smoothing ``e`` cannot
say more than ``1 - e + e/7``: its probabilities sit on a floor of ``e/7``, which one
temperature cannot undo (the shipped model was too unsure of its sure faces and too sure of its
middling ones: ECE 0.030 with or without a temperature). So the floor is first taken off
(``(p - e/7) / (1 - e)``, with ``e`` the training's label smoothing, clipped at a small
``floor``) and then the temperature is applied. ``floor`` and the temperature are fitted on
PublicTest (the split that chooses everything) by minimising the negative log-likelihood;
PrivateTest only reports the result. The uncertainty threshold (``fer_core.recognition.uncertainty``) is
read off the PublicTest reliability curve with the calibrated probabilities.
"""

from __future__ import annotations

import numpy as np

ECE_BINS = 15
_EPS = 1e-12


def apply_temperature(probs: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log(probs) / temperature)`` row by row; temperature 1 returns the input."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0 or temperature == 1.0:
        return probs
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = np.log(np.clip(probs, _EPS, 1.0)) / float(temperature)
    logits -= logits.max(axis=1, keepdims=True)
    scaled = np.exp(logits)
    return scaled / scaled.sum(axis=1, keepdims=True)


def remove_smoothing(probs: np.ndarray, smoothing: float, floor: float) -> np.ndarray:
    """Undo label smoothing ``smoothing`` (``(p - e/7) / (1 - e)``, clipped at ``floor``,
    renormalised); ``smoothing`` 0 returns the input."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0 or not smoothing:
        return probs
    classes = probs.shape[1]
    unsmoothed = np.clip((probs - smoothing / classes) / (1.0 - smoothing), floor, None)
    return unsmoothed / unsmoothed.sum(axis=1, keepdims=True)


def calibrate(probs: np.ndarray, calibration: dict | None) -> np.ndarray:
    """Apply a model card's ``calibration`` section (None or {}: the probabilities as they are)."""
    if not calibration:
        return np.asarray(probs)
    unsmoothed = remove_smoothing(
        probs, float(calibration.get("smoothing") or 0.0), float(calibration.get("floor") or 0.0)
    )
    return apply_temperature(unsmoothed, float(calibration.get("temperature", 1.0)))


def negative_log_likelihood(probs: np.ndarray, labels: np.ndarray) -> float:
    """The mean cross-entropy of ``labels``: class ids (N,), or target distributions (N, 7)
    such as the share of FER+'s raters who chose each emotion."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return float(-np.mean(np.sum(labels * np.log(np.clip(probs, _EPS, 1.0)), axis=1)))
    labels = labels.astype(int)
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(labels)), labels], _EPS, 1.0))))


def fit_temperature(
    probs: np.ndarray, labels: np.ndarray, low: float = 0.05, high: float = 20.0
) -> float:
    """The temperature in [low, high] that minimises the NLL of ``labels`` (a golden-section
    search on log T; the NLL of temperature-scaled logits is unimodal in T)."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels)
    if len(labels) == 0:
        raise ValueError("cannot fit a temperature on no images")

    def loss(log_t: float) -> float:
        return negative_log_likelihood(apply_temperature(probs, float(np.exp(log_t))), labels)

    a, b = np.log(low), np.log(high)
    ratio = (np.sqrt(5.0) - 1) / 2
    c, d = b - ratio * (b - a), a + ratio * (b - a)
    fc, fd = loss(c), loss(d)
    for _ in range(80):
        if fc < fd:
            b, d, fd = d, c, fc
            c = b - ratio * (b - a)
            fc = loss(c)
        else:
            a, c, fc = c, d, fd
            d = a + ratio * (b - a)
            fd = loss(d)
    return float(np.exp((a + b) / 2))


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[dict]:
    """The reliability curve: per equal-width bin of the top probability, its range, how many
    faces fall in it, their mean top probability and how often the top guess is right."""
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels, dtype=int)
    confidence = probs.max(axis=1) if len(probs) else np.zeros(0)
    correct = (probs.argmax(axis=1) == labels) if len(probs) else np.zeros(0, bool)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # Bin i holds (edges[i], edges[i+1]]; a top probability of exactly 0 cannot occur.
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    rows = []
    for i in range(bins):
        members = index == i
        count = int(members.sum())
        rows.append(
            {
                "low": float(edges[i]),
                "high": float(edges[i + 1]),
                "count": count,
                "confidence": float(confidence[members].mean()) if count else None,
                "accuracy": float(correct[members].mean()) if count else None,
            }
        )
    return rows


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """ECE: the count-weighted mean |accuracy - confidence| over ``bins`` equal-width bins of
    the top probability (Guo et al., 2017)."""
    rows = reliability(probs, labels, bins)
    total = sum(row["count"] for row in rows)
    if total == 0:
        return float("nan")
    return float(
        sum(row["count"] * abs(row["accuracy"] - row["confidence"]) for row in rows if row["count"])
        / total
    )


def uncertainty_threshold(
    probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS, right_at_least: float = 0.5
) -> float:
    """The top probability below which a guess is more often wrong than right, read off the
    reliability curve: the lower edge of the lowest bin from which on every (non-empty) bin's
    accuracy is at least ``right_at_least``."""
    rows = [row for row in reliability(probs, labels, bins) if row["count"]]
    threshold = rows[-1]["high"] if rows else 1.0
    for row in reversed(rows):
        if row["accuracy"] < right_at_least:
            break
        threshold = row["low"]
    return float(threshold)


FLOORS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)


def fit_calibration(probs: np.ndarray, labels: np.ndarray, smoothing: float = 0.0) -> dict:
    """The floor (from ``FLOORS``, when ``smoothing`` > 0) and temperature that minimise the
    NLL of ``labels``: ``{"smoothing", "floor", "temperature"}`` for ``calibrate``."""
    best = None
    for floor in FLOORS if smoothing else (0.0,):
        unsmoothed = remove_smoothing(probs, smoothing, floor)
        temperature = fit_temperature(unsmoothed, labels)
        loss = negative_log_likelihood(apply_temperature(unsmoothed, temperature), labels)
        if best is None or loss < best[0]:
            best = (
                loss,
                {"smoothing": float(smoothing), "floor": float(floor), "temperature": temperature},
            )
    assert best is not None  # FLOORS is not empty
    return best[1]


def calibration_report(
    public_probs,
    public_labels,
    test_probs,
    test_labels,
    *,
    smoothing: float = 0.0,
    public_split: str = "PublicTest",
    test_split: str = "PrivateTest",
    bins: int = ECE_BINS,
    fit_probs=None,
    fit_targets=None,
) -> dict:
    """What the model card records: the calibration fitted on ``public_split`` (the training's
    label ``smoothing`` taken off, then a temperature), the uncertainty threshold read there,
    and ECE and reliability on ``test_split`` before and after. ``fit_probs``/``fit_targets``:
    fit the temperature on these instead (a crowd model: PublicTest's vote shares, so that its
    probabilities keep meaning the share of people who would choose each emotion)."""
    fitted = fit_calibration(
        public_probs if fit_probs is None else fit_probs,
        public_labels if fit_targets is None else fit_targets,
        smoothing,
    )
    public_calibrated = calibrate(public_probs, fitted)
    test_calibrated = calibrate(test_probs, fitted)
    return {
        "method": (
            "label smoothing's floor taken off, then temperature scaling of log-probabilities"
            if smoothing
            else "temperature scaling of log-probabilities"
        ),
        "fitted_on": public_split,
        **fitted,
        "bins": bins,
        "uncertain_below": uncertainty_threshold(public_calibrated, public_labels, bins),
        "uncertain_rule": "top probability below which the top guess is right less than half "
        f"the time on {public_split} (calibrated)",
        "public": {
            "split": public_split,
            "n": int(len(public_labels)),
            "nll_before": negative_log_likelihood(public_probs, public_labels),
            "nll_after": negative_log_likelihood(public_calibrated, public_labels),
        },
        "test": {
            "split": test_split,
            "n": int(len(test_labels)),
            "ece_before": expected_calibration_error(test_probs, test_labels, bins),
            "ece_after": expected_calibration_error(test_calibrated, test_labels, bins),
            "reliability_before": reliability(test_probs, test_labels, bins),
            "reliability_after": reliability(test_calibrated, test_labels, bins),
        },
    }


__all__ = [
    "ECE_BINS",
    "apply_temperature",
    "remove_smoothing",
    "calibrate",
    "fit_calibration",
    "fit_temperature",
    "reliability",
    "expected_calibration_error",
    "uncertainty_threshold",
    "calibration_report",
    "negative_log_likelihood",
]
