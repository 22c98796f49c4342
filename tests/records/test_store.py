"""The records database, on SQLite and on a real PostgreSQL: people, sessions, rows, who sees
what, deleting, retention, captured faces, concurrent writers and migrations."""

from __future__ import annotations

import threading
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa

from fer_core.labels import EMOTIONS
from fer_core.records import Records, RecordsError, Viewer
from fer_core.records.database import migrate, schema_revision, utc_now
from fer_core.records.writer import SessionWriter

ANN_TAB = Viewer("tab-ann")
BOB_TAB = Viewer("tab-bob")
ADMIN = Viewer("admin-tab", admin=True)


def face_row(frame, face_id=1, label="happy", **extra):
    probs = {emotion: 0.01 for emotion in EMOTIONS}
    probs[label] = 0.94
    return {
        "frame": frame,
        "time_s": frame / 10,
        "faces": 1,
        "face": 1,
        "face_id": face_id,
        "x": 10,
        "y": 20,
        "w": 64,
        "h": 64,
        "label": label,
        "confidence": 0.94,
        "uncertain": False,
        "second": "neutral",
        **probs,
        **extra,
    }


def raw_count(records, sql, **params) -> int:
    with records.engine.connect() as connection:
        return int(connection.execute(sa.text(sql), params).scalar())


def test_people_are_added_renamed_noted_and_listed(records):
    ann = records.add_person("  Ann  ", ANN_TAB, note="room 4")
    assert ann.name == "Ann" and ann.note == "room 4" and len(ann.uid) == 36
    records.add_person("bob", ANN_TAB)
    assert [p.name for p in records.people(ANN_TAB)] == ["Ann", "bob"]
    renamed = records.rename_person(ann.id, "Ann Lee", ANN_TAB)
    assert renamed.name == "Ann Lee" and renamed.uid == ann.uid
    assert records.set_note(ann.id, "prefers mornings", ANN_TAB).note == "prefers mornings"
    assert records.person_by_name("Ann Lee", ANN_TAB).id == ann.id


def test_names_are_data_and_bad_ones_get_a_message(records):
    tricky = "Robert'); DROP TABLE people;-- <b>"
    person = records.add_person(tricky, ANN_TAB)
    assert records.person(person.id, ANN_TAB).name == tricky
    assert raw_count(records, "SELECT count(*) FROM people") == 1
    for bad, words in (("", "empty"), ("a\nb", "control"), ("x" * 201, "at most")):
        with pytest.raises(RecordsError, match=words):
            records.add_person(bad, ANN_TAB)


def test_deleting_a_person_deletes_every_row_about_them(records):
    ann = records.add_person("Ann", ANN_TAB)
    bob = records.add_person("Bob", ANN_TAB)
    own = records.start_session("live", ANN_TAB, person_id=ann.id, detector="haar", model="shipped")
    records.add_rows(own, [face_row(i) for i in range(5)] + [{"frame": 5, "faces": 0}])
    records.finish_session(own)
    # Bob's session, in which face 2 was Ann
    shared = records.start_session("video", ANN_TAB, person_id=bob.id, name="meeting.mp4")
    records.add_rows(
        shared,
        [face_row(i, face_id=1) for i in range(4)] + [face_row(i, face_id=2) for i in range(3)],
    )
    records.finish_session(shared)
    assert records.assign_face(shared, 2, ann.id, ANN_TAB) == 3
    pixels = np.full((48, 48), 7, np.uint8)
    records.add_capture(ann.id, "happy", pixels, ANN_TAB)
    records.add_capture(bob.id, 3, pixels, ANN_TAB)

    history = records.person_rows(ann.id, ANN_TAB)
    assert len(history) == 6 + 3
    assert sorted(s.id for s in records.sessions(ANN_TAB, person_id=ann.id)) == sorted(
        [own, shared]
    )

    deleted = records.delete_person(ann.id, ANN_TAB)
    assert (
        deleted.people,
        deleted.sessions,
        deleted.rows,
        deleted.captures,
        deleted.assignments,
    ) == (1, 1, 9, 1, 1)
    assert "9 result rows" in deleted.describe()
    # checked with raw queries: nothing about Ann is left; Bob's rows are all there
    assert raw_count(records, "SELECT count(*) FROM people WHERE id = :i", i=ann.id) == 0
    assert raw_count(records, "SELECT count(*) FROM sessions WHERE id = :i", i=own) == 0
    assert raw_count(records, "SELECT count(*) FROM result_rows WHERE session_id = :i", i=own) == 0
    assert (
        raw_count(
            records,
            "SELECT count(*) FROM result_rows WHERE session_id = :i AND face_id = 2",
            i=shared,
        )
        == 0
    )
    assert (
        raw_count(records, "SELECT count(*) FROM result_rows WHERE session_id = :i", i=shared) == 4
    )
    assert raw_count(records, "SELECT count(*) FROM captures WHERE person_id = :i", i=ann.id) == 0
    assert raw_count(records, "SELECT count(*) FROM face_assignments") == 0
    assert raw_count(records, "SELECT count(*) FROM captures") == 1
    assert len(records.person_rows(bob.id, ANN_TAB)) == 4


