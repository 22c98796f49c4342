"""The face-detector switch (sidebar), shared by the Live and Photos pages."""

from __future__ import annotations

import streamlit as st

from app_lib.settings import keep, kept
from fer_core.faces import DEFAULT_DETECTOR, DETECTORS

DETECTOR_KEY = "face_detector"
LABELS = {
    "haar": "Haar cascade (OpenCV)",
    "blazeface": "BlazeFace (MediaPipe)",
}
HELP = ("Which face detector finds the faces. Haar (the default) is OpenCV's classic cascade. "
        "BlazeFace finds more faces (tilted, small, backlit ones too) and is faster; its "
        "weights ship inside this app. The Model page's whole-path table shows what each one "
        "gives.")


def detector_choice(container=None) -> str:
    """A radio in the sidebar (or ``container``); the choice is kept per session (also while
    another page is shown), so the Live and Photos pages share it. Returns a name from ``fer_core.DETECTORS``."""
    target = container if container is not None else st.sidebar
    kept(DETECTOR_KEY, DEFAULT_DETECTOR, valid=lambda name: name in DETECTORS)
    if st.session_state.get(DETECTOR_KEY) not in DETECTORS:
        st.session_state[DETECTOR_KEY] = DEFAULT_DETECTOR
    return keep(DETECTOR_KEY, target.radio("Face detector", DETECTORS, key=DETECTOR_KEY,
                                           format_func=lambda name: LABELS.get(name, name),
                                           help=HELP))


__all__ = ["detector_choice", "DETECTOR_KEY", "LABELS"]
