"""The FER2013 path a session works with (any page), and storing uploaded files."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from fer_core.data import default_data_path
from fer_core.runs import store_by_digest

DATA_PATH_KEY = "fer2013_path"  # session_state: the FER2013 path the user chose (any page)
UPLOAD_DIR = Path(tempfile.gettempdir()) / "fer_app_uploads"


def data_path() -> str:
    """The FER2013 path chosen on the Dataset page, else ``$FER2013_PATH``, else ''."""
    if DATA_PATH_KEY not in st.session_state:
        st.session_state[DATA_PATH_KEY] = default_data_path() or ""
    return st.session_state[DATA_PATH_KEY] or ""


def set_data_path(path: str) -> None:
    st.session_state[DATA_PATH_KEY] = (path or "").strip()


def save_upload(uploaded) -> Path:
    """Store an uploaded file on disk under a name made from its content's hash (never the
    user's name) and the original suffix (``.csv``, ``.gz``, ``.mp4``); return its path."""
    suffix = "".join(c for c in Path(uploaded.name).suffix.lower() if c.isalnum() or c == ".")
    uploaded.seek(0)
    path, _ = store_by_digest(uploaded, UPLOAD_DIR, "upload-", suffix[:10])
    uploaded.seek(0)
    return path