def test_a_kept_session_of_a_deleted_person_no_longer_names_them(records):
    """Issue 34 item 6: Pat's video also held Sam's face, so it stays for Sam; its name and
    its rows' file name ("Pat_interview_secret.mp4") went with Pat."""
    from fer_core.records.store import KEPT_SESSION_NAME

    pat = records.add_person("Pat", ANN_TAB)
    sam = records.add_person("Sam", ANN_TAB)
    name = "Pat_interview_secret.mp4"
    video = records.start_session("video", ANN_TAB, person_id=pat.id, name=name)
    records.add_rows(
        video,
        [face_row(i, face_id=1, file=name) for i in range(3)]
        + [face_row(i, face_id=2, file=name) for i in range(2)],
    )
    records.finish_session(video)
    records.assign_face(video, 2, sam.id, ANN_TAB)
    records.delete_person(pat.id, ANN_TAB)
    kept = records.session(video, ADMIN)
    assert kept.name == KEPT_SESSION_NAME and kept.person_id is None
    assert list(records.session_rows(video, ADMIN)["face_id"]) == [2, 2]
    assert len(records.person_rows(sam.id, ANN_TAB)) == 2
    # checked with raw queries: the name and the file name are nowhere in the database
    for table, column in (("sessions", "name"), ("result_rows", "file"), ("people", "name")):
        assert (
            raw_count(records, f"SELECT count(*) FROM {table} WHERE {column} LIKE '%Pat%'") == 0
        ), table


def test_a_visitor_sees_and_deletes_only_what_their_session_saved(records):
    ann = records.add_person("Ann", ANN_TAB)
    session = records.save_session("photos", [face_row(0)], ANN_TAB, person_id=ann.id)
    assert records.people(BOB_TAB) == [] and records.sessions(BOB_TAB) == []
    for attempt in (
        lambda: records.delete_person(ann.id, BOB_TAB),
        lambda: records.rename_person(ann.id, "x", BOB_TAB),
        lambda: records.delete_session(session, BOB_TAB),
        lambda: records.session_rows(session, BOB_TAB),
        lambda: records.person_rows(ann.id, BOB_TAB),
        lambda: records.add_capture(ann.id, 0, np.zeros((48, 48), np.uint8), BOB_TAB),
        lambda: records.start_session("live", BOB_TAB, person_id=ann.id),
    ):
        with pytest.raises(RecordsError, match="No such"):
            attempt()
    assert [p.name for p in records.people(ADMIN)] == ["Ann"]
    assert [s.id for s in records.sessions(ADMIN)] == [session]
    assert records.delete_session(session, ADMIN).rows == 1


