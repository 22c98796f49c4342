"""How numbers and errors read on the pages."""

from __future__ import annotations

import contextlib

import streamlit as st

from fer_core import FerError


def percent(value, digits: int = 1) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def duration(seconds) -> str:
    if seconds is None:
        return "—"
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def show_error(message: str) -> None:
    """An error box whose text is shown as text: a file name or an exception message with
    Markdown in it (a link, an image) is never rendered."""
    st.error(escape_markdown(message), icon=":material/error:")


def escape_markdown(text: str) -> str:
    """``text`` with every Markdown and HTML special character escaped."""
    specials = "\\`*_{}[]()<>#+-.!|~$&"
    return "".join("\\" + c if c in specials else c for c in str(text))


@contextlib.contextmanager
def user_errors(prefix: str = ""):
    """Show a FerError (a problem the user can fix) as an error box instead of a traceback."""
    try:
        yield
    except FerError as exc:
        show_error(f"{prefix}{exc}")
