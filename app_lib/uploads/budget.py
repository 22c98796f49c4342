"""What visitors' uploads may hold, and the memory they give back.

Streamlit keeps an uploaded file's bytes in the server's memory (its uploaded-file manager)
from the moment the upload arrives until the file leaves the widget or its session is shut
down; nothing bounds the number of files. Measured before this module: five 199 MB videos in
one tab took the server from 722 MB to 4,573 MB, three tabs to 10,483 MB. Here:

- **At arrival, the page's own rules** (``expect_uploads``): each page with an uploader says,
  on every run, which file types it takes and how large each may be (photos 25 MB, videos
  200 MB...). A file of another type, or over its type's cap, is refused at arrival with the
  page's reason, before Streamlit keeps it: a 190 MB file named ``.jpg`` on the Photos page
  never reaches memory (issue 34: twelve of them held 2.3 GB, outside every budget).
- **At arrival, the budgets** (``install_guard``, wrapping the manager's ``add_file``): a file that would
  take its session beyond ``FER_SESSION_UPLOAD_MB`` (default 600) or
  ``FER_SESSION_UPLOAD_FILES`` (default 40) — counting what the session has already stored on
  disk — or the server's upload bytes in memory beyond ``FER_UPLOAD_BUDGET_MB`` (default
  1,000) is refused at once: its bytes are dropped, the browser gets HTTP 413 with the reason,
  and the page shows the reason on its next run (``take_refusals``). The server therefore
  holds at most the budget, plus the uploads in flight (each at most ``server.maxUploadSize``,
  spooled to disk by the web server until it is complete).
- **Once accepted** the page stores each file on disk in chunks, hashing as it writes
  (``app_lib.uploads.session_files.store_upload``), and takes it out of Streamlit's memory
  (``release``): a session's uploads live in its folder, not in memory. The uploader is then
  replaced by an empty one, and the old one's value (which holds the file's bytes) is
  dropped (``forget_uploader``), for files the page took in and files it refused alike.
- **When a session ends**: Streamlit keeps a disconnected session for
  ``server.disconnectedSessionTTL`` seconds (set in ``.streamlit/config.toml``) so that a
  browser which lost its connection for a moment resumes it; then it only forgets the
  session, lazily, and never removes that session's uploaded files from its manager. A
  janitor thread (``start_janitor``) reaps expired sessions every ``JANITOR_SECONDS``,
  removes the files of sessions that no longer exist, and runs the garbage collector when it
  freed anything.

Everything that reaches into Streamlit's runtime is guarded: on a Streamlit without these
internals the app still runs, with Streamlit's own per-file limit only (tests/app/test_upload_budget.py
fails loudly first).
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import PurePath

MB = 2**20
SESSION_MB_ENV = "FER_SESSION_UPLOAD_MB"
SESSION_FILES_ENV = "FER_SESSION_UPLOAD_FILES"
BUDGET_MB_ENV = "FER_UPLOAD_BUDGET_MB"
DEFAULT_SESSION_MB = 600
DEFAULT_SESSION_FILES = 40
DEFAULT_BUDGET_MB = 1000
JANITOR_SECONDS = 10.0

_LOG = logging.getLogger("fer_app.uploads")
_lock = threading.RLock()
# session id -> {stored file key: bytes on disk}: what each session holds in its folder.
_stored: dict[str, dict[str, int]] = {}
# session id -> messages about files refused at arrival, shown by the page's next run.
_refusals: dict[str, list[str]] = {}
# How many sessions were alive at the janitor's last pass: a change collects garbage.
_swept_sessions: int | None = None
# session id -> {suffix: UploadRule}: what the session's page takes (expect_uploads).
_expected: dict[str, dict[str, UploadRule]] = {}


@dataclass(frozen=True)
class UploadRule:
    """What a page takes of one file type: at most ``max_mb`` megabytes; ``what`` names the
    kind ("photo") and ``setting`` the variable that sets the cap."""

    max_mb: float
    what: str
    setting: str | None = None


def _setting(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name, "") or default)
    except ValueError:
        return float(default)
    return value if value > 0 else float(default)


def session_upload_mb() -> float:
    return _setting(SESSION_MB_ENV, DEFAULT_SESSION_MB)


def session_upload_files() -> int:
    return int(_setting(SESSION_FILES_ENV, DEFAULT_SESSION_FILES))


def upload_budget_mb() -> float:
    return _setting(BUDGET_MB_ENV, DEFAULT_BUDGET_MB)


# ----------------------------------------------------------------------------- accounting


def note_stored(session_id: str, key: str, size: int) -> None:
    with _lock:
        _stored.setdefault(session_id, {})[key] = int(size)


def forget_stored(session_id: str, key: str | None = None) -> None:
    """Forget one stored file of a session, or (``key`` None) all of them."""
    with _lock:
        if key is None:
            _stored.pop(session_id, None)
        else:
            _stored.get(session_id, {}).pop(key, None)


def stored_of(session_id: str) -> tuple[int, int]:
    """(files, bytes) a session holds on disk."""
    with _lock:
        held = _stored.get(session_id, {})
        return len(held), sum(held.values())


def _in_memory(manager, session_id: str | None = None) -> tuple[int, int]:
    """(files, bytes) Streamlit's uploaded-file manager holds, for one session or all."""
    storage = getattr(manager, "file_storage", None)
    if storage is None:
        return 0, 0
    guard = getattr(manager, "_lock", None) or threading.Lock()
    with guard:
        sessions = (
            [storage.get(session_id, {})] if session_id is not None else list(storage.values())
        )
        files = [record for session in sessions for record in list(session.values())]
    return len(files), sum(len(record.data) for record in files)