def test_session_rows_come_back_typed_and_in_order(records):
    session = records.start_session("live", ANN_TAB, detector="blazeface", model="m.keras")
    rows = [
        face_row(i, face_id=i % 2, timestamp=f"2026-12-05T10:00:0{i}.000+00:00") for i in range(6)
    ]
    rows[2]["confidence"] = np.float32(0.5)  # NumPy values from the recognizer
    rows[3]["uncertain"] = np.bool_(True)
    assert records.add_rows(session, rows) == 6
    info = records.session(session, ANN_TAB)
    assert (info.status, info.rows, info.faces, info.detector) == ("recording", 6, 6, "blazeface")
    records.finish_session(session)
    frame = records.session_rows(session, ANN_TAB)
    assert list(frame["frame"]) == list(range(6))
    assert frame["confidence"].iloc[2] == pytest.approx(0.5)
    assert bool(frame["uncertain"].iloc[3]) is True
    assert records.session(session, ANN_TAB).status == "complete"


def test_two_sessions_writing_at_once_lose_nothing(db_url):
    # two stores, as two app processes would have, each writing from threads
    stores = [Records(db_url), Records(db_url)]
    sessions = [store.start_session("live", ANN_TAB) for store in stores]
    errors = []

    def write(store, session, offset):
        try:
            for batch in range(40):
                store.add_rows(session, [face_row(offset + batch * 10 + i) for i in range(10)])
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [
        threading.Thread(target=write, args=(store, session, k * 100_000))
        for k, (store, session) in enumerate(zip(stores * 2, sessions * 2))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    for session in sessions:
        assert (
            raw_count(
                stores[0], "SELECT count(*) FROM result_rows WHERE session_id = :s", s=session
            )
            == 800
        )
        assert (
            raw_count(
                stores[0],
                "SELECT count(DISTINCT frame) FROM result_rows WHERE session_id = :s",
                s=session,
            )
            == 800
        )
    for store in stores:
        store.close()


def test_the_session_writer_writes_in_batches_and_finishes(records):
    session = records.start_session("live", ANN_TAB)
    flushed = []
    writer = SessionWriter(
        records,
        session,
        to_rows=lambda frames: [face_row(f) for f in frames],
        flush_seconds=0.05,
        on_flush=flushed.append,
    )
    for frame in range(100):
        writer.put(frame)
    writer.close()
    assert writer.finished.is_set() and writer.error is None and writer.written == 100
    assert records.session(session, ANN_TAB).status == "complete"
    writer.put(101)  # after closing: ignored
    assert records.session(session, ANN_TAB).rows == 100


def test_retention_purges_old_sessions_and_captures(records):
    ann = records.add_person("Ann", ANN_TAB)
    old = records.save_session(
        "photos",
        [face_row(0)],
        ANN_TAB,
        person_id=ann.id,
        started_at=utc_now() - timedelta(days=40),
    )
    new = records.save_session("photos", [face_row(0)], ANN_TAB, person_id=ann.id)
    records.add_capture(ann.id, "sad", np.zeros((48, 48), np.uint8), ANN_TAB)
    deleted = records.purge(30)
    assert (deleted.sessions, deleted.rows, deleted.captures) == (1, 1, 0)
    assert [s.id for s in records.sessions(ANN_TAB)] == [new]
    assert old not in [s.id for s in records.sessions(ADMIN)]
    # Issue 34 item 6: retention covers people. A person added before the cutoff with
    # nothing left goes (name and note); one with a session within it stays.
    records.set_note(ann.id, "allergic to cats", ANN_TAB)
    records.add_person("Cleo", ANN_TAB)  # nothing recorded about her
    dan = records.add_person("Dan", ANN_TAB)
    later = utc_now() + timedelta(days=31)
    records.save_session("photos", [face_row(0)], ANN_TAB, person_id=dan.id, started_at=later)
    assert records.purge(30).people == 0  # all added today
    deleted = records.purge(30, now=later)
    assert (deleted.people, deleted.sessions, deleted.captures) == (2, 1, 1)
    assert [p.name for p in records.people(ADMIN)] == ["Dan"]
    assert raw_count(records, "SELECT count(*) FROM people WHERE note LIKE '%cats%'") == 0
    assert records.purge_if_due({"FER_RETENTION_DAYS": "30"}) is not None
    assert records.purge_if_due({"FER_RETENTION_DAYS": "30"}) is None  # once an hour


def test_captured_faces_come_back_as_training_arrays(records):
    ann = records.add_person("Ann", ANN_TAB)
    faces = np.random.default_rng(0).integers(0, 255, (3, 48, 48), dtype=np.uint8)
    for face, emotion in zip(faces, ("happy", "sad", "happy")):
        records.add_capture(ann.id, emotion, face, ANN_TAB)
    ids, images, labels, people = records.captures(ADMIN)
    assert np.array_equal(images, faces) and list(labels) == [3, 4, 3] and set(people) == {ann.id}
    assert records.capture_counts(ANN_TAB)["happy"] == 2
    assert records.capture_counts(BOB_TAB)["happy"] == 0
    with pytest.raises(RecordsError, match="48x48"):
        records.add_capture(ann.id, "sad", np.zeros((40, 48), np.uint8), ANN_TAB)
    with pytest.raises(RecordsError, match="emotion"):
        records.add_capture(ann.id, 9, faces[0], ANN_TAB)


def test_the_migrated_schema_is_the_one_the_code_uses(records):
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from fer_core.records.schema import metadata

    with records.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), metadata)
    assert diff == []
    assert schema_revision(records.engine) == "0002"


