"""Face detectors by name. Each returns ``Detection``s: a box clipped to the image, the
detector's score where it has one, and eye points where it gives them.

- ``"haar"``: OpenCV's frontal-face Haar cascade (shipped inside the OpenCV wheel). The default.
- ``"blazeface"``: MediaPipe's BlazeFace models, shipped inside this package
  (``fer_core/faces/models/``) and run through the LiteRT interpreter (never downloaded).
"""

from __future__ import annotations

from fer_core.errors import ConfigError
from fer_core.faces.blazeface import BlazeFaceDetector
from fer_core.faces.blazeface import make_interpreter as _make
from fer_core.faces.common import Detection, to_grey
from fer_core.faces.haar import (
    CASCADE_FILE,
    HAAR_PRESETS,
    DetectorSettings,
    HaarDetector,
    cascade_path,
)

DETECTORS = ("haar", "blazeface")
DEFAULT_DETECTOR = "haar"


def make_detector(name: str = DEFAULT_DETECTOR, preset: str = "photo", **options):
    """A detector by name and preset ("photo": best recall; "live": fast, for webcam frames)."""

    if name == "haar":
        if preset not in HAAR_PRESETS:
            raise ConfigError(
                f"Unknown preset {preset!r}; choose one of {', '.join(HAAR_PRESETS)}."
            )
        return HaarDetector(HAAR_PRESETS[preset], **options)
    if name == "blazeface":
        return BlazeFaceDetector(preset=preset, **options)
    raise ConfigError(f"Unknown detector {name!r}; choose one of {', '.join(DETECTORS)}.")


def make_interpreter(model_path, num_threads: int | None = None):
    return _make(model_path, num_threads)


__all__ = [
    "Detection",
    "DetectorSettings",
    "HaarDetector",
    "DETECTORS",
    "DEFAULT_DETECTOR",
    "make_detector",
    "make_interpreter",
    "to_grey",
    "cascade_path",
    "CASCADE_FILE",
]
