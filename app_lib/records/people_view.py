"""The People & history page's "Saved sessions" tab: the sessions a viewer may see, one of
them with its kept faces, who it is about, a face assigned to someone, its CSV and its
deletion. ``finish(message)`` ends a change (the page shows the message after its rerun)."""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from app_lib.records.shared_store import person_label
from app_lib.ui.formatting import table_height
from app_lib.ui.text import user_errors
from fer_core.records import Records, Viewer
from fer_core.records.history import session_csv_bytes

THUMBNAILS_SHOWN = 12  # face thumbnails shown for a session that kept them


def when(value) -> str:
    """A time, in the server's local time zone."""
    if hasattr(value, "to_pydatetime"):  # a pandas Timestamp
        value = value.to_pydatetime()
    return value.astimezone().strftime("%Y-%m-%d %H:%M")


def session_label(session) -> str:
    name = f" · {session.name}" if session.name else ""
    return f"#{session.id} · {when(session.started_at)} · {session.source}{name} · {session.rows:,} rows"


def render_saved_sessions(store: Records, me: Viewer, finish: Callable[[str], None]) -> None:
    sessions = store.sessions(me)
    if not sessions:
        st.info(
            "No saved session. Sessions are saved from the Live page (Save to history, then "
            "Record) and the Photos & videos page.",
            icon=":material/history:",
        )
    else:
        st.dataframe(
            [
                {
                    "#": s.id,
                    "started": when(s.started_at),
                    "source": s.source,
                    "name": s.name,
                    "person": s.person_name or "",
                    "status": s.status,
                    "rows": s.rows,
                    "faces": s.faces,
                    "detector": s.detector,
                    "model": s.model,
                }
                for s in sessions
            ],
            hide_index=True,
            height=table_height(len(sessions)),
        )
        by_id = {s.id: s for s in sessions}
        number = st.selectbox(
            "Session",
            list(by_id),
            key="sessions-pick",
            format_func=lambda i: session_label(by_id[i]),
        )
        session = by_id[number]
        if session.status == "interrupted":
            st.caption(
                "Interrupted: the recording stopped without being finished (the tab closed or "
                "the server stopped). Everything it wrote until then is kept."
            )
        if session.thumbnails:
            shown = store.session_thumbnails(session.id, me, limit=THUMBNAILS_SHOWN)
            if shown:
                st.caption(
                    f"The first {len(shown)} faces kept with this session (48x48, as the model "
                    "saw them):"
                )
                st.image(
                    [png for _, _, png in shown],
                    caption=[f"face #{face} · frame {frame}" for face, frame, _ in shown],
                    width=72,
                )
        people = store.people(me)
        names = {p.id: person_label(p) for p in people}
        left, right = st.columns(2)
        with left.form("sessions-person"):
            about = st.selectbox(
                "About",
                [None, *names],
                index=(
                    [None, *names].index(session.person_id) if session.person_id in names else 0
                ),
                format_func=lambda i: "nobody" if i is None else names[i],
            )
            if st.form_submit_button("Save"):
                with user_errors():
                    store.set_session_person(session.id, about, me)
                    finish(
                        f"Session #{session.id} is about "
                        f"{'nobody' if about is None else names[about]}."
                    )
        session_rows = store.session_rows(session.id, me)
        face_ids = sorted(int(f) for f in session_rows["face_id"].dropna().unique())
        with right.form("sessions-face"):
            face = st.selectbox(
                "Face", face_ids, format_func=lambda f: f"face #{f}", disabled=not face_ids
            )
            whom = st.selectbox(
                "is",
                [None, *names],
                format_func=lambda i: "the session's person" if i is None else names[i],
            )
            if st.form_submit_button("Assign", disabled=not face_ids):
                with user_errors():
                    count = store.assign_face(session.id, face, whom, me)
                    finish(
                        f"Face #{face} of session #{session.id} ({count:,} rows): "
                        + ("the session's person" if whom is None else names[whom])
                        + "."
                    )
        actions = st.columns(2)
        actions[0].download_button(
            "Session CSV",
            lambda: session_csv_bytes(store, session.id, me),
            f"session-{session.id}.csv",
            mime="text/csv",
            on_click="ignore",
            key="sessions-csv",
            icon=":material/download:",
        )
        if actions[1].button(
            "Delete this session", key="sessions-delete", icon=":material/delete:"
        ):
            with user_errors():
                deleted = store.delete_session(session.id, me)
                finish(f"Deleted session #{session.id}: {deleted.describe()}.")


__all__ = ["render_saved_sessions", "when", "session_label", "THUMBNAILS_SHOWN"]
