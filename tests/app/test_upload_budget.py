"""Issue 24, item 1: the upload budgets, on Streamlit's own uploaded-file manager (the one
``streamlit run`` uses), and the janitor that gives back the files of ended sessions."""

from __future__ import annotations

import pytest
from starlette.exceptions import HTTPException
from streamlit.runtime.memory_uploaded_file_manager import MemoryUploadedFileManager
from streamlit.runtime.uploaded_file_manager import UploadedFileRec

from app_lib.uploads import budget as upload_budget
from app_lib.uploads.budget import (
    forget_stored,
    install_guard,
    note_stored,
    release,
    sweep,
    take_refusals,
)

MB = 2**20


@pytest.fixture()
def manager(monkeypatch):
    monkeypatch.setenv("FER_SESSION_UPLOAD_MB", "5")
    monkeypatch.setenv("FER_SESSION_UPLOAD_FILES", "3")
    monkeypatch.setenv("FER_UPLOAD_BUDGET_MB", "8")
    monkeypatch.setattr(upload_budget, "_stored", {})
    monkeypatch.setattr(upload_budget, "_refusals", {})
    monkeypatch.setattr(upload_budget, "_expected", {})
    manager = MemoryUploadedFileManager("/_stcore/upload_file")
    assert install_guard(manager) and install_guard(manager)  # once, however often asked
    return manager


def rec(file_id: str, mb: float, name: str = "clip.mp4") -> UploadedFileRec:
    return UploadedFileRec(file_id=file_id, name=name, type="video/mp4", data=b"\0" * int(mb * MB))


def held(manager, session: str) -> float:
    return sum(len(f.data) for f in manager.file_storage.get(session, {}).values()) / MB


def test_a_tab_holds_at_most_its_megabytes_counting_what_it_stored_on_disk(manager):
    manager.add_file("a", rec("1", 2))
    manager.add_file("a", rec("2", 2))
    with pytest.raises(HTTPException) as refused:
        manager.add_file("a", rec("3", 2, "third\x1b[31m.mp4"))
    assert refused.value.status_code == 413
    message = refused.value.detail
    assert message.startswith(
        "third\\x1b[31m.mp4 (2.0 MB) was not accepted: this tab would "
        "hold 6 MB of uploads, more than the 5 MB"
    )
    assert "FER_SESSION_UPLOAD_MB" in message
    assert held(manager, "a") == 4  # the refused bytes were not kept
    assert take_refusals("a") == [message] and take_refusals("a") == []
    # Stored on disk and released from memory: still counted against the tab.
    release(manager, "a", ["1", "2"])
    note_stored("a", "k1", 2 * MB)
    note_stored("a", "k2", 2 * MB)
    assert held(manager, "a") == 0
    with pytest.raises(HTTPException):
        manager.add_file("a", rec("3", 2))
    forget_stored("a", "k1")  # the visitor removed a file
    manager.add_file("a", rec("3", 2))
    assert held(manager, "a") == 2


def test_a_file_the_page_does_not_take_is_refused_as_it_arrives(manager):
    """Issue 34 item 1: a page says which types it takes and how large each may be; a file
    over its type's cap, or of another type, is refused at arrival (HTTP 413, the reason
    for the page), and its bytes are never kept. (Before, a 190 MB file named .jpg on the
    Photos page was kept, then refused by the page, and stayed in memory.)"""
    from app_lib.uploads.budget import UploadRule, expect

    photo = UploadRule(1, "photo", "FER_MAX_PHOTO_MB")
    expect("a", {".JPG": photo, ".png": photo, ".mp4": UploadRule(4, "video")})
    with pytest.raises(HTTPException) as refused:
        manager.add_file("a", rec("1", 3, "holiday.jpg"))
    assert refused.value.status_code == 413
    assert refused.value.detail == (
        "holiday.jpg (3.0 MB) was not accepted: the limit for photos is 1 MB "
        "(FER_MAX_PHOTO_MB). Upload a smaller file, or use the command line "
        "(python -m fer_core predict)."
    )
    with pytest.raises(HTTPException) as refused:
        manager.add_file("a", rec("2", 0.1, "notes.txt"))
    assert refused.value.detail.endswith("this page takes .jpg, .mp4, .png files.")
    assert held(manager, "a") == 0
    assert len(take_refusals("a")) == 2
    manager.add_file("a", rec("3", 0.5, "FACE.JPG"))  # within its cap, any case
    manager.add_file("a", rec("4", 3, "clip.mp4"))
    assert held(manager, "a") == 3.5
    # Another session's page has said nothing: only the budgets apply to it.
    manager.add_file("b", rec("5", 3, "holiday.jpg"))
    assert held(manager, "b") == 3


