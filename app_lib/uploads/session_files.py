"""Uploaded files on disk: one private folder per browser session, removed when it ends.

- Each session gets ``<upload root>/<server pid>-<start time>/<random>/`` the first time it
  stores a file. Streamlit releases the session-scoped resource that owns the folder when the
  session disconnects or is closed (``st.cache_resource(scope="session", on_release=...)``,
  called from ``AppSession.clear_session_caches``), and the folder is deleted then. A session
  that reconnects gets a fresh, empty folder: its earlier uploads must be uploaded again.
- When the server starts (``app_lib`` is imported by the first script run), folders of
  server processes that are no longer running are deleted: a killed server's uploads do not
  stay behind past the next start.
- Names on disk come from the content's SHA-256 and a known suffix, never from the name the
  user gave (a 240-character name, ``../``, or Markdown in it change nothing on disk).
- Every write goes to a unique temporary file in the target folder and is renamed into place,
  so two sessions (threads) storing the same file at once both succeed.
- Size caps per kind of upload, with a message that says what to do.

Settings (environment): ``FER_UPLOAD_DIR`` (the upload root; default ``<tmp>/fer_app_uploads``),
``FER_MAX_PHOTO_MB`` (25), ``FER_MAX_VIDEO_MB`` (200), ``FER_MAX_VIDEO_SECONDS`` (600).
The dataset CSV is capped by Streamlit's ``server.maxUploadSize`` (400 MB,
``.streamlit/config.toml``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import stat
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import psutil
import streamlit as st

from fer_core import FerError
from fer_core.data.media import DATASET_SUFFIXES, IMAGE_SUFFIXES, VIDEO_SUFFIXES
from fer_core.storage import store_by_digest

MB = 2**20
UPLOAD_DIR_ENV = "FER_UPLOAD_DIR"


class UploadError(FerError):
    """An upload is refused (too large, too long, wrong kind) or cannot be stored."""


def _env_number(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return default
    return value if value > 0 else default


def max_photo_mb() -> float:
    return _env_number("FER_MAX_PHOTO_MB", 25)


def max_video_mb() -> float:
    return _env_number("FER_MAX_VIDEO_MB", 200)


def max_video_seconds() -> float:
    return _env_number("FER_MAX_VIDEO_SECONDS", 600)


def max_dataset_mb() -> float:
    try:
        from streamlit import config

        return float(config.get_option("server.maxUploadSize"))
    except Exception:  # noqa: BLE001 - outside a configured Streamlit
        return 400.0


# Suffixes kept on disk (lower case); anything else is stored as ``.bin``.
KNOWN_SUFFIXES = {*DATASET_SUFFIXES, *IMAGE_SUFFIXES, *VIDEO_SUFFIXES}


# ----------------------------------------------------------------------------- folders


def upload_root() -> Path:
    configured = os.environ.get(UPLOAD_DIR_ENV, "").strip()
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "fer_app_uploads"


SERVER_FOLDER_NAME = re.compile(r"[0-9]{1,10}-[0-9]{1,12}")


def _process_tag(pid: int) -> str | None:
    """``<pid>-<start time>`` of a running process, or None (a reused pid gets a new tag)."""
    try:
        return f"{pid}-{int(psutil.Process(pid).create_time())}"
    except (psutil.Error, ValueError, OverflowError):
        return None


def _private_folder(path: Path) -> Path:
    """``path`` created (mode 0700) and checked: a real folder, owned by this user (in a shared
    /tmp, a folder or link planted by another user is refused)."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise UploadError(
            "The upload folder is not a folder owned by the app's user. "
            f"Set {UPLOAD_DIR_ENV} to a private folder and restart the app."
        )
    return path


def remove_stale_folders(root: Path | None = None) -> list[Path]:
    """Delete the upload folders (named ``<pid>-<start time>``) of server processes that no
    longer run; returns them. Nothing else under ``root`` is touched."""
    root = root or upload_root()
    removed: list[Path] = []
    try:
        children = list(root.iterdir())
    except OSError:
        return removed
    for child in children:
        # Only folders this module makes ("<pid>-<start time>"): FER_UPLOAD_DIR may be set to
        # a folder that holds other things, and those are never touched.
        if child.is_symlink() or not child.is_dir() or not SERVER_FOLDER_NAME.fullmatch(child.name):
            continue
        pid_text, _, _ = child.name.partition("-")
        if _process_tag(int(pid_text)) != child.name:
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


_server_lock = threading.Lock()
_server_folder_path: Path | None = None


def server_folder() -> Path:
    """This server process's upload folder (stale folders of dead servers are removed again
    the first time, in case the upload root was changed)."""
    global _server_folder_path
    with _server_lock:
        if _server_folder_path is None:
            root = _private_folder(upload_root())
            remove_stale_folders(root)
            _server_folder_path = root / (_process_tag(os.getpid()) or f"{os.getpid()}-0")
        return _private_folder(_server_folder_path)


