"""Knowledge distillation's teachers: their averaged probabilities for the training and
validation images, computed once per teacher files and images and cached."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from fer_core.evaluation.reports import predict_probabilities
from fer_core.labels import NUM_CLASSES
from fer_core.models.architectures import load_keras_model
from fer_core.storage import atomic_path
from fer_core.training.config import TrainConfig
from fer_core.training.runs import TEACHER_CACHE, Run


def teacher_probabilities(
    config: TrainConfig, run: Run, images: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The teachers' averaged, flip-averaged probabilities for each named image set.

    Computed once and cached, keyed by the teacher files' and the images' fingerprints: in the
    run folder (``teacher.npz``), so a resumed run reads them back, and in the runs folder's
    ``.teacher_cache/``, so another run with the same teachers and data (another seed, batch
    size or recipe) does not run an expensive teacher again.
    """
    import hashlib

    teachers = list(config.teacher or [])
    digest = hashlib.sha256()
    for item in teachers:
        digest.update(hashlib.sha256(Path(item).read_bytes()).digest())
    for name in sorted(images):
        digest.update(name.encode())
        digest.update(hashlib.sha256(np.ascontiguousarray(images[name]).tobytes()).digest())
    key = digest.hexdigest()
    shared = run.path.parent / TEACHER_CACHE / f"{key}.npz"
    for cache in (run.teacher_cache, shared):
        try:
            with np.load(cache) as stored:
                if str(stored["key"]) != key:
                    continue
                result = {name: stored[name] for name in images}
        except (OSError, KeyError, ValueError):
            continue  # no cache there, or a broken one: recomputed
        if cache == shared:
            _write_teacher_cache(run.teacher_cache, key, result)
        return result
    result = {name: np.zeros((len(x), NUM_CLASSES), np.float64) for name, x in images.items()}
    for item in teachers:
        teacher = load_keras_model(item)
        for name, x in images.items():
            result[name] += predict_probabilities(teacher, x, flip_average=True)
    result = {name: (probs / len(teachers)).astype(np.float32) for name, probs in result.items()}
    _write_teacher_cache(run.teacher_cache, key, result)
    try:
        shared.parent.mkdir(exist_ok=True)
        _write_teacher_cache(shared, key, result)
    except OSError:
        pass  # the run's own copy is enough
    return result


def _write_teacher_cache(path: Path, key: str, result: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            arrays: dict[str, Any] = {"key": np.array(key), **result}
            np.savez(handle, **arrays)


__all__ = ["teacher_probabilities"]