def test_a_tab_holds_at_most_its_number_of_files(manager):
    for i in range(3):
        manager.add_file("a", rec(str(i), 0.01))
    with pytest.raises(HTTPException) as refused:
        manager.add_file("a", rec("4", 0.01))
    assert "already holds 3 files" in refused.value.detail
    assert "FER_SESSION_UPLOAD_FILES" in refused.value.detail
    manager.add_file("a", rec("2", 0.01))  # a retried upload of the same file is no new file


def test_the_server_holds_at_most_its_budget_for_all_tabs(manager):
    manager.add_file("a", rec("1", 4))
    manager.add_file("b", rec("1", 3))
    with pytest.raises(HTTPException) as refused:
        manager.add_file("c", rec("1", 2))
    assert "the server is busy receiving other uploads" in refused.value.detail
    assert "8 MB, FER_UPLOAD_BUDGET_MB" in refused.value.detail
    assert take_refusals("c") and not take_refusals("a")
    release(manager, "a", ["1"])  # a's file went to disk: room again
    manager.add_file("c", rec("1", 2))


class _Info:
    def __init__(self, session_id):
        self.session = type("S", (), {"id": session_id})()


class _Sessions:
    """What the janitor reads of Streamlit's session manager (checked against the real one
    in test_streamlit_still_has_what_the_budget_relies_on)."""

    def __init__(self, alive):
        self.alive = alive
        self._session_storage = type("Storage", (), {"_cache": {}})()

    def list_sessions(self):
        return [_Info(s) for s in self.alive]


def test_the_janitor_gives_back_the_files_of_sessions_that_ended(manager):
    manager.add_file("gone", rec("1", 1))
    manager.add_file("here", rec("1", 1))
    note_stored("gone", "k", MB)
    runtime = type("Runtime", (), {})()
    runtime._session_mgr = _Sessions({"here"})
    runtime.uploaded_file_mgr = manager
    assert sweep(runtime) == MB
    assert "gone" not in manager.file_storage and held(manager, "here") == 1
    assert upload_budget.stored_of("gone") == (0, 0)
    assert sweep(runtime) == 0


def test_streamlit_still_has_what_the_budget_relies_on():
    """The guard and the janitor read Streamlit internals (version pinned in
    requirements.txt); an upgrade that moves them fails here, not silently in production."""
    from streamlit.runtime.memory_session_storage import MemorySessionStorage
    from streamlit.runtime.websocket_session_manager import WebsocketSessionManager

    manager = MemoryUploadedFileManager("/x")
    assert isinstance(manager.file_storage, dict) and hasattr(manager, "_lock")
    assert callable(manager.remove_file) and callable(manager.remove_session_files)
    storage = MemorySessionStorage(ttl_seconds=1)
    assert callable(getattr(storage._cache, "expire", None))
    import inspect

    assert callable(WebsocketSessionManager.list_sessions)
    assert callable(WebsocketSessionManager.get_active_session_info)
    from streamlit.runtime.app_session import AppSession

    assert callable(AppSession.request_rerun)
    assert "self.request_rerun(self._client_state)" in inspect.getsource(AppSession)
    from streamlit.runtime import Runtime

    assert "_session_mgr" in inspect.getsource(Runtime.__init__)

    assert "_session_storage" in inspect.getsource(WebsocketSessionManager.__init__)
    from streamlit.web.server.starlette import starlette_routes

    source = inspect.getsource(starlette_routes.create_upload_routes)
    assert "upload_mgr.add_file(" in source  # the route calls the instance's add_file
