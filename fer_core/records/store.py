"""The records database: people, saved sessions with their rows, faces assigned to people,
captured faces. SQLite by default (``records.sqlite`` in the runs folder, WAL mode, nothing
to install), any SQLAlchemy URL through ``FER_DB_URL`` (PostgreSQL is tested for real).
Opening a database migrates it to this version's schema (Alembic, ``migrations/``), so a
database made by an older version opens in a newer one with its data.

Every query is parameterised (SQLAlchemy Core); names, notes and file names are stored as
given and are data wherever they go. Who sees what is decided here, not on the pages: a
``Viewer`` is an administrator (everything) or one browser session's owner token (only what
it saved itself). ``Records`` is this file (people, captured faces, retention) and
``sessions.py`` (sessions and their rows).
"""

from __future__ import annotations

import threading
import time
import uuid
from datetime import datetime, timedelta

import numpy as np
import sqlalchemy as sa

from fer_core.errors import ConfigError
from fer_core.labels import EMOTIONS
from fer_core.records import schema as t
from fer_core.records.database import (
    ADMIN_CLI,
    DB_URL_ENV,
    PURGE_EVERY_SECONDS,
    Deleted,
    Person,
    RecordsError,
    Viewer,
    clean_name,
    clean_note,
    make_engine,
    migrate,
    new_id,
    person_row,
    retention_days,
    shown_url,
    utc,
    utc_now,
    visible,
)
from fer_core.records.sessions import SessionRecords

# What a session is called that stays after the person it was about was deleted (it also
# holds other people's faces); its own name could say who that was.
KEPT_SESSION_NAME = "Kept for other people's faces (its person was deleted)"

# ----------------------------------------------------------------------------- the store


