"""The face-detector switch (sidebar), shared by the Live and Photos pages."""

from __future__ import annotations

import streamlit as st

from app_lib.settings import KEPT_PREFIX, keep, kept
from fer_core.faces import DEFAULT_DETECTOR, DETECTORS

DETECTOR_KEY = "face_detector"
LABELS = {
    "haar": "Haar cascade (OpenCV)",
    "blazeface": "BlazeFace (MediaPipe)",
}
SHORT_LABELS = {"haar": "Haar", "blazeface": "BlazeFace"}
HELP = (
    "Which face detector finds the faces. Haar (the default) is OpenCV's classic cascade. "
    "BlazeFace finds more faces (tilted, small, backlit ones too) and is faster; its "
    "weights ship inside this app. The Model page's whole-path table shows what each one "
    "gives."
)


# Haar missing every face for this long on the Live page brings the BlazeFace offer.
HAAR_MISS_SECONDS = 3.0


def switch_to_blazeface() -> None:
    """The offer's click (a callback: it runs before the sidebar's radio is drawn again)."""
    st.session_state[DETECTOR_KEY] = "blazeface"
    keep(DETECTOR_KEY, "blazeface")


def offer_blazeface(container, key: str) -> bool:
    """Where Haar found no face: a one-click switch to BlazeFace, which finds tilted, small
    and backlit faces that Haar misses (the Model page's whole-path table says how many).
    Shown only while Haar is the detector; returns True on the run after the click (the
    click's own rerun: in a fragment that reruns alone, the caller must then rerun the app so
    that the sidebar's radio is drawn with the new detector)."""
    if st.session_state.get(key):
        return True  # clicked: the callback has switched already
    if current_detector() != "haar":
        return False
    return container.button(
        "Try BlazeFace",
        key=key,
        on_click=switch_to_blazeface,
        icon=":material/center_focus_strong:",
        help="Switch the face detector to BlazeFace (MediaPipe) for this "
        "session; the sidebar switches back.",
    )


def current_detector() -> str:
    """The detector chosen in this session, also on a page that does not draw the radio
    (Streamlit drops a widget's state on pages that do not draw it; ``keep`` kept a copy)."""
    value = st.session_state.get(DETECTOR_KEY) or st.session_state.get(KEPT_PREFIX + DETECTOR_KEY)
    return value if value in DETECTORS else DEFAULT_DETECTOR


def missing_for(state: dict, has_face: bool, detector: str, now: float) -> float:
    """Seconds since ``detector`` last found a face in a stream (``state``: a dict kept per
    session). 0 while faces are found; the clock restarts when the detector changes."""
    if has_face or state.get("detector") != detector:
        state.update(detector=detector, since=now)
        return 0.0
    return max(0.0, now - float(state.get("since", now)))


def detector_choice(container=None) -> str:
    """A radio in the sidebar (or ``container``); the choice is kept per session (also while
    another page is shown), so the Live and Photos pages share it. Returns a name from ``fer_core.DETECTORS``."""
    target = container if container is not None else st.sidebar
    kept(DETECTOR_KEY, DEFAULT_DETECTOR, valid=lambda name: name in DETECTORS)
    if st.session_state.get(DETECTOR_KEY) not in DETECTORS:
        st.session_state[DETECTOR_KEY] = DEFAULT_DETECTOR
    return keep(
        DETECTOR_KEY,
        target.radio(
            "Face detector",
            DETECTORS,
            key=DETECTOR_KEY,
            format_func=lambda name: LABELS.get(name, name),
            help=HELP,
        ),
    )


__all__ = [
    "detector_choice",
    "offer_blazeface",
    "current_detector",
    "switch_to_blazeface",
    "missing_for",
    "HAAR_MISS_SECONDS",
    "DETECTOR_KEY",
    "LABELS",
]