def expect(session_id: str, rules: dict[str, UploadRule]) -> None:
    """Session ``session_id``'s page takes these file types (suffixes with their dot, any
    case), each up to its rule's size; others are refused at arrival."""
    with _lock:
        _expected[session_id] = {suffix.lower(): rule for suffix, rule in rules.items()}


def expect_uploads(rules: dict[str, UploadRule]) -> None:
    """``expect`` for the script run in progress (a page, before its uploader)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        expect(ctx.session_id, rules)


def _rule_refusal(session_id: str, name: str, size: int) -> str | None:
    """Why the session's page does not take this file (its type or its size), or None."""
    with _lock:
        rules = _expected.get(session_id)
    if rules is None:  # no page has said: only the budgets apply
        return None
    rule = rules.get(PurePath(name).suffix.lower())
    if rule is None:
        kinds = ", ".join(sorted(rules))
        return f"{name} ({size / MB:,.1f} MB) was not accepted: this page takes {kinds} files."
    if size > rule.max_mb * MB:
        how = f" ({rule.setting})" if rule.setting else ""
        from app_lib.uploads.session_files import (
            smaller_file_advice,  # (it brings streamlit, fer_core)
        )

        return (
            f"{name} ({size / MB:,.1f} MB) was not accepted: the limit for {rule.what}s is "
            f"{rule.max_mb:g} MB{how}. {smaller_file_advice(rule.what)}"
        )
    return None


def refusal(
    manager, session_id: str, name: str, size: int, file_id: str | None = None
) -> str | None:
    """Why a new upload of ``size`` bytes would not be taken (the page's rules, then the
    budgets), or None when it fits. A file that replaces one of the same id (a retried
    upload) is not counted twice."""
    page_says = _rule_refusal(session_id, name, size)
    if page_says is not None:
        return page_says
    replaced = 0
    storage = getattr(manager, "file_storage", {}) or {}
    if file_id is not None and file_id in storage.get(session_id, {}):
        replaced = len(storage[session_id][file_id].data)
    memory_files, memory_bytes = _in_memory(manager, session_id)
    disk_files, disk_bytes = stored_of(session_id)
    files = memory_files + disk_files + (0 if replaced else 1)
    held = memory_bytes + disk_bytes - replaced + size
    if files > session_upload_files():
        return (
            f"{name} was not accepted: this tab already holds {files - 1} files, the most "
            f"one tab may hold at once ({SESSION_FILES_ENV}). Clear some of them first."
        )
    if held > session_upload_mb() * MB:
        return (
            f"{name} ({size / MB:,.1f} MB) was not accepted: this tab would hold "
            f"{held / MB:,.0f} MB of uploads, more than the {session_upload_mb():,g} MB one "
            f"tab may hold at once ({SESSION_MB_ENV}). Clear some of them first, or use the "
            "command line (python -m fer_core predict) for large batches."
        )
    _, everyone = _in_memory(manager)
    if everyone - replaced + size > upload_budget_mb() * MB:
        return (
            f"{name} ({size / MB:,.1f} MB) was not accepted: the server is busy receiving "
            "other uploads right now (its upload memory budget, "
            f"{upload_budget_mb():,g} MB, {BUDGET_MB_ENV}, is taken). Try again in a minute."
        )
    return None


