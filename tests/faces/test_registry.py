"""The detector registry: every detector once, with its labels, presets and fallback."""

import pytest

from fer_core import ConfigError, Recognizer
from fer_core.faces import (
    DEFAULT_DETECTOR,
    DETECTORS,
    REGISTRY,
    DetectorSettings,
    detector_info,
    make_detector,
)


def test_every_detector_is_described_and_made_from_each_preset():
    assert DEFAULT_DETECTOR in DETECTORS and len(set(DETECTORS)) == len(DETECTORS) >= 2
    labels = {detector_info(name).label for name in DETECTORS}
    shorts = {detector_info(name).short_label for name in DETECTORS}
    assert len(labels) == len(shorts) == len(DETECTORS)  # no two detectors read alike
    for name in DETECTORS:
        info = detector_info(name)
        assert info.name == name and info.no_face_advice and info.in_sentence
        assert set(info.presets) == {"photo", "live"}
        for preset in info.presets:
            made = make_detector(name, preset)
            assert made.name == name  # the detector's own name agrees with its entry
        if info.fallback is not None:
            assert info.fallback in REGISTRY and info.fallback != name
            assert detector_info(info.fallback).strengths  # said when it is offered


def test_unknown_names_and_presets_are_clear_errors():
    with pytest.raises(ConfigError, match="Unknown detector 'yolo'; choose one of"):
        detector_info("yolo")
    with pytest.raises(ConfigError, match="Unknown detector"):
        make_detector(["not", "a", "name"])  # type: ignore[arg-type]
    for name in DETECTORS:
        with pytest.raises(ConfigError, match="Unknown preset 'fast'"):
            make_detector(name, "fast")
        with pytest.raises(ConfigError, match="Unknown preset 'fast'"):
            Recognizer(detector=name, preset="fast")


def test_the_recognizer_takes_only_its_detectors_own_settings():
    for name in DETECTORS:
        photo = detector_info(name).presets["photo"]
        recognizer = Recognizer(detector=name, detector_settings=photo)
        assert recognizer.detector.settings == photo
        other = next(
            detector_info(n).presets["photo"]
            for n in DETECTORS
            if not isinstance(detector_info(n).presets["photo"], type(photo))
        )
        with pytest.raises(ConfigError, match=f"must be a {type(photo).__name__}"):
            Recognizer(detector=name, detector_settings=other)
    assert any(isinstance(detector_info(n).presets["photo"], DetectorSettings) for n in DETECTORS)


def test_the_live_page_offers_the_fallback_only_after_a_few_seconds_without_a_face():
    from app_lib.ui.detector import MISS_SECONDS, fallback_note, label, short_label

    for name in DETECTORS:
        info = detector_info(name)
        assert label(name) == info.label and short_label(name) == info.short_label
        assert fallback_note(name, MISS_SECONDS - 0.5) is None
        note = fallback_note(name, MISS_SECONDS + 1)
        if info.fallback is None:
            assert note is None
        else:
            other = detector_info(info.fallback)
            assert note == (
                f"{info.in_sentence[0].upper()}{info.in_sentence[1:]} has found no face for "
                f"{MISS_SECONDS + 1:.0f} s. {other.short_label} {other.strengths}."
            )
    assert fallback_note("haar", 4.2) == (
        "The Haar cascade has found no face for 4 s. "
        "BlazeFace finds faces that are tilted, small or in poor light."
    )  # the words the Live page said before the registry
    assert label("yolo") == short_label("yolo") == "yolo"  # an unknown name shown as it is
