"""Face detectors by name (``fer_core.faces.registry`` holds each one's name, labels and
settings). Each returns ``Detection``s: a box clipped to the image, the detector's score where
it has one, and eye points where it gives them.

- ``"haar"``: OpenCV's frontal-face Haar cascade (shipped inside the OpenCV wheel). The default.
- ``"blazeface"``: MediaPipe's BlazeFace models, shipped inside this package
  (``fer_core/faces/models/``) and run through the LiteRT interpreter (never downloaded).
"""

from __future__ import annotations

from fer_core.faces.blazeface import make_interpreter as _make
from fer_core.faces.common import Detection, to_grey
from fer_core.faces.haar import (
    CASCADE_FILE,
    DetectorSettings,
    HaarDetector,
    cascade_path,
)
from fer_core.faces.registry import (
    BLAZEFACE,
    DEFAULT_DETECTOR,
    DETECTORS,
    HAAR,
    REGISTRY,
    DetectorInfo,
    detector_info,
    make_detector,
)


def make_interpreter(model_path, num_threads: int | None = None):
    return _make(model_path, num_threads)


__all__ = [
    "Detection",
    "DetectorSettings",
    "HaarDetector",
    "DETECTORS",
    "DEFAULT_DETECTOR",
    "DetectorInfo",
    "detector_info",
    "HAAR",
    "BLAZEFACE",
    "REGISTRY",
    "make_detector",
    "make_interpreter",
    "to_grey",
    "cascade_path",
    "CASCADE_FILE",
]
