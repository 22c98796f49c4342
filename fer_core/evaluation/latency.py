"""Classifier latency, measured the same way by the benchmark and by the model card."""

from __future__ import annotations

import time

import numpy as np

from fer_core.labels import INPUT_SIZE


def measure_classifier_latency(
    model,
    batch_size: int = 1,
    repeats: int = 300,
    warmup: int = 30,
    seed: int = 0,
    max_seconds: float | None = None,
) -> dict:
    """Median and p90 milliseconds per call, and per face, for ``model.predict_faces``.

    ``max_seconds``: stop warming up and measuring when that much time has passed (at least 5
    calls are timed); ``repeats`` then says how many were. A Keras model on a busy CPU took
    minutes for 300 calls: the Training page's evaluation ran 166 s with no progress."""
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (batch_size, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds
    for _ in range(warmup):
        model.predict_faces(crops)
        if deadline is not None and time.perf_counter() > deadline - (max_seconds or 0.0) / 2:
            break  # half the budget at most for warming up
    timed: list[float] = []
    for index in range(repeats):
        started = time.perf_counter()
        model.predict_faces(crops)
        timed.append(time.perf_counter() - started)
        if deadline is not None and index >= 4 and time.perf_counter() > deadline:
            break
    times = np.asarray(timed)
    repeats = len(times)
    median = float(np.median(times) * 1e3)
    p90 = float(np.percentile(times, 90) * 1e3)
    return {
        "backend": getattr(model, "backend", "?"),
        "batch_size": batch_size,
        "repeats": repeats,
        "median_ms": median,
        "p90_ms": p90,
        "median_ms_per_face": median / batch_size,
        "p90_ms_per_face": p90 / batch_size,
    }
