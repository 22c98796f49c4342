"""Pipeline evaluation: accuracy through the whole recognition path, detector included.

FER2013's 48x48 faces are upscaled and placed on a larger frame (scale, background, placement,
rotation and shift are options), and each frame goes through ``Recognizer.analyze``: the same
detector, crop and model call as the app. Reported per detector and preset:

- ``found``: the share of faces the detector found (a result box overlapping the placed face
  by IoU >= 0.25);
- ``accuracy_found`` / ``macro_f1_found``: the classifier on the faces found;
- ``end_to_end``: accuracy over all faces, a missed face counting as wrong;
- ``crop_accuracy_found``: the same model on the same faces' original FER2013 crops, so that
  ``framing_cost = crop_accuracy_found - accuracy_found`` is what the detector's crop costs;
- ``crop_accuracy``: the same model on all the original crops (the published kind of number).

Choices (framing, thresholds) are made on PublicTest; PrivateTest is reported::

    python -m fer_core evaluate-pipeline --split PrivateTest --detector haar blazeface
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from fer_core.errors import ConfigError
from fer_core.evaluation.reports import classification_report, predict_probabilities
from fer_core.faces import DEFAULT_DETECTOR, to_grey
from fer_core.faces.common import iou
from fer_core.labels import INPUT_SIZE
from fer_core.recognition.preprocess import Framing, crop_faces

MATCH_IOU = 0.25
BACKGROUNDS = ("grey", "noise", "gradient")
PLACEMENTS = ("centre", "random")
VARIANTS: dict[str, dict[str, Any]] = {
    "plain": {},
    # every face turned by +-10 degrees about its centre (alternating sign)
    "rotated": {"angle": 10.0},
    # every face placed at a random spot of the frame instead of the centre
    "shifted": {"placement": "random"},
}


@dataclass(frozen=True)
class SceneOptions:
    """How a 48x48 FER2013 face becomes a test frame: upscaled ``scale`` times (bicubic),
    placed on a ``width`` x ``height`` frame of ``background``, at the centre or at a random
    spot (``placement``), turned by ``angle`` degrees about its centre (alternating sign from
    face to face). ``seed`` fixes the random parts."""

    scale: float = 4.0
    width: int = 640
    height: int = 480
    background: str = "grey"
    placement: str = "centre"
    angle: float = 0.0
    seed: int = 0

    def validate(self) -> None:
        side = INPUT_SIZE * self.scale
        if not 0.5 <= self.scale <= 20:
            raise ConfigError("scale must lie between 0.5 and 20.")
        if side > min(self.width, self.height):
            raise ConfigError(
                f"A face upscaled {self.scale}x ({side:.0f} px) does not fit in a "
                f"{self.width}x{self.height} frame."
            )
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"background must be one of {', '.join(BACKGROUNDS)}.")
        if self.placement not in PLACEMENTS:
            raise ConfigError(f"placement must be one of {', '.join(PLACEMENTS)}.")
        if not -45 <= self.angle <= 45:
            raise ConfigError("angle must lie between -45 and 45 degrees.")


def _background(options: SceneOptions, rng: np.random.Generator) -> np.ndarray:
    import cv2

    h, w = options.height, options.width
    if options.background == "grey":
        return np.full((h, w), 128, np.uint8)
    if options.background == "gradient":
        return np.tile(np.linspace(40, 210, w, dtype=np.float32), (h, 1)).astype(np.uint8)
    coarse = rng.integers(40, 216, (h // 16 + 1, w // 16 + 1)).astype(np.uint8)
    return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)


def make_scene(
    face: np.ndarray, options: SceneOptions, index: int = 0
) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """(RGB frame, (x, y, side, side) where FER2013's frame of the face lies in it)."""
    import cv2

    rng = np.random.default_rng((options.seed, index))
    side = int(round(INPUT_SIZE * options.scale))
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    frame = _background(options, rng)
    if options.placement == "centre":
        x, y = (options.width - side) // 2, (options.height - side) // 2
    else:
        x = int(rng.integers(0, options.width - side + 1))
        y = int(rng.integers(0, options.height - side + 1))
    frame[y : y + side, x : x + side] = big
    if options.angle:
        angle = options.angle if index % 2 == 0 else -options.angle
        matrix = cv2.getRotationMatrix2D((x + side / 2, y + side / 2), angle, 1.0)
        back = _background(options, rng)
        rotated = cv2.warpAffine(
            frame,
            matrix,
            (options.width, options.height),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        mask = cv2.warpAffine(
            np.full_like(frame, 255),
            matrix,
            (options.width, options.height),
            flags=cv2.INTER_NEAREST,
            borderValue=0,
        )
        frame = np.where(mask > 0, rotated, back)
    return np.repeat(frame[..., None], 3, axis=2), (x, y, side, side)


def evaluate_pipeline(
    recognizer,
    images: np.ndarray,
    labels: np.ndarray,
    options: SceneOptions | None = None,
    progress=None,
    keep_records: bool = False,
) -> dict:
    """Every face through ``recognizer.analyze`` on its own frame; see the module doc."""

    options = options or SceneOptions()
    options.validate()
    images = np.asarray(images, np.uint8)
    labels = np.asarray(labels)
    n = len(labels)
    predicted = np.full(n, -1)
    found = np.zeros(n, bool)
    extra_boxes = 0
    records = []
    seconds = []
    for index in range(n):
        frame, truth = make_scene(images[index], options, index)
        started = time.perf_counter()
        results = recognizer.analyze(frame)
        seconds.append(time.perf_counter() - started)
        best, best_iou = None, 0.0
        for result in results:
            overlap = iou(result.box, truth)
            if overlap > best_iou:
                best, best_iou = result, overlap
        if best is not None and best_iou >= MATCH_IOU:
            found[index] = True
            predicted[index] = int(np.argmax(best.probs))
            extra_boxes += len(results) - 1
            if keep_records:
                records.append(
                    {
                        "index": index,
                        "box": list(best.box),
                        "truth": list(truth),
                        "score": best.score,
                    }
                )
        else:
            extra_boxes += len(results)
        if progress is not None and (index % 100 == 0 or index == n - 1):
            progress(
                (index + 1) / n, f"{index + 1}/{n} faces, {found[: index + 1].mean():.1%} found"
            )
    crop_predicted = predict_probabilities(recognizer.model, images).argmax(axis=1)
    on_found = classification_report(labels[found], predicted[found]) if found.any() else None
    crop_found = float(np.mean(crop_predicted[found] == labels[found])) if found.any() else None
    accuracy_found = on_found["accuracy"] if on_found else None
    report = {
        "faces": int(n),
        "found": float(found.mean()) if n else float("nan"),
        "accuracy_found": accuracy_found,
        "macro_f1_found": on_found["macro_f1"] if on_found else None,
        "end_to_end": float(np.mean(predicted == labels)) if n else float("nan"),
        "crop_accuracy_found": crop_found,
        "crop_accuracy": float(np.mean(crop_predicted == labels)) if n else float("nan"),
        "framing_cost": (
            crop_found - accuracy_found
            if crop_found is not None and accuracy_found is not None
            else None
        ),
        "extra_boxes_per_frame": extra_boxes / max(n, 1),
        "median_ms_per_frame": float(np.median(seconds) * 1e3) if seconds else None,
        "scene": asdict(options),
        "detector": getattr(recognizer, "detector_name", DEFAULT_DETECTOR),
        "preset": recognizer.preset,
        "framing": _framing_dict(recognizer.framing),
        "margin": recognizer.margin,
        "align": bool(getattr(recognizer, "align", False)),
        "min_score": getattr(recognizer, "min_score", None),
        "flip_average": bool(getattr(recognizer.model, "flip_average", False)),
    }
    if keep_records:
        report["records"] = records
    return report


def _framing_dict(framing):
    if framing is None:
        return None
    if isinstance(framing, tuple):
        return [f.as_dict() for f in framing]
    return framing.as_dict()


def measure_framing(records: list[dict]):
    """The ``Framing`` that maps a detector's boxes to FER2013's frame: the medians of
    (frame side / box width) and of the frame centre's offset from the box centre, in box
    widths and heights, over ``records`` from ``evaluate_pipeline(keep_records=True)``
    (found faces only; unrotated scenes)."""

    if not records:
        raise ConfigError("No faces were found, so no framing can be measured.")
    box = np.array([r["box"] for r in records], np.float64)
    truth = np.array([r["truth"] for r in records], np.float64)
    # a box side: the larger of width and height (crop_faces squares the region the same way)
    side = box[:, 2:4].max(axis=1)
    scale = truth[:, 2] / side
    dx = ((truth[:, 0] + truth[:, 2] / 2) - (box[:, 0] + box[:, 2] / 2)) / box[:, 2]
    dy = ((truth[:, 1] + truth[:, 3] / 2) - (box[:, 1] + box[:, 3] / 2)) / box[:, 3]
    return Framing(
        scale=round(float(np.median(scale)), 3),
        dx=round(float(np.median(dx)), 3),
        dy=round(float(np.median(dy)), 3),
    ), {
        "faces": int(len(records)),
        "box_covers_frame_width_median": round(float(np.median(side / truth[:, 2])), 4),
        "scale_iqr": [round(float(v), 3) for v in np.percentile(scale, [25, 75])],
        "dx_iqr": [round(float(v), 3) for v in np.percentile(dx, [25, 75])],
        "dy_iqr": [round(float(v), 3) for v in np.percentile(dy, [25, 75])],
    }


def framing_sweep(
    recognizer,
    images: np.ndarray,
    labels: np.ndarray,
    options: SceneOptions | None = None,
    scales=None,
    dys=None,
    progress=None,
) -> dict:
    """Accuracy on the faces found for a grid of framings (side ``scale`` x the box, centre
    moved by ``dy`` box heights), each face detected once through ``recognizer``'s detector.
    Also the oracle: FER2013's own frame cut from the same scene (what resampling alone
    costs). For PublicTest: the choice of ``preprocess.FRAMINGS`` is made here."""

    options = options or SceneOptions()
    options.validate()
    scales = list(scales if scales is not None else np.round(np.arange(0.95, 1.31, 0.05), 3))
    dys = list(dys if dys is not None else [-0.1, -0.05, 0.0, 0.05])
    detector = recognizer.detector
    grid = [(float(a), float(b)) for a in scales for b in dys]
    n = len(labels)
    crops = np.empty((len(grid), n, INPUT_SIZE, INPUT_SIZE), np.uint8)  # one block, no lists
    oracle = np.empty((n, INPUT_SIZE, INPUT_SIZE), np.uint8)
    kept: list[int] = []
    for index in range(n):
        frame, truth = make_scene(images[index], options, index)
        grey = to_grey(frame)
        detections = detector.detect_faces(frame if detector.needs_rgb else grey)
        if recognizer.min_score is not None:
            detections = [
                d for d in detections if d.score is None or d.score >= recognizer.min_score
            ]
        best = max(detections, key=lambda d: iou(d.box, truth), default=None)
        if best is None or iou(best.box, truth) < MATCH_IOU:
            continue
        slot = len(kept)
        kept.append(index)
        oracle[slot] = crop_faces(grey, [truth], framing=Framing())[0]
        for g, (scale, dy) in enumerate(grid):
            crops[g, slot] = crop_faces(
                grey, [best.box], recognizer.margin, Framing(scale, 0.0, dy)
            )[0]
        if progress is not None and index % 200 == 0:
            progress((index + 1) / n, f"{index + 1}/{n} faces")
    found = len(kept)
    kept_rows = np.array(kept, int)
    truth_labels = np.asarray(labels)[kept_rows]
    model = recognizer.model

    def accuracy(batch):
        return float(np.mean(model.predict_faces(batch).argmax(1) == truth_labels))

    rows = [
        {"scale": a, "dy": b, "accuracy_found": accuracy(crops[g, :found])}
        for g, (a, b) in enumerate(grid)
    ]
    best_row = max(rows, key=lambda r: r["accuracy_found"])
    return {
        "faces": int(n),
        "found": int(found),
        "crop_accuracy_found": accuracy(np.asarray(images)[kept_rows]),
        "oracle_frame_accuracy_found": accuracy(oracle[:found]),
        "grid": rows,
        "best": best_row,
    }


__all__ = [
    "SceneOptions",
    "make_scene",
    "evaluate_pipeline",
    "measure_framing",
    "framing_sweep",
    "BACKGROUNDS",
    "PLACEMENTS",
    "VARIANTS",
]
