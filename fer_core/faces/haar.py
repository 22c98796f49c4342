"""Face detection with OpenCV's Haar cascade (shipped inside the OpenCV wheel)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from fer_core.errors import ConfigError, ImageError
from fer_core.faces.common import Detection, clip_box, iou, to_grey

CASCADE_FILE = "haarcascade_frontalface_default.xml"


CASCADES = (
    "haarcascade_frontalface_default.xml",
    "haarcascade_frontalface_alt2.xml",
    "haarcascade_frontalface_alt.xml",
)


def cascade_path(name: str = CASCADE_FILE) -> Path:
    import cv2

    return Path(cv2.data.haarcascades) / name  # type: ignore[attr-defined]


@dataclass(frozen=True)
class DetectorSettings:
    """Haar cascade parameters. ``detect_width`` downscales wide frames before detection
    (boxes are mapped back to full-size pixels); ``None`` detects on the full image."""

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 30  # smallest face, in pixels of the full-size image
    detect_width: int | None = None
    cascade: str = CASCADE_FILE  # one of CASCADES, shipped inside the OpenCV wheel
    min_score: float = 0.5  # boxes whose score (cascade_score) is below it go; 0.5: the
    # cascade's own last-stage threshold
    # From this face size (full-size pixels) up, a second pass with ``large_scale_factor``: a
    # coarse scale step is cheap where it costs most (small windows cover the image many
    # times over) and a fine step finds more of the large faces. None: one pass.
    large_from: int | None = None
    large_scale_factor: float = 1.1
    large_min_neighbors: int | None = None  # the second pass's (None: min_neighbors)

    def validate(self) -> None:
        if not 1.01 <= self.scale_factor <= 2.0:
            raise ConfigError("scale_factor must lie between 1.01 and 2.0.")
        if not 0 <= self.min_neighbors <= 50:
            raise ConfigError("min_neighbors must lie between 0 and 50.")
        if not 8 <= self.min_size <= 4096:
            raise ConfigError("min_size must lie between 8 and 4096 pixels.")
        if self.detect_width is not None and not 96 <= self.detect_width <= 8192:
            raise ConfigError("detect_width must lie between 96 and 8192 pixels, or be None.")
        if self.cascade not in CASCADES:
            raise ConfigError(f"cascade must be one of {', '.join(CASCADES)}.")
        if not 0.0 <= self.min_score < 1.0:
            raise ConfigError("min_score must lie in [0, 1).")
        if self.large_from is not None and not self.min_size < self.large_from <= 4096:
            raise ConfigError("large_from must lie above min_size (and at most 4096), or be None.")
        if self.large_min_neighbors is not None and not 0 <= self.large_min_neighbors <= 50:
            raise ConfigError("large_min_neighbors must lie between 0 and 50, or be None.")
        if not 1.01 <= self.large_scale_factor <= 2.0:
            raise ConfigError("large_scale_factor must lie between 1.01 and 2.0.")


MERGE_IOU = 0.3


@cache
def last_stage_threshold(name: str) -> float:
    """The threshold of a cascade's last stage, read from its XML (shipped with OpenCV)."""
    text = cascade_path(name).read_text(errors="replace")
    found = re.findall(r"<stageThreshold>\s*([-+0-9.eE]+)\s*</stageThreshold>", text)
    if not found:
        raise RuntimeError(f"{name} has no stage thresholds; reinstall opencv-python-headless<5.")
    return float(found[-1])


def cascade_score(level_weight: float, cascade: str) -> float:
    """A Haar box's score in (0, 1): the logistic of how far its last stage's sum lies above
    that stage's threshold. Monotone in the cascade's own confidence, 0.5 at the threshold; it
    ranks boxes (a threshold is chosen on the labelled photos), it is not a probability."""
    margin = float(level_weight) - last_stage_threshold(cascade)
    return float(1.0 / (1.0 + np.exp(-margin)))


