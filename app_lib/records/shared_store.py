"""The records database as the pages use it: one store per URL for the whole server, the
viewer this browser session is (an administrator sees everyone's records; a visitor only
what this session saved), and the person picker shared by the Live, upload and People pages.

The owner token is a random value kept in this browser session's state: it is never shown,
never put in a URL, and a new session (a reload) gets a new one. What an earlier session
saved stays in the database, for the administrator, until deleted or purged."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

import streamlit as st

from app_lib.server.access import is_admin
from app_lib.ui.text import escape_markdown
from fer_core.errors import FerError
from fer_core.records import Person, Records, Viewer, database_url, open_records

OWNER_KEY = "fer_records_owner"
SAVE_LOCK_KEY = "fer_saving"
NOBODY = "nobody"
_LOCK_CREATION = threading.Lock()


def records() -> Records | None:
    """The shared store, or None after showing why it cannot be opened."""
    from app_lib.model.model_state import runs_dir

    try:
        return open_records(database_url(runs=runs_dir()))
    except FerError as exc:
        # the reason names the database (a server path): for the administrator only
        st.error(
            f"The records database cannot be opened: {escape_markdown(exc)}"
            if is_admin()
            else "The records database cannot be opened, so nothing can be saved to history "
            "now; an administrator sees why on this page.",
            icon=":material/database:",
        )
        return None


def viewer() -> Viewer:
    owner = st.session_state.get(OWNER_KEY)
    if owner is None:
        owner = st.session_state[OWNER_KEY] = "tab-" + secrets.token_hex(12)
    return Viewer(owner, admin=is_admin())


def who_sees_what(viewer_: Viewer) -> str:
    if viewer_.admin:
        return "You are an administrator: you see and can delete everyone's records."
    return (
        "You see only what this browser session saved (a reload starts a new session); "
        "administrators see everyone's records."
    )


def person_label(person: Person) -> str:
    return f"#{person.id} {person.name}"


def pick_person(
    store: Records, viewer_: Viewer, key: str, label: str = "Person", allow_nobody=True
):
    """A select box of the people this viewer sees; returns a Person or None (nobody)."""
    people = store.people(viewer_)
    options: list = ([None] if allow_nobody else []) + [p.id for p in people]
    by_id = {p.id: p for p in people}
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]  # a person deleted meanwhile
    if not options:
        return None
    chosen = st.selectbox(
        label,
        options,
        key=key,
        format_func=lambda pid: NOBODY if pid is None else person_label(by_id[pid]),
    )
    return None if chosen is None else by_id[chosen]


def model_name(model) -> str:
    """What a saved session records as its model: the shipped file's name, or a run's
    folder and file (``run-name/best.keras``)."""
    from pathlib import Path

    from fer_core.models.inference import DEFAULT_MODEL

    path = Path(model.path)
    return f"shipped {path.name}" if path == DEFAULT_MODEL else f"{path.parent.name}/{path.name}"


def save_to_history(
    rows: list[dict], source: str, name: str, key: str, detector: str, model
) -> None:
    """ "Save to history" for an analysis (a video's frames, a batch of photos): whom it is
    about, and a button; once saved, which session it became (saved once per ``key``)."""
    store = records()
    if store is None:
        return
    me = viewer()
    saved = st.session_state.setdefault("fer_saved_sessions", {})
    if key in saved:
        st.caption(f"Saved to history as session #{saved[key]}.")
        return
    with st.form(f"save-{key}", border=False):
        left, right = st.columns([3, 2], vertical_alignment="bottom")
        with left:
            person = pick_person(store, me, key=f"save-person-{key}", label="Save for")
        if right.form_submit_button("Save to history", icon=":material/save:"):
            try:
                save_once(
                    saved,
                    key,
                    lambda: store.save_session(
                        source,
                        rows,
                        me,
                        person_id=None if person is None else person.id,
                        name=name,
                        detector=detector,
                        model=model_name(model),
                    ),
                    session_lock(SAVE_LOCK_KEY),
                )
            except FerError as exc:
                st.error(f"Not saved: {escape_markdown(exc)}", icon=":material/database:")
            else:
                st.rerun()


def session_lock(name: str) -> threading.Lock:
    """A lock of this browser session's, kept in its state under ``name``. Streamlit can run
    two of a session's script runs at once (a rerun starts a new script thread without
    waiting for the last one to stop), so a press made again before the page answered is
    handled beside the first: whatever checks the session's state, then acts, takes it."""
    with _LOCK_CREATION:
        lock = st.session_state.get(name)
        if lock is None:
            lock = st.session_state[name] = threading.Lock()
    return lock


def save_once(saved: dict, key: str, save: Callable[[], int], lock: threading.Lock) -> int:
    """The session number ``key`` was saved as: ``save()`` is called for it once, however
    many presses of its button are handled at the same time."""
    with lock:
        if key not in saved:
            saved[key] = save()
        return saved[key]


__all__ = [
    "save_to_history",
    "save_once",
    "session_lock",
    "records",
    "viewer",
    "who_sees_what",
    "pick_person",
    "person_label",
    "model_name",
]
