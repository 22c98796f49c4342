"""The FER2013 path a browser session chose (Dataset page; the Training page reads it).

Only paths inside the allowed data folders (``fer_core.data.paths``: ``FER_DATA_DIRS``, else the
project's ``data/``; plus ``FER2013_PATH``) and the session's own upload folder are kept.
``data_path()`` therefore never returns a path a visitor typed to reach elsewhere on the
server's disk.

Messages about these files name them as a visitor knows them, never by the server's absolute
path: ``fer_core.data.paths.shown_path`` says "train/happy/1.jpg in the data folder", and, for the
upload folder registered here, "<file> in your uploads".
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from app_lib.uploads.session_files import session_folder, upload_root
from fer_core.data.paths import (
    add_places,
    allowed_data_roots,
    default_data_path,
    is_within,
    resolve_user_path,
    shown_path,
)

DATA_PATH_KEY = "fer2013_path"  # session_state: the accepted FER2013 path ("" if none)


def visitor_places() -> list[tuple[Path, str]]:
    """The folders a visitor knows by a name rather than a path: every session's uploads are
    under the upload root ("your uploads"; the data folders are named by fer_core.data.paths)."""
    return [(upload_root(), "your uploads")]


add_places(visitor_places)


def shown(path: str | os.PathLike) -> str:
    """``path`` for a message to a visitor: "<file> in your uploads", "<relative path> in the
    data folder", else the file's name; never an absolute path of the server."""
    return shown_path(path)


def allowed_roots() -> list[Path]:
    """Where this session may read data: the configured data folders and its uploads; on a
    server only this machine can reach (127.0.0.1, no password: its one user is the
    administrator, who can read any file anyway), the whole disk."""
    from app_lib.server.access import admin_mode

    if admin_mode() == "local":
        return [Path(Path.cwd().anchor)]
    return allowed_data_roots() + [session_folder()]


def roots_for(path: str) -> tuple[str, ...]:
    """The allowed roots that hold ``path`` (what loading it may read). Sessions reading the
    same shared dataset get the same answer, so they share one cached copy; a session's
    upload is under its own folder, which no other session's answer contains."""
    resolved = Path(os.path.realpath(path))
    return tuple(str(root) for root in allowed_roots() if is_within(resolved, [root]))


REMEMBERED_FILE = "dataset.json"  # in the runs folder: the path an administrator chose last


def _remembered_file() -> Path:
    from app_lib.model.model_state import runs_dir

    return runs_dir() / REMEMBERED_FILE


def remembered_path() -> str:
    """The dataset path an administrator chose last (in any tab), if it still lies in the
    allowed data folders (checked again now: the settings may have changed); else ''."""
    from fer_core.errors import FerError
    from fer_core.storage import read_json

    saved = (read_json(_remembered_file(), None) or {}).get("path") or ""
    if not saved:
        return ""
    try:
        return str(resolve_user_path(saved, allowed_data_roots()))
    except FerError:
        return ""


def _remember(resolved: str) -> None:
    """Bug 9: in a new tab the Training page's buttons stayed disabled until the path was typed
    again. An administrator's choice is kept for new tabs; a visitor's stays in their tab, and
    a session's own upload (deleted with the session) is never kept."""
    from app_lib.server.access import is_admin
    from fer_core.storage import write_json

    if is_admin() and is_within(Path(resolved), allowed_data_roots()):
        try:
            write_json(_remembered_file(), {"path": resolved})
        except OSError:
            pass  # remembering is a convenience; the session still has its path


def data_path() -> str:
    """The FER2013 path chosen on the Dataset page in this tab, else ``$FER2013_PATH``, else
    the one an administrator chose last, else ''."""
    if DATA_PATH_KEY not in st.session_state:
        st.session_state[DATA_PATH_KEY] = (default_data_path() or "").strip() or remembered_path()
    return st.session_state[DATA_PATH_KEY] or ""


def set_data_path(text: str) -> str:
    """Accept ``text`` as the session's dataset path if it lies in ``allowed_roots()``.

    Returns the resolved path ('' for an empty ``text``). Raises ``fer_core.data.paths.
    DataPathError`` (a FerError) otherwise, and the dataset already chosen stays chosen (a
    mistyped path unloaded it)."""
    text = (text or "").strip()
    if not text:
        st.session_state[DATA_PATH_KEY] = ""
        return ""
    resolved = str(resolve_user_path(text, allowed_roots()))
    st.session_state[DATA_PATH_KEY] = resolved
    _remember(resolved)
    return resolved
