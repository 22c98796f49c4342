"""Why the model decided: the 48x48 crop it saw and an occlusion-sensitivity map over it.

Occlusion sensitivity (Zeiler & Fergus, 2014): grey out one square of the crop at a time and
see how much the probability of the chosen emotion drops. Regions whose hiding costs the most
are what the decision rests on. It needs only ``predict_faces``, so it explains exactly the
path the app runs (LiteRT or Keras, flip averaging and calibration included), and a bad crop
(a box on a shirt, half a face) shows up as a crop that does not look like a face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fer_core.data.image import encode_png
from fer_core.faces import to_grey
from fer_core.labels import EMOTIONS, INPUT_SIZE
from fer_core.storage import atomic_writer

PATCH = 12
STRIDE = 4
VIEW_SIZE = 192  # the crop and the overlay are shown 4x enlarged


def occlusion_map(
    model, crops: np.ndarray, target: int | None = None, patch: int = PATCH, stride: int = STRIDE
) -> tuple[np.ndarray, int, np.ndarray]:
    """(48, 48) float map in [0, 1]: how much hiding each pixel's neighbourhood lowers the
    probability of ``target`` (default: the predicted emotion), scaled so the largest drop is 1
    (all zeros when no square lowers it). ``crops``: one 48x48 crop, or the (F, 48, 48) crops
    of one face whose probabilities the recognizer averages (its framings): the same square is
    hidden in each and their probabilities averaged, so the map explains that average.
    Returns the map, the target class index and the probabilities explained."""
    crops = np.asarray(crops, dtype=np.uint8)
    if crops.ndim == 2:
        crops = crops[None]
    if crops.ndim != 3 or crops.shape[1:] != (INPUT_SIZE, INPUT_SIZE):
        raise ValueError(f"expected 48x48 crops, got {crops.shape}")
    framings = len(crops)
    base = model.predict_faces(crops).mean(axis=0)
    if target is None:
        target = int(np.argmax(base))
    positions = [
        (y, x)
        for y in range(0, INPUT_SIZE - patch + 1, stride)
        for x in range(0, INPUT_SIZE - patch + 1, stride)
    ]
    batch = np.repeat(crops[:, None], len(positions), axis=1)  # (F, P, 48, 48)
    for index, crop in enumerate(crops):
        fill = np.uint8(round(float(crop.mean())))
        for position, (y, x) in enumerate(positions):
            batch[index, position, y : y + patch, x : x + patch] = fill
    probs = model.predict_faces(batch.reshape(-1, INPUT_SIZE, INPUT_SIZE))
    probs = probs.reshape(framings, len(positions), -1).mean(axis=0)
    drops = float(base[target]) - probs[:, target]
    total = np.zeros((INPUT_SIZE, INPUT_SIZE))
    counts = np.zeros((INPUT_SIZE, INPUT_SIZE))
    for (y, x), drop in zip(positions, drops):
        total[y : y + patch, x : x + patch] += drop
        counts[y : y + patch, x : x + patch] += 1
    heat = np.clip(np.divide(total, counts, out=np.zeros_like(total), where=counts > 0), 0, None)
    peak = heat.max()
    return (heat / peak if peak > 0 else heat), target, base


def enlarge(crop: np.ndarray, size: int = VIEW_SIZE) -> np.ndarray:
    """The grey crop as an RGB image ``size`` pixels wide (nearest neighbour: the pixels the
    model saw, not a smoothed version)."""
    import cv2

    big = cv2.resize(
        np.asarray(crop, dtype=np.uint8), (size, size), interpolation=cv2.INTER_NEAREST
    )
    return np.repeat(big[:, :, None], 3, axis=2)


def overlay(
    crop: np.ndarray, heat: np.ndarray, size: int = VIEW_SIZE, strength: float = 0.5
) -> np.ndarray:
    """The crop with the map on top (red: the decision rests there), RGB, ``size`` wide."""
    import cv2

    grey = enlarge(crop, size)
    heat_big = cv2.resize(
        np.asarray(heat, dtype=np.float32), (size, size), interpolation=cv2.INTER_CUBIC
    )
    coloured = cv2.applyColorMap((np.clip(heat_big, 0, 1) * 255).astype(np.uint8), cv2.COLORMAP_JET)
    coloured = cv2.cvtColor(coloured, cv2.COLOR_BGR2RGB)
    weight = (strength * np.clip(heat_big, 0, 1))[:, :, None]
    return np.round(grey * (1 - weight) + coloured * weight).astype(np.uint8)


def explain_faces(recognizer, rgb: np.ndarray, boxes, eyes=None) -> list[dict]:
    """For each box of an RGB image, through ``recognizer`` (the one that gave the boxes): the
    crops it classifies (``Recognizer.face_crops``: its framings, margin and alignment), the
    occlusion map of the probabilities it averages over them, the emotion explained, and the
    two images to show. The crop shown is the middle framing's (the only one, except for the
    Haar photo preset, which averages the face's box raised, centred and lowered)."""

    if not len(boxes):
        return []
    stacks = recognizer.face_crops(to_grey(rgb), boxes, eyes)  # (framings, faces, 48, 48)
    explanations = []
    for index, box in enumerate(boxes):
        crops = stacks[:, index]
        heat, target, probs = occlusion_map(recognizer.model, crops)
        shown = crops[len(crops) // 2]
        explanations.append(
            {
                "box": tuple(int(v) for v in box),
                "crops": crops,
                "crop": shown,
                "probs": probs,
                "heat": heat,
                "emotion": EMOTIONS[target],
                "crop_image": enlarge(shown),
                "overlay_image": overlay(shown, heat),
            }
        )
    return explanations


def write_explanations(
    recognizer, rgb: np.ndarray, boxes, out_dir: str | Path, stem: str, eyes=None
) -> list[Path]:
    """PNGs for ``fer predict --explain DIR``: per face ``<stem>_face<N>_crop.png`` and
    ``<stem>_face<N>_<emotion>_occlusion.png`` (faces numbered from 1, left to right as
    detected). Written atomically; returns the paths."""

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for number, item in enumerate(explain_faces(recognizer, rgb, boxes, eyes), start=1):
        for kind, image in (
            ("crop", item["crop_image"]),
            (f"{item['emotion']}_occlusion", item["overlay_image"]),
        ):
            path = out_dir / f"{stem}_face{number}_{kind}.png"
            with atomic_writer(path, "wb") as handle:
                handle.write(encode_png(image))
            written.append(path)
    return written


__all__ = ["occlusion_map", "overlay", "enlarge", "explain_faces", "write_explanations"]
