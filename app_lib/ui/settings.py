"""Widget values that survive leaving a page.

Streamlit forgets a widget's value as soon as a script run does not draw the widget, so a
setting made on one page is back at its default after a visit to another page. ``kept``
restores the widget's value from a copy kept under another key before the widget is drawn;
``keep`` stores the value the widget returned.
"""

from __future__ import annotations

import streamlit as st

KEPT_PREFIX = _PREFIX = "_kept_"


def kept(key: str, default, valid=None) -> None:
    """Before drawing the widget with ``key``: give it its last value (or ``default``).
    ``valid``: a test the kept value must pass (e.g. still one of the options)."""
    if key not in st.session_state:
        value = st.session_state.get(_PREFIX + key, default)
        st.session_state[key] = value if valid is None or valid(value) else default


def keep(key: str, value):
    """After drawing it: remember what the widget returned; returns ``value``."""
    st.session_state[_PREFIX + key] = value
    return value


__all__ = ["kept", "keep", "KEPT_PREFIX"]