def take_refusals(session_id: str) -> list[str]:
    with _lock:
        return _refusals.pop(session_id, [])


# ----------------------------------------------------------------------------- the guard


class UploadRefused(Exception):
    """Raised inside Streamlit's upload handler; becomes HTTP 413 with the reason."""


def _refuse(reason: str):
    try:
        from starlette.exceptions import HTTPException

        return HTTPException(status_code=413, detail=reason)
    except ImportError:  # pragma: no cover - Streamlit's server is Starlette here
        return UploadRefused(reason)


def install_guard(manager) -> bool:
    """Wrap ``manager.add_file`` (once) so that uploads beyond the budgets are refused at
    arrival. Returns whether the guard is in place."""
    if manager is None or not hasattr(manager, "add_file"):
        return False
    with _lock:
        if getattr(manager, "_fer_budget_guard", False):
            return True
        original = manager.add_file

        def add_file(session_id, file, *args, **kwargs):
            size = len(getattr(file, "data", b"") or b"")
            name = getattr(file, "name", "") or "the file"
            from fer_core.safe_text import terminal_safe

            shown = terminal_safe(name)[:80]
            with _lock:
                reason = refusal(manager, session_id, shown, size, getattr(file, "file_id", None))
                if reason is None:
                    return original(session_id, file, *args, **kwargs)
                _refusals.setdefault(session_id, []).append(reason)
                del _refusals[session_id][:-20]
            _LOG.warning("upload refused (%.1f MB): %s", size / MB, reason.split(": ", 1)[-1])
            _rerun(session_id)  # the page shows why; no widget changed to rerun it
            raise _refuse(reason)

        manager.add_file = add_file
        manager._fer_budget_guard = True
    return True


def _rerun(session_id: str) -> None:
    """Ask the session's page to run again (with its widgets as they are), so that it shows
    a refusal at once: a refused file changes no widget, and the files that were accepted
    may have been taken in already."""
    try:
        from streamlit import runtime as streamlit_runtime

        if not streamlit_runtime.exists():
            return
        info = streamlit_runtime.get_instance()._session_mgr.get_active_session_info(session_id)
        if info is not None:
            # As Streamlit reruns a page when its source changes: the page and widget states
            # of the session's last run (a whole-page run, not a fragment's).
            from streamlit.proto.ClientState_pb2 import ClientState

            state = ClientState()
            state.CopyFrom(info.session._client_state)
            state.fragment_id = ""
            info.session.request_rerun(state)
    except Exception:  # noqa: BLE001 - the message then shows on the next run
        _LOG.debug("could not rerun session %s", session_id, exc_info=True)


def release(manager, session_id: str, file_ids) -> None:
    """Take files the page has stored on disk out of Streamlit's memory."""
    remove = getattr(manager, "remove_file", None)
    if remove is None:
        return
    for file_id in file_ids:
        remove(session_id=session_id, file_id=file_id)


def release_uploads(uploaded_files) -> None:
    """Take files of the current session that a page has stored on disk out of Streamlit's
    memory (``release`` for the script run in progress; nothing outside one)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        release(ctx.uploaded_file_mgr, ctx.session_id, [f.file_id for f in uploaded_files])


def forget_uploader(key: str) -> None:
    """Drop the value of the uploader widget ``key`` (one the page has replaced by a new,
    empty one): its UploadedFile objects hold the files' bytes, and Streamlit would keep
    them in the session's widget state. Call it in a run that does not draw that uploader."""
    import streamlit as st

    try:
        del st.session_state[key]
    except Exception:  # noqa: BLE001 - nothing kept under that key
        pass