@dataclass
class SessionFolder:
    path: Path
    session_id: str = ""


def _remove_session_folder(folder: SessionFolder) -> None:
    shutil.rmtree(folder.path, ignore_errors=True)
    if folder.session_id:
        from app_lib.uploads.budget import forget_stored

        forget_stored(folder.session_id)


def session_id() -> str:
    """The current browser session's id ("" outside a script run)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


@st.cache_resource(scope="session", on_release=_remove_session_folder, show_spinner=False)
def _session_folder() -> SessionFolder:
    return SessionFolder(server_folder() / secrets.token_hex(8), session_id())


def session_folder() -> Path:
    """The current browser session's private upload folder (created on demand)."""
    folder = _session_folder().path
    server_folder()
    return _private_folder(folder)


def _chunks(uploaded, size: int = 4 * MB):
    uploaded.seek(0)
    yield from iter(lambda: uploaded.read(size), b"")


def upload_size(uploaded) -> int:
    size = getattr(uploaded, "size", None)
    if size is None:
        size = len(uploaded.getbuffer())
    return int(size)


def check_upload_size(uploaded, limit_mb: float, what: str, setting: str | None) -> None:
    size = upload_size(uploaded)
    if size > limit_mb * MB:
        how = f" (the {setting} setting)" if setting else ""
        raise UploadError(
            f"This {what} is {size / MB:,.1f} MB; the limit for {what}s is "
            f"{limit_mb:g} MB{how}. {smaller_file_advice(what)}"
        )


def smaller_file_advice(what: str) -> str:
    """What to do about a ``what`` ("photo", "video", "dataset") over its cap."""
    return "Upload a smaller file" + (
        ", or use the command line (python -m fer_core predict)." if what != "dataset" else "."
    )


def save_upload(uploaded, folder: Path | None = None) -> Path:
    """Store an uploaded file in the session's folder, named by its SHA-256 (the same upload is
    stored once) and a known suffix; returns its path. The user's file name is not used."""
    return _store(uploaded, folder)[0]


def _store(uploaded, folder: Path | None) -> tuple[Path, str]:
    """The file stored in chunks, hashed as it is written: its path and SHA-256. A full disk
    (or another OS error) raises UploadError with a message for the page, never a traceback;
    the partly written temporary file is removed."""
    suffix = Path(getattr(uploaded, "name", "") or "").suffix.lower()
    try:
        folder = folder or session_folder()
        uploaded.seek(0)
        return store_by_digest(uploaded, folder, "", suffix if suffix in KNOWN_SUFFIXES else ".bin")
    except OSError as exc:
        raise UploadError(_storage_failure(uploaded, exc)) from exc
    finally:
        uploaded.seek(0)


@dataclass(frozen=True)
class StoredUpload:
    """An upload as the pages keep it: on disk in the session's folder, never its bytes.
    ``key`` (the first 16 hex digits of its SHA-256) names it in widget keys."""

    name: str
    path: Path
    size: int
    digest: str

    @property
    def key(self) -> str:
        return self.digest[:16]

    def exists(self) -> bool:
        return self.path.is_file()


def store_upload(uploaded, folder: Path | None = None) -> StoredUpload:
    """Store an uploaded file in the session's folder (in chunks, hashed as it is written;
    the same content once) and count it against the session's upload budget."""
    from app_lib.uploads.budget import note_stored

    target, digest = _store(uploaded, folder)
    stored = StoredUpload(
        str(getattr(uploaded, "name", "") or target.name), target, target.stat().st_size, digest
    )
    note_stored(session_id(), stored.key, stored.size)
    return stored


def discard_upload(stored: StoredUpload) -> None:
    """Delete a stored upload (the visitor removed it) and stop counting it."""
    from app_lib.uploads.budget import forget_stored

    stored.path.unlink(missing_ok=True)
    forget_stored(session_id(), stored.key)


def _storage_failure(uploaded, exc: OSError) -> str:
    """What to tell the visitor when an upload cannot be stored (no server path in it)."""
    import errno

    size = f" ({upload_size(uploaded) / MB:,.1f} MB)"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"The server's disk is full: this file{size} could not be stored. Try again "
            "later or with a smaller file; the server's administrator needs to free space "
            f"in its upload folder ({UPLOAD_DIR_ENV})."
        )
    return (
        f"This file{size} could not be stored on the server "
        f"({exc.strerror or type(exc).__name__}). Try again later; if it persists, the "
        f"server's administrator should check its upload folder ({UPLOAD_DIR_ENV})."
    )


__all__ = [
    "UploadError",
    "StoredUpload",
    "store_upload",
    "discard_upload",
    "session_id",
    "session_folder",
    "server_folder",
    "remove_stale_folders",
    "save_upload",
    "check_upload_size",
    "max_photo_mb",
    "max_video_mb",
    "max_video_seconds",
    "max_dataset_mb",
    "upload_root",
]