class Records(SessionRecords):
    """One records database. Thread-safe (SQLAlchemy's pool); share one per URL."""

    def __init__(self, url: str, *, migrate_to: str = "head"):
        self.url = url
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        try:
            migrate(self.engine, migrate_to)
        except (sa.exc.DatabaseError, OSError) as exc:  # not a database, unreachable, no access
            self.engine.dispose()
            cause = getattr(exc, "orig", None) or exc
            reason = (str(cause).strip().splitlines() or [type(cause).__name__])[0]
            raise RecordsError(
                f"Cannot open the records database {shown_url(self.url)}: {reason}. "
                f"Check {DB_URL_ENV} (and that the database server runs)."
            ) from exc
        self._purged_at = 0.0
        self._purge_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Records({shown_url(self.url)!r})"

    def close(self) -> None:
        self.engine.dispose()

    @property
    def location(self) -> str:
        """Where the data lives, for the pages and the CLI (no password)."""
        parsed = sa.engine.make_url(self.url)
        if parsed.get_backend_name() == "sqlite":
            return f"SQLite file {parsed.database}"
        return f"{parsed.get_backend_name()} database {shown_url(self.url)}"

    # --- people
    def add_person(self, name: str, viewer: Viewer, note: str = "") -> Person:
        name, note = clean_name(name), clean_note(note)
        values = {
            "uid": str(uuid.uuid4()),
            "name": name,
            "note": note,
            "owner": viewer.owner,
            "created_at": utc_now(),
        }
        with self.engine.begin() as connection:
            number = new_id(connection.execute(t.people.insert().values(**values)))
        return Person(
            id=number,
            uid=str(values["uid"]),
            name=name,
            note=note,
            owner=viewer.owner,
            created_at=values["created_at"],  # type: ignore[arg-type]
        )

    def people(self, viewer: Viewer) -> list[Person]:
        with self.engine.connect() as connection:
            rows = connection.execute(
                sa.select(t.people)
                .where(visible(t.people, viewer))
                .order_by(sa.func.lower(t.people.c.name), t.people.c.id)
            ).all()
        return [self._person(row) for row in rows]

    def person(self, person_id: int, viewer: Viewer) -> Person:
        with self.engine.connect() as connection:
            return self._person(person_row(connection, person_id, viewer))

    def find_people(self, name: str, viewer: Viewer) -> list[Person]:
        """People by exact name (names need not be unique)."""
        name = clean_name(name)
        return [p for p in self.people(viewer) if p.name == name]

    def person_by_name(self, name: str, viewer: Viewer) -> Person:
        found = self.find_people(name, viewer)
        if not found:
            raise RecordsError("No person has that name: add them first (fer people add NAME).")
        if len(found) > 1:
            raise RecordsError(
                f"{len(found)} people have that name: use their number ("
                + ", ".join(f"#{p.id}" for p in found)
                + ")."
            )
        return found[0]

    @staticmethod
    def _person(row) -> Person:
        return Person(
            id=int(row.id),
            uid=row.uid,
            name=row.name,
            note=row.note or "",
            owner=row.owner,
            created_at=utc(row.created_at),
        )

    def rename_person(self, person_id: int, name: str, viewer: Viewer) -> Person:
        return self._update_person(person_id, viewer, name=clean_name(name))

    def set_note(self, person_id: int, note: str, viewer: Viewer) -> Person:
        return self._update_person(person_id, viewer, note=clean_note(note))

    def _update_person(self, person_id: int, viewer: Viewer, **values) -> Person:
        """Change checked fields of a person the viewer sees; the person as now stored."""
        with self.engine.begin() as connection:
            person_row(connection, person_id, viewer)
            connection.execute(
                t.people.update().where(t.people.c.id == int(person_id)).values(**values)
            )
        return self.person(person_id, viewer)

    def delete_person(self, person_id: int, viewer: Viewer) -> Deleted:
        """Delete a person and every row about them: their result rows (in their sessions,
        and their faces in other sessions), their sessions, their face assignments and
        captured faces. A session of theirs that also holds other people's faces stays for
        those, about nobody, and without what could name them: its name becomes
        ``KEPT_SESSION_NAME`` and its rows' file names are emptied (a session named
        "Pat_interview_secret.mp4" would otherwise say who it was about)."""
        person_id = int(person_id)
        with self.engine.begin() as connection:
            person_row(connection, person_id, viewer)
            row_ids = (
                sa.select(t.result_rows.c.id)
                .select_from(self._rows_join())
                .where(self._rows_about(person_id))
            )
            rows = connection.execute(
                t.result_rows.delete().where(t.result_rows.c.id.in_(row_ids))
            ).rowcount
            assignments = connection.execute(
                t.face_assignments.delete().where(t.face_assignments.c.person_id == person_id)
            ).rowcount
            captures = connection.execute(
                t.captures.delete().where(t.captures.c.person_id == person_id)
            ).rowcount
            has_rows = sa.exists().where(t.result_rows.c.session_id == t.sessions.c.id)
            sessions = connection.execute(
                t.sessions.delete().where(t.sessions.c.person_id == person_id, ~has_rows)
            ).rowcount
            kept = list(  # other people's faces stay, in a session about nobody
                connection.execute(
                    sa.select(t.sessions.c.id).where(t.sessions.c.person_id == person_id)
                ).scalars()
            )
            if kept:
                connection.execute(
                    t.sessions.update()
                    .where(t.sessions.c.id.in_(kept))
                    .values(person_id=None, name=KEPT_SESSION_NAME)
                )
                connection.execute(
                    t.result_rows.update()
                    .where(t.result_rows.c.session_id.in_(kept))
                    .values(file="")
                )
            connection.execute(t.people.delete().where(t.people.c.id == person_id))
        return Deleted(
            people=1, sessions=sessions, rows=rows, captures=captures, assignments=assignments
        )

    # --- retention
    def purge(self, days: float, now: datetime | None = None) -> Deleted:
        """Delete sessions that started, and captured faces taken, more than ``days`` ago;
        then the people added more than ``days`` ago who have nothing left (no session, no
        captured face, no assigned face): their names and notes go too."""
        cutoff = (now or utc_now()) - timedelta(days=float(days))
        with self.engine.begin() as connection:
            ids = list(
                connection.execute(
                    sa.select(t.sessions.c.id).where(t.sessions.c.started_at < cutoff)
                ).scalars()
            )
            deleted = self._delete_sessions(connection, ids)
            captures = connection.execute(
                t.captures.delete().where(t.captures.c.created_at < cutoff)
            ).rowcount
            people = connection.execute(
                t.people.delete().where(
                    t.people.c.created_at < cutoff,
                    ~sa.exists().where(t.sessions.c.person_id == t.people.c.id),
                    ~sa.exists().where(t.captures.c.person_id == t.people.c.id),
                    ~sa.exists().where(t.face_assignments.c.person_id == t.people.c.id),
                )
            ).rowcount
        return Deleted(
            people=people,
            sessions=deleted.sessions,
            rows=deleted.rows,
            assignments=deleted.assignments,
            captures=captures,
        )

    def purge_if_due(self, environ=None) -> Deleted | None:
        """``purge(FER_RETENTION_DAYS)`` at most once an hour per process; None when not
        due or no retention is set."""
        days = retention_days(environ)
        if days is None:
            return None
        with self._purge_lock:
            if time.monotonic() - self._purged_at < PURGE_EVERY_SECONDS and self._purged_at:
                return None
            self._purged_at = time.monotonic()
        return self.purge(days)

    # --- captured faces
    def add_capture(
        self, person_id: int, emotion: int | str, pixels: np.ndarray, viewer: Viewer
    ) -> int:
        """A labelled 48x48 face of a person (uint8 grey), for fine-tuning."""
        label = EMOTIONS.index(emotion) if isinstance(emotion, str) else int(emotion)
        if not 0 <= label < len(EMOTIONS):
            raise RecordsError(f"The emotion is one of {', '.join(EMOTIONS)}.")
        pixels = np.asarray(pixels)
        if pixels.shape != (48, 48) or pixels.dtype != np.uint8:
            raise RecordsError("A captured face is a 48x48 grey image (uint8).")
        with self.engine.begin() as connection:
            person_row(connection, person_id, viewer)
            number = new_id(
                connection.execute(
                    t.captures.insert().values(
                        person_id=int(person_id),
                        owner=viewer.owner,
                        emotion=label,
                        pixels=pixels.tobytes(),
                        created_at=utc_now(),
                    )
                )
            )
        return number

    def capture_counts(self, viewer: Viewer, person_id: int | None = None) -> dict[str, int]:
        """Captured faces per emotion (every emotion listed)."""
        query = (
            sa.select(t.captures.c.emotion, sa.func.count())
            .where(visible(t.captures, viewer))
            .group_by(t.captures.c.emotion)
        )
        if person_id is not None:
            query = query.where(t.captures.c.person_id == int(person_id))
        with self.engine.connect() as connection:
            found: dict[int, int] = {int(k): int(v) for k, v in connection.execute(query).all()}
        return {emotion: int(found.get(index, 0)) for index, emotion in enumerate(EMOTIONS)}

    def captures(self, viewer: Viewer, person_id: int | None = None):
        """Captured faces: (ids, images N x 48 x 48 uint8, labels N, person ids N), oldest
        first."""
        query = (
            sa.select(
                t.captures.c.id, t.captures.c.pixels, t.captures.c.emotion, t.captures.c.person_id
            )
            .where(visible(t.captures, viewer))
            .order_by(t.captures.c.id)
        )
        if person_id is not None:
            query = query.where(t.captures.c.person_id == int(person_id))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        ids = np.array([r.id for r in rows], dtype=np.int64)
        images = (
            np.stack([np.frombuffer(r.pixels, dtype=np.uint8).reshape(48, 48) for r in rows])
            if rows
            else np.zeros((0, 48, 48), np.uint8)
        )
        labels = np.array([r.emotion for r in rows], dtype=np.int64)
        people = np.array([r.person_id for r in rows], dtype=np.int64)
        return ids, images, labels, people

    def delete_capture(self, capture_id: int, viewer: Viewer) -> Deleted:
        with self.engine.begin() as connection:
            count = connection.execute(
                t.captures.delete().where(
                    t.captures.c.id == int(capture_id), visible(t.captures, viewer)
                )
            ).rowcount
        if not count:
            raise RecordsError("No such captured face.")
        return Deleted(captures=count)


