"""Facial emotion recognition: the Streamlit app.

Run with ``streamlit run app.py`` (or ``make run``). Pages live in ``app_pages/``; this file
builds the navigation and the sidebar every page shares (the active model and its accuracy).

Why not ``pages/``: Streamlit 1.67 still treats a ``pages/`` folder beside the main script as
an old-style multipage app until the first script run calls ``st.navigation``. If the first
visitor after a server start opens a page URL directly (``/live``), Streamlit runs that page
file alone, never this file, and the whole server stays in that mode: no shared sidebar, no
model fallback, for every visitor, until a restart. A folder with another name avoids it.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parent  # Streamlit puts this folder on the path for app_lib

import streamlit as st  # noqa: E402

from app_lib.model.model_state import active_model  # noqa: E402
from app_lib.model.sidebar import render_sidebar  # noqa: E402
from app_lib.server.server_log import quiet_gone_tab_errors  # noqa: E402
from app_lib.ui.navigation import HOME, PAGES  # noqa: E402
from app_lib.ui.text import escape_markdown  # noqa: E402
from app_lib.uploads.budget import protect_uploads  # noqa: E402
from fer_core import FerError  # noqa: E402


def _favicon():
    """A smiley drawn here: a Material or emoji icon would be fetched from the internet, and
    the app must work offline."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.ellipse((2, 2, 62, 62), fill=(44, 160, 44, 255))
    draw.ellipse((19, 20, 27, 30), fill=(255, 255, 255, 255))
    draw.ellipse((37, 20, 45, 30), fill=(255, 255, 255, 255))
    draw.arc((15, 22, 49, 50), start=20, end=160, fill=(255, 255, 255, 255), width=5)
    return image


st.set_page_config(page_title="Facial emotion recognition", page_icon=_favicon(), layout="wide")
protect_uploads()  # upload budgets per tab and server-wide (app_lib/uploads/budget.py)
quiet_gone_tab_errors()  # a tab that closes mid-answer: one log line (app_lib/server/server_log.py)

pages = [
    st.Page(
        str(ROOT / path),
        title=page.title,
        icon=page.icon,
        url_path=page.url,
        default=(path == HOME),
    )
    for path, page in PAGES.items()
]
current = st.navigation(pages, position="sidebar")

# The active model, shared by all pages; a model that fails to load falls back to the
# shipped one, and the page says so.
try:
    active = active_model()
    render_sidebar(active)
    if active.problem:
        st.warning(escape_markdown(active.problem), icon=":material/warning:")
except FerError as exc:
    render_sidebar(None, str(exc))

try:
    current.run()
except FerError as exc:  # a user-caused problem the page did not handle itself
    st.error(escape_markdown(str(exc)), icon=":material/error:")
