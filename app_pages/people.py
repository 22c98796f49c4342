"""People & history: the people whose sessions are kept, each one's emotions over days and
sessions, two sessions side by side, exports, and deleting everything about someone."""

import streamlit as st

from app_lib.records.people_view import render_saved_sessions, session_label, when
from app_lib.records.shared_store import person_label, pick_person, records, viewer, who_sees_what
from app_lib.ui.charts import daily_figure, share_bars
from app_lib.ui.formatting import table_height
from app_lib.ui.text import escape_markdown, user_errors
from fer_core.labels import EMOTIONS
from fer_core.records import RETENTION_ENV, retention_days
from fer_core.records.history import (
    daily_shares,
    emotion_shares,
    person_csv_bytes,
    person_json_bytes,
    session_shares,
    uncertain_share,
)

DONE_KEY = "people_done"  # a message to show after the rerun that follows a change

st.title("People & history")
store = records()
if store is None:
    st.stop()
me = viewer()

retention = None
with user_errors():
    retention = retention_days()
st.caption(
    f"{who_sees_what(me)} "
    + (
        f"Sessions and captured faces are deleted {retention:g} days after they were recorded "
        f"({RETENTION_ENV})."
        if retention
        else f"Records are kept until deleted ({RETENTION_ENV} is not set)."
    )
    + " Only what someone chose to save is here: boxes and probabilities, no face images "
    "unless a capture was asked for."
)
if me.admin:
    st.caption(f"Stored in the {escape_markdown(store.location)}.")

done = st.session_state.pop(DONE_KEY, None)
if done:
    st.success(escape_markdown(done), icon=":material/check_circle:")

people_tab, sessions_tab = st.tabs(["People", "Saved sessions"])


def _finish(message: str) -> None:
    st.session_state[DONE_KEY] = message
    st.rerun()


with people_tab:
    with st.expander("Add a person", expanded=not store.people(me)):
        with st.form("people-add", clear_on_submit=True):
            name = st.text_input("Name", max_chars=200)
            note = st.text_area("Note (optional)", max_chars=2000, height=80)
            if st.form_submit_button("Add", icon=":material/person_add:"):
                with user_errors():
                    added = store.add_person(name, me, note=note)
                    _finish(f"Added #{added.id} {added.name}.")

    person = pick_person(store, me, key="people-person", allow_nobody=False)
    if person is None:
        st.info(
            "No one yet. Add a person above; recordings on the Live page and analyses on the "
            "Photos & videos page can then be saved for them.",
            icon=":material/group:",
        )
    else:
        st.subheader(escape_markdown(person.name))
        if person.note:
            st.caption(escape_markdown(person.note))
        rows = store.person_rows(person.id, me)
        sessions = store.sessions(me, person_id=person.id)
        captured = store.capture_counts(me, person_id=person.id)
        faces = int(rows["label"].notna().sum()) if len(rows) else 0
        uncertain = uncertain_share(rows) if len(rows) else None
        cols = st.columns(4)
        cols[0].metric("Sessions", len(sessions))
        cols[1].metric(
            "Faces analysed",
            f"{faces:,}",
            help="Rows with a face: one per analysed frame or photo.",
        )
        cols[2].metric(
            "Uncertain",
            "—" if uncertain is None else f"{uncertain:.0%}",
            help="Share of faces whose top probability was below the model card's threshold "
            "(— : the model that analysed them has no calibrated card).",
        )
        cols[3].metric("Captured faces", sum(captured.values()))
        if faces:
            left, right = st.columns([2, 3])
            left.markdown("##### Share of time per emotion")
            left.plotly_chart(
                share_bars(emotion_shares(rows)),
                key="people-shares",
                config={"displayModeBar": False},
            )
            right.markdown("##### Over days")
            right.plotly_chart(
                daily_figure(daily_shares(rows)),
                key="people-days",
                config={"displayModeBar": False},
            )
            st.markdown("##### Sessions")
            table = session_shares(rows)
            st.dataframe(
                table.assign(session_started=table["session_started"].map(when)),
                hide_index=True,
                height=table_height(len(table)),
                column_config={
                    "session": st.column_config.NumberColumn("#", format="%d"),
                    "session_started": "started",
                    "session_name": "name",
                    **{
                        e: st.column_config.ProgressColumn(
                            e, format="percent", min_value=0, max_value=1
                        )
                        for e in EMOTIONS
                    },
                },
            )
            if len(sessions) >= 2:
                st.markdown("##### Two sessions side by side")
                by_id = {s.id: s for s in sessions}
                ids = [s.id for s in sessions]
                pick = st.columns(2)
                chosen = [
                    pick[0].selectbox(
                        "Session",
                        ids,
                        index=1,
                        key="people-compare-a",
                        format_func=lambda i: session_label(by_id[i]),
                    ),
                    pick[1].selectbox(
                        "Session",
                        ids,
                        index=0,
                        key="people-compare-b",
                        format_func=lambda i: session_label(by_id[i]),
                    ),
                ]
                for side, (column, number) in enumerate(zip(st.columns(2), chosen)):
                    part = rows[rows["session"] == number]
                    share = uncertain_share(part)
                    column.plotly_chart(
                        share_bars(
                            emotion_shares(part),
                            title=f"#{number} · {when(by_id[number].started_at)}",
                        ),
                        key=f"people-compare-chart-{side}",
                        config={"displayModeBar": False},
                    )
                    column.caption(
                        f"{int(part['label'].notna().sum()):,} faces · uncertain "
                        + ("—" if share is None else f"{share:.0%}")
                    )
        elif sessions:
            st.info("Their saved sessions hold no face yet.", icon=":material/face:")
        else:
            st.info(
                "No saved session yet: on the Live page, choose this person under **Save to "
                "history** before recording, or save an analysis on the Photos & videos page.",
                icon=":material/history:",
            )

        st.markdown("##### Export")
        export = st.columns(2)
        stem = f"person-{person.id}"
        export[0].download_button(
            "Everything (JSON)",
            lambda: person_json_bytes(store, person.id, me),  # built when clicked, not now
            f"{stem}.json",
            mime="application/json",
            on_click="ignore",
            key="people-json",
            icon=":material/data_object:",
            help="Who, their sessions, every row about them and their captured faces.",
        )
        export[1].download_button(
            "Rows (CSV)",
            lambda: person_csv_bytes(store, person.id, me),
            f"{stem}.csv",
            mime="text/csv",
            on_click="ignore",
            key="people-csv",
            icon=":material/download:",
        )

        with st.expander("Rename, note or delete"):
            with st.form("people-rename"):
                new_name = st.text_input("Name", value=person.name, max_chars=200)
                new_note = st.text_area("Note", value=person.note, max_chars=2000, height=80)
                if st.form_submit_button("Save"):
                    with user_errors():
                        store.rename_person(person.id, new_name, me)
                        store.set_note(person.id, new_note, me)
                        _finish(f"Saved #{person.id}.")
            st.markdown("---")
            sure = st.checkbox(
                # a widget label is Markdown: the name, as text
                f"Delete {escape_markdown(person_label(person))} with every session, row and "
                "captured face about them",
                key="people-delete-sure",
            )
            if st.button(
                "Delete this person",
                type="primary",
                disabled=not sure,
                key="people-delete",
                icon=":material/delete_forever:",
            ):
                with user_errors():
                    deleted = store.delete_person(person.id, me)
                    st.session_state.pop("people-delete-sure", None)
                    _finish(f"Deleted {person_label(person)}: {deleted.describe()}.")

with sessions_tab:
    render_saved_sessions(store, me, _finish)
