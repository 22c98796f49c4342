"""Saved sessions and their rows: starting, writing in batches, finishing, listing with
their counts, whom a session or one of its faces is about, the rows about a person, and
deleting. Part of ``Records`` (``store.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from fer_core.records import database as db
from fer_core.records import schema as t
from fer_core.records.database import (
    MAX_FILE_NAME,
    SOURCES,
    Deleted,
    RecordsError,
    SessionInfo,
    Viewer,
    db_row,
    new_id,
    person_row,
    typed,
    utc,
    utc_now,
    visible,
)


class SessionRecords:
    """The sessions half of ``Records``."""

    engine: sa.engine.Engine

    @staticmethod
    def _rows_about(person_id: int):
        """A condition on ``result_rows`` joined to ``sessions`` and ``face_assignments``:
        the rows about a person (their sessions' faces nobody else was assigned, and faces
        assigned to them in other sessions)."""
        a = t.face_assignments
        return sa.or_(
            a.c.person_id == person_id,
            sa.and_(a.c.person_id.is_(None), t.sessions.c.person_id == person_id),
        )

    @staticmethod
    def _rows_join():
        a = t.face_assignments
        return t.result_rows.join(
            t.sessions, t.result_rows.c.session_id == t.sessions.c.id
        ).outerjoin(
            a,
            sa.and_(
                a.c.session_id == t.result_rows.c.session_id, a.c.face_id == t.result_rows.c.face_id
            ),
        )

    # --- sessions
    def start_session(
        self,
        source: str,
        viewer: Viewer,
        *,
        person_id: int | None = None,
        name: str = "",
        detector: str = "",
        model: str = "",
        started_at: datetime | None = None,
        thumbnails: bool = False,
    ) -> int:
        """A new session (status "recording" until ``finish_session``); returns its number."""
        if source not in SOURCES:
            raise RecordsError(f"A session's source is one of {', '.join(SOURCES)}.")
        now = utc_now()
        with self.engine.begin() as connection:
            if person_id is not None:
                person_row(connection, person_id, viewer)
            number = new_id(
                connection.execute(
                    t.sessions.insert().values(
                        uid=str(uuid.uuid4()),
                        owner=viewer.owner,
                        person_id=None if person_id is None else int(person_id),
                        source=source,
                        name=(name or "")[:MAX_FILE_NAME],
                        detector=detector[:32],
                        model=model[:MAX_FILE_NAME],
                        started_at=started_at or now,
                        updated_at=now,
                        status="recording",
                        thumbnails=bool(thumbnails),
                    )
                )
            )
        return number

    def add_rows(self, session_id: int, rows: list[dict]) -> int:
        """Append rows (the exports' columns) to a session, in one transaction; returns how
        many. A row's ``thumbnail`` (PNG bytes of the face) is stored only for a session made
        with ``thumbnails=True``: by default no face image is kept."""
        if not rows:
            return 0
        values = [db_row(session_id, row) for row in rows]
        with self.engine.begin() as connection:
            keeps = connection.execute(
                sa.select(t.sessions.c.thumbnails).where(t.sessions.c.id == int(session_id))
            ).scalar()
            if keeps is None:
                raise RecordsError("That session no longer exists (it was deleted).")
            if not keeps:
                for value in values:
                    value["thumbnail"] = None
            connection.execute(t.result_rows.insert(), values)
            connection.execute(
                t.sessions.update()
                .where(t.sessions.c.id == int(session_id))
                .values(updated_at=utc_now())
            )
        return len(values)

    def session_thumbnails(
        self, session_id: int, viewer: Viewer, limit: int | None = None
    ) -> list[tuple[int | None, int | None, bytes]]:
        """A session's stored face thumbnails, oldest first: (face id, frame, PNG bytes)."""
        self.session(session_id, viewer)
        query = (
            sa.select(t.result_rows.c.face_id, t.result_rows.c.frame, t.result_rows.c.thumbnail)
            .where(
                t.result_rows.c.session_id == int(session_id),
                t.result_rows.c.thumbnail.is_not(None),
            )
            .order_by(t.result_rows.c.id)
        )
        if limit:
            query = query.limit(int(limit))
        with self.engine.connect() as connection:
            return [(r.face_id, r.frame, bytes(r.thumbnail)) for r in connection.execute(query)]

    def finish_session(
        self, session_id: int, status: str = "complete", name: str | None = None
    ) -> None:
        """Mark a session ``status`` (complete, failed...); ``name``: its name from now on."""
        now = utc_now()
        values = {"status": status, "ended_at": now, "updated_at": now}
        if name is not None:
            values["name"] = name
        with self.engine.begin() as connection:
            connection.execute(
                t.sessions.update().where(t.sessions.c.id == int(session_id)).values(**values)
            )

    def save_session(self, source: str, rows: list[dict], viewer: Viewer, **details) -> int:
        """A finished session in one go (a video analysis, a photo batch)."""
        session_id = self.start_session(source, viewer, **details)
        try:
            self.add_rows(session_id, rows)
        except BaseException:
            self.finish_session(session_id, "failed")
            raise
        self.finish_session(session_id)
        return session_id

    def sessions(
        self,
        viewer: Viewer,
        person_id: int | None = None,
        limit: int | None = None,
        session_id: int | None = None,
    ) -> list[SessionInfo]:
        """Sessions newest first; with ``person_id``, those about the person or holding a
        face assigned to them; with ``session_id``, that one only (its rows alone counted)."""
        counts_query = sa.select(
            t.result_rows.c.session_id,
            sa.func.count().label("rows"),
            sa.func.count(t.result_rows.c.label).label("faces"),
        ).group_by(t.result_rows.c.session_id)
        if session_id is not None:
            counts_query = counts_query.where(t.result_rows.c.session_id == int(session_id))
        counts = counts_query.subquery()
        query = (
            sa.select(
                t.sessions,
                t.people.c.name.label("person_name"),
                sa.func.coalesce(counts.c.rows, 0).label("rows"),
                sa.func.coalesce(counts.c.faces, 0).label("faces"),
            )
            .select_from(
                t.sessions.outerjoin(t.people, t.people.c.id == t.sessions.c.person_id).outerjoin(
                    counts, counts.c.session_id == t.sessions.c.id
                )
            )
            .where(visible(t.sessions, viewer))
            .order_by(t.sessions.c.started_at.desc(), t.sessions.c.id.desc())
        )
        if person_id is not None:
            assigned = sa.select(t.face_assignments.c.session_id).where(
                t.face_assignments.c.person_id == int(person_id)
            )
            query = query.where(
                sa.or_(t.sessions.c.person_id == int(person_id), t.sessions.c.id.in_(assigned))
            )
        if session_id is not None:
            query = query.where(t.sessions.c.id == int(session_id))
        if limit:
            query = query.limit(int(limit))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [self._session(row) for row in rows]

    def session(self, session_id: int, viewer: Viewer) -> SessionInfo:
        for info in self.sessions(viewer, session_id=session_id):
            return info
        raise RecordsError(
            "No such session" + ("" if viewer.admin else " among those this session saved") + "."
        )

    @staticmethod
    def _session(row) -> SessionInfo:
        status = row.status
        updated = utc(row.updated_at)
        if status == "recording" and (utc_now() - updated).total_seconds() > db.STALE_SECONDS:
            status = "interrupted"
        return SessionInfo(
            id=int(row.id),
            uid=row.uid,
            owner=row.owner,
            person_id=row.person_id,
            person_name=row.person_name,
            source=row.source,
            name=row.name,
            detector=row.detector,
            model=row.model,
            started_at=utc(row.started_at),
            updated_at=updated,
            ended_at=None if row.ended_at is None else utc(row.ended_at),
            status=status,
            thumbnails=bool(row.thumbnails),
            rows=int(row.rows),
            faces=int(row.faces),
        )

    def session_rows(self, session_id: int, viewer: Viewer):
        """A session's rows as a DataFrame in ``ROW_COLUMNS`` order (thumbnails left out),
        with ``person`` (the person each face is about, by assignment or the session's)."""
        import pandas as pd

        self.session(session_id, viewer)  # visible, or RecordsError
        a = t.face_assignments
        shown = [c for c in t.ROW_COLUMNS if c != "thumbnail"]
        query = (
            sa.select(
                *[t.result_rows.c[c] for c in shown],
                sa.func.coalesce(a.c.person_id, t.sessions.c.person_id).label("person_id"),
            )
            .select_from(self._rows_join())
            .where(t.result_rows.c.session_id == int(session_id))
            .order_by(t.result_rows.c.id)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return typed(pd.DataFrame([tuple(r) for r in rows], columns=[*shown, "person_id"]))

    def set_session_person(self, session_id: int, person_id: int | None, viewer: Viewer) -> None:
        """Say whom a whole session is about (None: nobody)."""
        self.session(session_id, viewer)
        with self.engine.begin() as connection:
            if person_id is not None:
                person_row(connection, person_id, viewer)
            connection.execute(
                t.sessions.update()
                .where(t.sessions.c.id == int(session_id))
                .values(person_id=None if person_id is None else int(person_id))
            )

    def assign_face(
        self, session_id: int, face_id: int, person_id: int | None, viewer: Viewer
    ) -> int:
        """Say who a face id of a session is (None: nobody, the session's person again);
        returns the rows of that face."""
        self.session(session_id, viewer)
        with self.engine.begin() as connection:
            connection.execute(
                t.face_assignments.delete().where(
                    t.face_assignments.c.session_id == int(session_id),
                    t.face_assignments.c.face_id == int(face_id),
                )
            )
            if person_id is not None:
                person_row(connection, person_id, viewer)
                connection.execute(
                    t.face_assignments.insert().values(
                        session_id=int(session_id), face_id=int(face_id), person_id=int(person_id)
                    )
                )
            return int(
                connection.execute(
                    sa.select(sa.func.count())
                    .select_from(t.result_rows)
                    .where(
                        t.result_rows.c.session_id == int(session_id),
                        t.result_rows.c.face_id == int(face_id),
                    )
                ).scalar()
                or 0
            )

    def delete_session(self, session_id: int, viewer: Viewer) -> Deleted:
        self.session(session_id, viewer)
        with self.engine.begin() as connection:
            return self._delete_sessions(connection, [int(session_id)])

    @staticmethod
    def _delete_sessions(connection, ids) -> Deleted:
        if not ids:
            return Deleted()
        rows = connection.execute(
            t.result_rows.delete().where(t.result_rows.c.session_id.in_(ids))
        ).rowcount
        assignments = connection.execute(
            t.face_assignments.delete().where(t.face_assignments.c.session_id.in_(ids))
        ).rowcount
        sessions = connection.execute(t.sessions.delete().where(t.sessions.c.id.in_(ids))).rowcount
        return Deleted(sessions=sessions, rows=rows, assignments=assignments)

    # --- people's data
    def person_rows(self, person_id: int, viewer: Viewer):
        """Every row about a person, with its session's number, source, name and start, as
        a DataFrame (oldest first)."""
        import pandas as pd

        person_id = int(person_id)
        shown = [c for c in t.ROW_COLUMNS if c != "thumbnail"]
        with self.engine.connect() as connection:
            person_row(connection, person_id, viewer)
            query = (
                sa.select(
                    t.sessions.c.id.label("session"),
                    t.sessions.c.source,
                    t.sessions.c.name.label("session_name"),
                    t.sessions.c.started_at.label("session_started"),
                    *[t.result_rows.c[c] for c in shown],
                )
                .select_from(self._rows_join())
                .where(self._rows_about(person_id))
                .order_by(t.sessions.c.started_at, t.result_rows.c.id)
            )
            rows = connection.execute(query).all()
        columns = ["session", "source", "session_name", "session_started", *shown]
        frame = typed(pd.DataFrame([tuple(r) for r in rows], columns=columns))
        frame["session_started"] = pd.to_datetime(frame["session_started"], utc=True)
        return frame