def uploader_key(base: str, generation: int) -> str:
    """The key of a page's uploader after ``generation`` intakes (a new, empty one each)."""
    return base if generation == 0 else f"{base}-{generation}"


def forget_replaced_uploaders(base: str, generation: int) -> None:
    """``forget_uploader`` for the uploaders the current one (``generation``) replaced: the
    last few, which a rerun may not yet have dropped."""
    for replaced in range(max(0, generation - 3), generation):
        forget_uploader(uploader_key(base, replaced))


def protect_uploads() -> None:
    """Called by app.py on every script run (cheap after the first): the guard on the
    session's uploaded-file manager (the server's one manager under ``streamlit run``), and
    the janitor."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is not None:
        install_guard(getattr(ctx, "uploaded_file_mgr", None))
    if _janitor is None:
        start_janitor()


# ----------------------------------------------------------------------------- session end

_janitor: threading.Thread | None = None


def _reap_expired_sessions(runtime) -> set[str] | None:
    """Let Streamlit's session storage drop sessions whose reconnection grace has passed,
    and return the ids of the sessions that still exist (None when they cannot be read)."""
    manager = getattr(runtime, "_session_mgr", None)
    storage = getattr(manager, "_session_storage", None)
    cache = getattr(storage, "_cache", None)
    if manager is None or not hasattr(manager, "list_sessions"):
        return None
    if cache is not None:
        expire = getattr(cache, "expire", None)
        if callable(expire):
            expire()
        else:
            len(cache)
    return {info.session.id for info in manager.list_sessions()}


def sweep(runtime) -> int:
    """One janitor pass: forget ended sessions, drop their uploaded files from memory, and
    collect garbage when anything went. Returns the bytes released."""
    alive = _reap_expired_sessions(runtime)
    if alive is None:
        return 0
    manager = getattr(runtime, "uploaded_file_mgr", None)
    freed = 0
    for session_id in list(getattr(manager, "file_storage", {}) or {}):
        if manager is not None and session_id not in alive:
            freed += _in_memory(manager, session_id)[1]
            manager.remove_session_files(session_id)
    with _lock:
        for session_id in [
            s for s in set(_stored) | set(_refusals) | set(_expected) if s not in alive
        ]:
            _stored.pop(session_id, None)
            _refusals.pop(session_id, None)
            _expected.pop(session_id, None)
    global _swept_sessions
    if freed or _swept_sessions != len(alive):
        gc.collect()
    _swept_sessions = len(alive)
    if freed:
        _LOG.info("released %.1f MB of uploads of ended sessions", freed / MB)
    return freed


def start_janitor() -> bool:
    """Start the janitor thread once per server process (only under a running server)."""
    global _janitor
    try:
        from streamlit import runtime as streamlit_runtime

        if not streamlit_runtime.exists():
            return False
        instance = streamlit_runtime.get_instance()
    except Exception:  # noqa: BLE001 - no server runtime (tests, bare mode)
        return False
    with _lock:
        if _janitor is not None and _janitor.is_alive():
            return True

        def loop() -> None:
            while True:
                time.sleep(JANITOR_SECONDS)
                try:
                    sweep(instance)
                except Exception:  # noqa: BLE001 - a janitor never takes the server down
                    _LOG.exception("upload janitor")

        _janitor = threading.Thread(target=loop, name="fer-upload-janitor", daemon=True)
        _janitor.start()
    return True


__all__ = [
    "protect_uploads",
    "UploadRule",
    "expect",
    "expect_uploads",
    "forget_uploader",
    "forget_replaced_uploaders",
    "uploader_key",
    "install_guard",
    "release",
    "release_uploads",
    "refusal",
    "take_refusals",
    "note_stored",
    "forget_stored",
    "stored_of",
    "sweep",
    "start_janitor",
    "session_upload_mb",
    "session_upload_files",
    "upload_budget_mb",
    "SESSION_MB_ENV",
    "SESSION_FILES_ENV",
    "BUDGET_MB_ENV",
]