def captured_training_faces(url: str) -> tuple[np.ndarray, np.ndarray]:
    """Every face captured on the Live page, labelled by the person who showed it: (N, 48,
    48) uint8 and (N,) labels, for a training run. ConfigError when there are none."""
    records = Records(url)
    try:
        _, images, labels, _ = records.captures(ADMIN_CLI)
    finally:
        records.close()
    if not len(labels):
        raise ConfigError(
            f"No captured faces in the {records.location}: capture faces on the Live page "
            "(Save to history, Capture face), or train without captured faces."
        )
    return images, labels.astype(np.int64)


_OPEN: dict[str, Records] = {}
_OPEN_LOCK = threading.Lock()


def open_records(url: str) -> Records:
    """The records database at ``url`` (``database_url``), opened and migrated once per
    process and shared; ``FER_RETENTION_DAYS`` is applied when due."""
    with _OPEN_LOCK:
        records = _OPEN.get(url)
        if records is None:
            records = _OPEN[url] = Records(url)
    records.purge_if_due()
    return records


def forget_open_records() -> None:
    """Close every shared database (tests, and a changed FER_DB_URL)."""
    with _OPEN_LOCK:
        for records in _OPEN.values():
            records.close()
        _OPEN.clear()


__all__ = ["Records", "open_records", "forget_open_records", "captured_training_faces"]
