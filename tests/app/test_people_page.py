"""The People & history page under AppTest, on the records database in the runs folder: a
person is added, their saved sessions are summarised and compared, exported and deleted; a
visitor on a shared server sees only what their own session saved."""

from __future__ import annotations

import json
from datetime import timedelta

from app_lib.ui.text import escape_markdown
from fer_core.records import Records, Viewer
from fer_core.records.database import utc_now
from tests.app.test_pages import app_env, assert_clean, listening_on, run_page, texts  # noqa: F401
from tests.records.test_store import face_row

PAGE = "app_pages/people.py"


def _db(app_env):  # noqa: F811
    return Records(f"sqlite:///{app_env['runs'] / 'records.sqlite'}")


def test_adding_a_person_then_their_history_export_and_deletion(app_env):  # noqa: F811
    at = run_page(PAGE)
    assert_clean(at)
    assert "No one yet" in texts(at.info)
    at.text_input[0].input("Ann <b>*bold*</b>")
    at.button[0].click()  # Add (the form's submit button)
    at.run()
    assert_clean(at)
    assert "Added #1 Ann" in texts(at.success)
    assert "No saved session yet" in texts(at.info)

    store = _db(app_env)
    owner = Viewer("elsewhere", admin=True)
    two_days_ago = utc_now() - timedelta(days=2)
    store.save_session(
        "live",
        [face_row(i, label="happy") for i in range(6)] + [face_row(6, label="sad", uncertain=True)],
        owner,
        person_id=1,
        started_at=two_days_ago,
    )
    store.save_session(
        "video", [face_row(i, label="sad") for i in range(3)], owner, person_id=1, name="clip.mp4"
    )
    at.run()
    assert_clean(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Sessions"] == "2" and metrics["Faces analysed"] == "10"
    assert metrics["Uncertain"] == "10%"
    # the name as text: every Markdown character escaped
    assert escape_markdown("Ann <b>*bold*</b>") in [str(h.value) for h in at.subheader]
    assert len(at.get("plotly_chart")) >= 4  # shares, days, and the two sessions side by side
    downloads = at.get("download_button")
    assert {d.proto.label for d in downloads} >= {"Everything (JSON)", "Rows (CSV)"}

    at.checkbox(key="people-delete-sure").check()
    at.run()
    at.button(key="people-delete").click()
    at.run()
    assert_clean(at)
    assert "Deleted #1" in texts(at.success) and "10 result rows" in texts(at.success)
    assert store.people(owner) == [] and store.sessions(owner) == []
    store.close()


def test_a_visitor_sees_only_what_their_session_saved(app_env, monkeypatch):  # noqa: F811
    store = _db(app_env)
    someone = Viewer("another-tab")
    other = store.add_person("Somebody else", someone)
    store.save_session("photos", [face_row(0)], someone, person_id=other.id)
    with listening_on("0.0.0.0"):  # a shared server without a password: nobody is admin
        at = run_page(PAGE)
        assert_clean(at)
        assert "only what this browser session saved" in texts(at.caption)
        assert "Somebody else" not in json.dumps([str(e.value) for e in at.get("selectbox")])
        assert "No saved session" in texts(at.info)
    store.close()


def test_an_upload_analysis_is_saved_to_history_for_a_person(app_env):  # noqa: F811
    import skimage.data

    from tests.app.test_pages import png_bytes

    store = _db(app_env)
    admin = Viewer("cli", admin=True)
    ann = store.add_person("Ann", admin)
    at = run_page("app_pages/upload.py")
    at.file_uploader[0].set_value(
        [("astronaut.png", png_bytes(skimage.data.astronaut()), "image/png")]
    )
    at.run()
    assert_clean(at)
    picker = next(s for s in at.selectbox if (s.key or "").startswith("save-person-"))
    picker.set_value(ann.id)
    next(b for b in at.button if b.label == "Save to history").click()
    at.run()
    assert_clean(at)
    assert "Saved to history as session #1" in texts(at.caption)
    info = store.session(1, admin)
    assert (info.source, info.name, info.person_name, info.rows, info.faces) == (
        "photos",
        "astronaut.png",
        "Ann",
        1,
        1,
    )
    assert store.session_rows(1, admin)["label"].tolist() == ["happy"]
    at.run()  # saved once: the button is gone
    assert not [b for b in at.button if b.label == "Save to history"]
    store.close()


def test_a_session_that_kept_face_thumbnails_shows_them(app_env):  # noqa: F811
    import cv2
    import numpy as np

    store = _db(app_env)
    admin = Viewer("cli", admin=True)
    png = cv2.imencode(".png", np.full((48, 48), 128, np.uint8))[1].tobytes()
    session = store.start_session("live", admin, thumbnails=True)
    store.add_rows(session, [face_row(i, thumbnail=png) for i in range(3)])
    store.finish_session(session)
    at = run_page(PAGE)
    assert_clean(at)
    assert "The first 3 faces kept with this session" in texts(at.caption)
    assert len(at.get("image")) >= 1  # the three faces, as images
    store.close()


def test_save_to_history_pressed_again_before_the_page_answers_saves_once():
    """Presses of an analysis's "Save to history" handled at the same time (Streamlit runs a
    rerun in a new script thread without waiting for the last) save one session."""
    import threading
    import time

    from app_lib.records.shared_store import save_once
    from tests.app.test_live_record import PRESSES, at_once

    saved, calls = {}, []
    lock = threading.Lock()

    def save():  # a database that takes its time to answer
        calls.append(1)
        time.sleep(0.05)
        return 7

    numbers = at_once(lambda: save_once(saved, "video-abc", save, lock), PRESSES)
    assert len(calls) == 1 and numbers == [7] * PRESSES and saved == {"video-abc": 7}


def test_a_bad_database_url_is_one_line_on_the_page(app_env, monkeypatch):  # noqa: F811
    """Issue 34 item 5: the People page showed a DatabaseError (with server paths) for a
    FER_DB_URL that is a file but not a database; now one line says what to check."""
    from fer_core.records import forget_open_records

    junk = app_env["tmp"] / "notes.sqlite"
    junk.write_bytes(b"not a database, only text " * 200)
    monkeypatch.setenv("FER_DB_URL", f"sqlite:///{junk}")
    forget_open_records()
    try:
        at = run_page(PAGE)
        assert_clean(at)
        shown = texts(at.error)
        assert "file is not a database" in shown and "Check FER_DB_URL" in shown, shown
        with listening_on("0.0.0.0"):  # a visitor: told it cannot save, not where it is
            at = run_page(PAGE)
            assert_clean(at)
            shown = texts(at.error)
            assert "cannot be opened" in shown and str(junk) not in shown, shown
    finally:
        forget_open_records()
