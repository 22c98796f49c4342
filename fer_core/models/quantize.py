"""Full-integer (int8) LiteRT export, shipped only when PublicTest says it costs little.

``fer export MODEL --int8`` makes the float LiteRT model and an int8 one (activation ranges
from 1,000 Training faces, every class represented), scores both on PublicTest as users get
them (the card's flip averaging, the labels the model was trained for: FER+'s clear majority
for a crowd model when ``$FERPLUS_PATH`` is set, else FER2013's), and keeps the int8 file as
``<model>.tflite`` only if it loses at most ``max_loss`` accuracy. PrivateTest is not read.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np

from fer_core.data.fer2013 import load_fer2013, stratified_subset
from fer_core.data.ferplus import FerPlus, aligned, load_ferplus
from fer_core.errors import ConfigError
from fer_core.models.card import ModelCard, read_card
from fer_core.models.inference import (
    _LiteRTRunner,
    export_litert_int8,
    file_sha256,
    litert_path_for,
)
from fer_core.storage import read_json, write_json

REPRESENTATIVE_FACES = 1000


def _accuracy(runner: _LiteRTRunner, images: np.ndarray, labels: np.ndarray, flip: bool) -> float:
    batch = images.astype(np.float32)[..., None]
    probs = np.concatenate([runner(batch[i : i + 64]) for i in range(0, len(batch), 64)])
    if flip:
        mirrored = np.ascontiguousarray(batch[:, :, ::-1])
        probs = probs + np.concatenate(
            [runner(mirrored[i : i + 64]) for i in range(0, len(batch), 64)]
        )
    return float(np.mean(probs.argmax(axis=1) == labels))


def _median_ms(runner: _LiteRTRunner, face: np.ndarray, repeats: int = 300) -> float:
    batch = face.astype(np.float32)[None, ..., None]
    runner(batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        runner(batch)
        times.append(time.perf_counter() - started)
    return float(np.median(times) * 1000)


def _selection_labels(dataset, card: ModelCard | None, labels_choice: str | None = None):
    """PublicTest images and the labels the model is judged by there (``labels_choice``, else
    what its card says it learned)."""
    images, labels = dataset.split("PublicTest")
    trained = labels_choice or (card.trained_labels if card else None)
    path = os.environ.get("FERPLUS_PATH")
    if trained and trained != "fer2013":
        if not path:
            raise ConfigError("Judging by the crowd needs FER+'s votes: set FERPLUS_PATH.")

        votes = aligned(load_ferplus(path, dataset), dataset)
        inside = dataset.usage == "PublicTest"
        majority = FerPlus(votes.votes[inside], votes.usage[inside]).clear_majority()
        keep = majority >= 0
        return images[keep], majority[keep], "FER+ majority (clear faces)"
    return images, labels, "FER2013 labels"


def choose_int8(
    model_path,
    data_path,
    *,
    max_loss: float = 0.003,
    record=None,
    labels: str | None = None,
    progress=None,
) -> dict:
    model_path = Path(model_path)
    dataset = load_fer2013(data_path, progress=progress)
    x_train, y_train = dataset.split("Training")
    representative = x_train[stratified_subset(y_train, REPRESENTATIVE_FACES, seed=0)]
    float_path = litert_path_for(model_path)
    candidate = float_path.with_name(float_path.stem + ".int8.tflite")
    export_litert_int8(model_path, representative, candidate)
    card = read_card(model_path)
    flip = card.flip_average if card else False
    images, truth, judged_by = _selection_labels(dataset, card, labels)
    float_runner, int8_runner = _LiteRTRunner(float_path), _LiteRTRunner(candidate)
    float_accuracy = _accuracy(float_runner, images, truth, flip)
    int8_accuracy = _accuracy(int8_runner, images, truth, flip)
    loss = float_accuracy - int8_accuracy
    shipped = loss <= max_loss
    result = {
        "model": model_path.name,
        "split": "PublicTest",
        "judged_by": judged_by,
        "faces": int(len(truth)),
        "flip_average": flip,
        "float_accuracy": float_accuracy,
        "int8_accuracy": int8_accuracy,
        "loss_points": round(100 * loss, 3),
        "max_loss_points": round(100 * max_loss, 3),
        "float_bytes": float_path.stat().st_size,
        "int8_bytes": candidate.stat().st_size,
        "float_batch_1_ms": _median_ms(float_runner, images[0]),
        "int8_batch_1_ms": _median_ms(int8_runner, images[0]),
        "representative_faces": int(len(representative)),
        "shipped": "int8" if shipped else "float32",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if shipped:
        shutil.move(candidate, float_path)
    else:
        candidate.unlink(missing_ok=True)
    result["sha256"] = file_sha256(float_path)
    result["summary"] = (
        f"PublicTest ({judged_by}, {len(truth):,} faces): float {100 * float_accuracy:.2f}%, "
        f"int8 {100 * int8_accuracy:.2f}% ({100 * loss:+.2f} pt loss, allowed "
        f"{100 * max_loss:.2f}); batch 1 {result['float_batch_1_ms']:.3f} ms float, "
        f"{result['int8_batch_1_ms']:.3f} ms int8 -> {float_path.name} is "
        f"{result['shipped']} ({float_path.stat().st_size:,} bytes)"
    )
    if record:
        stored = read_json(record, {}) or {}
        stored[model_path.stem] = result
        write_json(record, stored)
    return result


def litert_quantization(path) -> str | None:
    """ "int8" when the LiteRT model's weights are int8, "float32" otherwise; None: no file."""
    path = Path(path)
    if not path.is_file():
        return None
    runner = _LiteRTRunner(path)
    kinds = {str(np.dtype(d["dtype"])) for d in runner._interpreter.get_tensor_details()}
    return "int8" if "int8" in kinds else "float32"


__all__ = ["choose_int8", "litert_quantization", "export_litert_int8"]