class HaarDetector:
    """Find faces in an RGB or grey image; returns (x, y, w, h) boxes clipped to the image."""

    def __init__(self, settings: DetectorSettings | None = None, **overrides):
        import cv2

        settings = settings or DetectorSettings()
        if overrides:
            settings = DetectorSettings(**{**settings.__dict__, **overrides})
        settings.validate()
        self.settings = settings
        self._cascade = cv2.CascadeClassifier(str(cascade_path(settings.cascade)))
        if self._cascade.empty():
            raise RuntimeError(
                f"OpenCV could not load {cascade_path(settings.cascade)}; reinstall "
                "opencv-python-headless<5."
            )
        # CascadeClassifier.detectMultiScale is not documented as thread-safe.
        self._lock = threading.Lock()

    needs_rgb = False
    name = "haar"

    def detect_faces(self, image: np.ndarray) -> list[Detection]:
        """``Detection(box, score)``: Haar gives no eye points; its score is
        ``cascade_score`` (boxes below ``settings.min_score`` are left out)."""
        return [Detection(box, score) for box, score in self.detect_scored(to_grey(image))]

    def detect_grey(self, grey: np.ndarray) -> list[tuple[int, int, int, int]]:
        return [box for box, _ in self.detect_scored(grey)]

    def detect_scored(self, grey: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        """(box, score) pairs of a grey image, sorted left to right."""
        import cv2

        if grey.ndim != 2 or grey.size == 0:
            raise ImageError("Face detection needs a non-empty image.")
        height, width = grey.shape
        s = self.settings
        scale = 1.0
        small = grey
        if s.detect_width is not None and width > s.detect_width:
            scale = s.detect_width / width
            small = cv2.resize(
                grey,
                (s.detect_width, max(1, int(round(height * scale)))),
                interpolation=cv2.INTER_AREA,
            )
        min_side = max(8, int(round(s.min_size * scale)))
        if min(small.shape) < min_side:
            return []
        large = None if s.large_from is None else int(round(s.large_from * scale))
        passes = [(s.scale_factor, s.min_neighbors, min_side, 0)]
        if large is not None and large > min_side:
            neighbours = s.min_neighbors if s.large_min_neighbors is None else s.large_min_neighbors
            passes = [
                (s.scale_factor, s.min_neighbors, min_side, large),
                (s.large_scale_factor, neighbours, large, 0),
            ]
        scored = []
        with self._lock:
            for factor, neighbours, smallest, largest in passes:
                if min(small.shape) < smallest:
                    continue
                found, _, weights = self._cascade.detectMultiScale3(
                    small,
                    scaleFactor=factor,
                    minNeighbors=neighbours,
                    minSize=(smallest, smallest),
                    maxSize=(largest, largest),
                    outputRejectLevels=True,
                )
                scored += [
                    ((x, y, w, h), cascade_score(weight, s.cascade))
                    for (x, y, w, h), weight in zip(found if len(found) else [], np.ravel(weights))
                ]
        boxes: list[tuple[tuple[int, int, int, int], float]] = []
        for (x, y, w, h), score in sorted(scored, key=lambda pair: -pair[1]):
            box = clip_box(x / scale, y / scale, (x + w) / scale, (y + h) / scale, width, height)
            # a face near the passes' border can be found by both: the better box stays
            if (
                box is not None
                and score >= s.min_score
                and all(iou(box, kept) < MERGE_IOU for kept, _ in boxes)
            ):
                boxes.append((box, score))
        boxes.sort(key=lambda pair: (pair[0][0], pair[0][1]))
        return boxes

    def detect(self, image: np.ndarray) -> list[tuple[int, int, int, int]]:
        return self.detect_grey(to_grey(image))


# Presets. "photo" runs on the full-size image (best recall) with OpenCV's "alt2" cascade, in
# two passes: faces of 30-120 px with a coarse scale step (1.2) and 2 neighbours, where the
# small windows make each step expensive and the small faces of group photos need the
# neighbours to keep false boxes out; faces of 120 px and more with a fine step (1.1) and 1
# neighbour, which finds the most large faces. Chosen on PublicTest faces in 640x480 frames and
# on the labelled photos (PrivateTest played no part): 83.5% of PublicTest faces found (the
# previous single pass, step 1.1 and 2 neighbours: 81.2%), photo recall 0.907 at precision
# 0.975 (0.930 at 0.952), and 28 ms a 640x480 frame against 55 ms, which brings the photo path
# to fer's time (bench.peers). One pass with step 1.2 found only 80.3%; 1 neighbour for the
# small faces put two false faces on the astronaut's suit. The score threshold (0.5, the
# cascade's own) is the one with the best photo recall at precision >= 0.95; higher ones lost
# faces on both sets. "live" detects on a frame downscaled to 320 px wide, several times
# faster, and finds faces of about 85 px and up in a 640 px frame.
HAAR_PRESETS = {
    "photo": DetectorSettings(
        scale_factor=1.2,
        min_neighbors=2,
        min_size=30,
        detect_width=None,
        cascade="haarcascade_frontalface_alt2.xml",
        large_from=120,
        large_scale_factor=1.1,
        large_min_neighbors=1,
    ),
    "live": DetectorSettings(scale_factor=1.15, min_neighbors=5, min_size=60, detect_width=320),
}

__all__ = [
    "DetectorSettings",
    "HaarDetector",
    "HAAR_PRESETS",
    "CASCADES",
    "to_grey",
    "cascade_path",
]
