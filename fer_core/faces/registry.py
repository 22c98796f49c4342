"""Every face detector once: its name, what people read about it, its settings and how to
make one. Nothing outside ``fer_core.faces`` spells a detector's name; it asks here.

``DETECTORS`` lists the names (the CLI's choices, a card's ``detector`` field, the pages'
switch); ``detector_info(name)`` gives the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fer_core.errors import ConfigError
from fer_core.faces.blazeface import BLAZEFACE_PRESETS, BlazeFaceDetector
from fer_core.faces.haar import HAAR_PRESETS, HaarDetector


@dataclass(frozen=True)
class DetectorInfo:
    """One detector.

    ``name``: what the library, the CLI, the cards and the bench files call it.
    ``label``: its display name ("Haar cascade (OpenCV)"); ``short_label``: in tables ("Haar");
    ``in_sentence``: how a sentence names it ("the Haar cascade").
    ``presets``: its settings by preset ("photo": best recall; "live": fast, for webcam
    frames); ``make(settings, **options)`` builds one from them.
    ``no_face_advice``: what a person reads when it finds no face in their photo.
    ``strengths``: what it finds that another may miss, as a verb phrase (said when it is
    offered as a fallback).
    ``fallback``: the detector to offer when this one keeps finding no face (None: none).
    """

    name: str
    label: str
    short_label: str
    in_sentence: str
    presets: Mapping[str, Any]
    make: Callable[..., Any]
    no_face_advice: str
    strengths: str = ""
    fallback: str | None = None

    def detector(self, preset: str = "photo", **options):
        if preset not in self.presets:
            raise ConfigError(
                f"Unknown preset {preset!r}; choose one of {', '.join(self.presets)}."
            )
        return self.make(self.presets[preset], **options)


HAAR = DetectorInfo(
    name="haar",
    label="Haar cascade (OpenCV)",
    short_label="Haar",
    in_sentence="the Haar cascade",
    presets=HAAR_PRESETS,
    make=HaarDetector,
    no_face_advice=(
        "The Haar cascade finds frontal faces at least about 30 pixels wide; try a sharper, "
        "frontal, well-lit photo, or BlazeFace, which also finds tilted, small and backlit faces."
    ),
    fallback="blazeface",
)
BLAZEFACE = DetectorInfo(
    name="blazeface",
    label="BlazeFace (MediaPipe)",
    short_label="BlazeFace",
    in_sentence="BlazeFace",
    presets=BLAZEFACE_PRESETS,
    make=BlazeFaceDetector,
    no_face_advice=(
        "BlazeFace found no face either: try a sharper, well-lit photo in which the face is "
        "at least about 20 pixels wide."
    ),
    strengths="finds faces that are tilted, small or in poor light",
)

REGISTRY: dict[str, DetectorInfo] = {info.name: info for info in (HAAR, BLAZEFACE)}
DETECTORS = tuple(REGISTRY)
DEFAULT_DETECTOR = HAAR.name


def detector_info(name: str) -> DetectorInfo:
    """The registry's entry for ``name``; a ConfigError naming the choices for any other."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ConfigError(
            f"Unknown detector {name!r}; choose one of {', '.join(DETECTORS)}."
        ) from None


def make_detector(name: str = DEFAULT_DETECTOR, preset: str = "photo", **options):
    """A detector by name and preset ("photo": best recall; "live": fast, for webcam frames)."""
    return detector_info(name).detector(preset, **options)


__all__ = [
    "DetectorInfo",
    "HAAR",
    "BLAZEFACE",
    "REGISTRY",
    "DETECTORS",
    "DEFAULT_DETECTOR",
    "detector_info",
    "make_detector",
]