def test_a_database_of_the_first_schema_keeps_its_data_when_opened(db_url):
    old = Records(db_url, migrate_to="0001")
    assert schema_revision(old.engine) == "0001"
    now = utc_now()
    with old.engine.begin() as connection:  # written as the first version did
        connection.execute(
            sa.text(
                "INSERT INTO people (uid, name, owner, created_at) VALUES ('u-1', 'Ann', 'cli', :t)"
            ),
            {"t": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO sessions (uid, owner, person_id, source, name, detector, model, "
                "started_at, updated_at, ended_at, status) VALUES ('s-1', 'cli', 1, 'video', "
                "'a.mp4', 'haar', 'shipped', :t, :t, :t, 'complete')"
            ),
            {"t": now},
        )
        connection.execute(
            sa.text(
                "INSERT INTO result_rows (session_id, frame, faces, face, face_id, label, happy) VALUES (1, 0, 1, 1, 1, 'happy', 0.9)"
            )
        )
    old.close()

    records = Records(db_url)  # this version: migrates on opening
    assert schema_revision(records.engine) == "0002"
    person = records.people(ADMIN)[0]
    assert (person.name, person.note, person.uid) == ("Ann", "", "u-1")
    info = records.sessions(ADMIN)[0]
    assert (info.name, info.rows, info.thumbnails, info.status) == ("a.mp4", 1, False, "complete")
    assert records.person_rows(person.id, ADMIN)["happy"].tolist() == [0.9]
    records.add_capture(person.id, "happy", np.zeros((48, 48), np.uint8), ADMIN)  # the new table
    migrate(records.engine)  # opening again changes nothing
    records.close()


def test_a_bad_url_or_retention_gets_a_message():
    from fer_core.errors import ConfigError
    from fer_core.records import retention_days
    from fer_core.records.database import make_engine

    with pytest.raises(ConfigError, match="database URL"):
        make_engine("not a url at all")
    with pytest.raises(ConfigError, match="FER_RETENTION_DAYS"):
        retention_days({"FER_RETENTION_DAYS": "soon"})
    assert retention_days({"FER_RETENTION_DAYS": "7"}) == 7
    assert retention_days({}) is None
    with pytest.raises(RecordsError, match="Cannot open"):
        Records("postgresql+psycopg://nobody@127.0.0.1:1/none")


def test_face_thumbnails_are_kept_only_when_a_session_asks(records):
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 100
    plain = records.start_session("live", ANN_TAB)
    records.add_rows(plain, [face_row(0, thumbnail=png)])
    assert records.session_thumbnails(plain, ANN_TAB) == []  # the default: no face image
    kept = records.start_session("live", ANN_TAB, thumbnails=True)
    records.add_rows(kept, [face_row(0, thumbnail=png), face_row(1, thumbnail=b"x" * (65 << 10))])
    assert records.session_thumbnails(kept, ANN_TAB) == [(1, 0, png)]  # oversized: dropped
    assert records.session(kept, ANN_TAB).thumbnails is True
    assert records.delete_session(kept, ANN_TAB).rows == 2
