"""Image -> faces -> emotions. One path for photos, video files and the live webcam."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from .errors import ConfigError
from .faces import DetectorSettings, FaceDetector, to_grey
from .inference import EmotionModel, load_model
from .labels import EMOTIONS
from .preprocess import crop_faces

# Detector presets. "photo" is the seed's Haar settings on the full-size image (best recall);
# "live" detects on a frame downscaled to 320 px wide, which is several times faster and
# still finds faces of about 60 px and up in a 640 px frame.
PRESETS = {
    "photo": DetectorSettings(scale_factor=1.1, min_neighbors=5, min_size=30, detect_width=None),
    "live": DetectorSettings(scale_factor=1.15, min_neighbors=5, min_size=60, detect_width=320),
}


@dataclass
class FaceResult:
    box: tuple[int, int, int, int]  # x, y, w, h in image pixels
    probs: np.ndarray  # 7 floats summing to 1, EMOTIONS order
    face_id: int | None = None

    @property
    def label(self) -> str:
        return EMOTIONS[int(np.argmax(self.probs))]

    @property
    def confidence(self) -> float:
        return float(np.max(self.probs))

    def as_dict(self) -> dict:
        x, y, w, h = self.box
        row = {"face_id": self.face_id, "x": x, "y": y, "w": w, "h": h, "label": self.label,
               "confidence": round(self.confidence, 6)}
        row.update({emotion: round(float(p), 6) for emotion, p in zip(EMOTIONS, self.probs)})
        return row


def iou(a, b) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _affinity(track_box, box) -> float:
    """IoU, or, for boxes of similar size whose centres are close (a face that moved between
    sparsely sampled frames, or a box that jittered), a score just above the IoU threshold
    scaled by how close the centres are."""
    overlap = iou(track_box, box)
    tx, ty, tw, th = track_box
    x, y, w, h = box
    size_ratio = min(tw, w) / max(tw, w, 1)
    distance = np.hypot((tx + tw / 2) - (x + w / 2), (ty + th / 2) - (y + h / 2))
    reach = 0.8 * max(tw, w)
    if size_ratio >= 0.6 and distance < reach:
        return max(overlap, 0.3 + 0.2 * (1 - distance / reach))
    return overlap


@dataclass
class _Track:
    face_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    missed: int = 0


@dataclass
class FaceTracker:
    """Gives faces stable ids across frames (greedy IoU matching) and smooths each face's
    probabilities: ``smoothed = smoothing * previous + (1 - smoothing) * current``."""

    smoothing: float = 0.5
    min_iou: float = 0.3
    max_missed: int = 5
    _tracks: list = field(default_factory=list)
    _next_id: int = 1

    def __post_init__(self):
        if not 0.0 <= self.smoothing < 1.0:
            raise ConfigError("smoothing must lie in [0, 1).")

    def reset(self) -> None:
        self._tracks = []
        self._next_id = 1

    def update(self, results: list[FaceResult]) -> list[FaceResult]:
        pairs = sorted(((_affinity(t.box, r.box), ti, ri) for ti, t in enumerate(self._tracks)
                        for ri, r in enumerate(results)), reverse=True)
        used_tracks, used_results = set(), set()
        for overlap, ti, ri in pairs:
            if overlap < self.min_iou or ti in used_tracks or ri in used_results:
                continue
            used_tracks.add(ti)
            used_results.add(ri)
            track, result = self._tracks[ti], results[ri]
            track.probs = self.smoothing * track.probs + (1 - self.smoothing) * result.probs
            track.box, track.missed = result.box, 0
            result.probs, result.face_id = track.probs.copy(), track.face_id
        for ti, track in enumerate(self._tracks):
            if ti not in used_tracks:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for ri, result in enumerate(results):
            if ri not in used_results:
                track = _Track(self._next_id, result.box, result.probs.copy())
                self._next_id += 1
                self._tracks.append(track)
                result.face_id = track.face_id
        return results


class Recognizer:
    """Detect every face in an RGB image and classify them all in one model call.

    ``model``: an EmotionModel, a path, or None (the shipped default).
    ``preset``: "photo" (default) or "live"; ``detector_settings`` overrides it.
    ``smoothing``: for streams (``analyze_stream``), weight of the previous probabilities.
    """

    def __init__(self, model: EmotionModel | str | None = None, preset: str = "photo",
                 detector_settings: DetectorSettings | None = None, smoothing: float = 0.5,
                 margin: float = 0.0):
        if preset not in PRESETS:
            raise ConfigError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
        self.model = model if isinstance(model, EmotionModel) else load_model(model)
        self.preset = preset
        self.detector = FaceDetector(detector_settings or PRESETS[preset])
        self.margin = margin
        self.tracker = FaceTracker(smoothing=smoothing)
        self._stream_lock = threading.Lock()
        self.last_timings: dict[str, float] = {}

    def analyze(self, rgb_image: np.ndarray) -> list[FaceResult]:
        """All faces in one image, each with box, probabilities and label. No face: []."""
        return self.analyze_many([rgb_image])[0]

    def analyze_many(self, rgb_images) -> list[list[FaceResult]]:
        """``analyze`` for several images, with the faces of all of them classified in one
        model call (a batch engine's batch of photos)."""
        started = time.perf_counter()
        found = [self._faces(rgb) for rgb in rgb_images]
        detected = time.perf_counter()
        crops = [crop for boxes, crop in found if len(boxes)]
        probs = self.model.predict_faces(np.concatenate(crops)) if crops else None
        finished = time.perf_counter()
        self.last_timings = {"detect_ms": (detected - started) * 1e3,
                             "classify_ms": (finished - detected) * 1e3}
        results, used = [], 0
        for boxes, _ in found:
            mine = probs[used:used + len(boxes)] if len(boxes) else []
            used += len(boxes)
            results.append([FaceResult(tuple(int(v) for v in box), p.astype(np.float64) / p.sum())
                            for box, p in zip(boxes, mine)])
        return results

    def _faces(self, rgb_image: np.ndarray):
        """(boxes, crops) of one image."""
        grey = to_grey(rgb_image)
        boxes = self.detector.detect_grey(grey)
        return boxes, (crop_faces(grey, boxes, self.margin) if boxes else None)

    def analyze_stream(self, rgb_frame: np.ndarray) -> list[FaceResult]:
        """Like ``analyze``, for consecutive frames: faces get ids and smoothed probabilities."""
        results = self.analyze(rgb_frame)
        with self._stream_lock:
            return self.tracker.update(results)

    def set_smoothing(self, smoothing: float) -> None:
        if not 0.0 <= smoothing < 1.0:
            raise ConfigError("smoothing must lie in [0, 1).")
        self.tracker.smoothing = smoothing


def draw_results(rgb_image: np.ndarray, results: list[FaceResult]) -> np.ndarray:
    """A copy of the image with each face boxed and labelled with its top emotion."""
    import cv2

    canvas = np.ascontiguousarray(rgb_image.copy())
    height, width = canvas.shape[:2]
    thickness = max(2, int(round(min(height, width) / 300)))
    font_scale = max(0.5, min(height, width) / 900)
    for result in results:
        x, y, w, h = result.box
        colour = (40, 200, 80)
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        prefix = f"#{result.face_id} " if result.face_id is not None else ""
        text = f"{prefix}{result.label} {result.confidence * 100:.0f}%"
        (tw, th), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 1)
        top = y - th - baseline - 4 if y - th - baseline - 4 >= 0 else y + h
        cv2.rectangle(canvas, (x, top), (x + tw + 4, top + th + baseline + 4), colour, -1)
        cv2.putText(canvas, text, (x + 2, top + th + 2), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                    (0, 0, 0), max(1, thickness // 2), cv2.LINE_AA)
    return canvas
