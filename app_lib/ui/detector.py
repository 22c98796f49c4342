"""The face-detector switch (sidebar), shared by the Live and Photos pages."""

from __future__ import annotations

import streamlit as st

from app_lib.ui.settings import KEPT_PREFIX, keep, kept
from fer_core.faces import DEFAULT_DETECTOR, DETECTORS, REGISTRY, detector_info

DETECTOR_KEY = "face_detector"
HELP = (
    "Which face detector finds the faces. Haar (the default) is OpenCV's classic cascade. "
    "BlazeFace finds more faces (tilted, small, backlit ones too) and is faster; its "
    "weights ship inside this app. The Model page's whole-path table shows what each one "
    "gives."
)


# A detector missing every face for this long on the Live page brings its fallback's offer.
MISS_SECONDS = 3.0


def label(name: str) -> str:
    """A detector's display name ("Haar cascade (OpenCV)"); an unknown name as it is."""
    info = REGISTRY.get(name)
    return info.label if info else name


def short_label(name: str) -> str:
    """A detector's name in tables ("Haar"); an unknown name as it is."""
    info = REGISTRY.get(name)
    return info.short_label if info else name


def no_face_advice(name: str) -> str:
    """What a person reads when ``name`` found no face in their photo."""
    return detector_info(name).no_face_advice


def switch_detector(name: str) -> None:
    """The offer's click (a callback: it runs before the sidebar's radio is drawn again)."""
    st.session_state[DETECTOR_KEY] = name
    keep(DETECTOR_KEY, name)


def fallback_note(detector: str, missing: float) -> str | None:
    """What the Live page says when ``detector`` has found no face for ``missing`` seconds
    and has a fallback to offer; None before ``MISS_SECONDS`` or without one."""
    info = REGISTRY.get(detector)
    if info is None or info.fallback is None or missing < MISS_SECONDS:
        return None
    other = detector_info(info.fallback)
    return (
        f"{info.in_sentence[:1].upper()}{info.in_sentence[1:]} has found no face for "
        f"{missing:.0f} s. {other.short_label} {other.strengths}."
    )


def offer_fallback(container, key: str) -> bool:
    """Where the detector found no face: a one-click switch to its fallback (Haar's is
    BlazeFace, which finds tilted, small and backlit faces that Haar misses; the Model page's
    whole-path table says how many). Shown only while a detector with a fallback is chosen;
    returns True on the run after the click (the click's own rerun: in a fragment that
    reruns alone, the caller must then rerun the app so that the sidebar's radio is drawn
    with the new detector)."""
    if st.session_state.get(key):
        return True  # clicked: the callback has switched already
    fallback = detector_info(current_detector()).fallback
    if fallback is None:
        return False
    other = detector_info(fallback)
    return container.button(
        f"Try {other.short_label}",
        key=key,
        on_click=switch_detector,
        args=(fallback,),
        icon=":material/center_focus_strong:",
        help=f"Switch the face detector to {other.label} for this session; the sidebar "
        "switches back.",
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
            format_func=label,
            help=HELP,
        ),
    )


__all__ = [
    "detector_choice",
    "offer_fallback",
    "fallback_note",
    "current_detector",
    "switch_detector",
    "missing_for",
    "label",
    "short_label",
    "no_face_advice",
    "MISS_SECONDS",
    "DETECTOR_KEY",
]
