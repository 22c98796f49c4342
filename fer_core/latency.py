"""Classifier latency, measured the same way by the benchmark and by the model card."""

from __future__ import annotations

import time

import numpy as np

from .labels import INPUT_SIZE


def measure_classifier_latency(model, batch_size: int = 1, repeats: int = 300,
                               warmup: int = 30, seed: int = 0) -> dict:
    """Median and p90 milliseconds per call, and per face, for ``model.predict_faces``."""
    rng = np.random.default_rng(seed)
    crops = rng.integers(0, 256, (batch_size, INPUT_SIZE, INPUT_SIZE), dtype=np.uint8)
    for _ in range(warmup):
        model.predict_faces(crops)
    times = np.empty(repeats)
    for index in range(repeats):
        started = time.perf_counter()
        model.predict_faces(crops)
        times[index] = time.perf_counter() - started
    median = float(np.median(times) * 1e3)
    p90 = float(np.percentile(times, 90) * 1e3)
    return {"backend": getattr(model, "backend", "?"), "batch_size": batch_size,
            "repeats": repeats, "median_ms": median, "p90_ms": p90,
            "median_ms_per_face": median / batch_size, "p90_ms_per_face": p90 / batch_size}
