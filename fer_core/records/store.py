"""The records database: people, saved sessions with their rows, faces assigned to people,
captured faces. SQLite by default (``records.sqlite`` in the runs folder, WAL mode, nothing
to install), any SQLAlchemy URL through ``FER_DB_URL`` (PostgreSQL is tested for real).
Opening a database migrates it to this version's schema (Alembic, ``migrations/``), so a
database made by an older version opens in a newer one with its data.

Every query is parameterised (SQLAlchemy Core); names, notes and file names are stored as
given and are data wherever they go. Who sees what is decided here, not on the pages: a
``Viewer`` is an administrator (everything) or one browser session's owner token (only what
it saved itself).
"""

from __future__ import annotations

import os
import threading
import time
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from fer_core.errors import ConfigError, FerError
from fer_core.labels import EMOTIONS
from fer_core.records import schema as t

DB_URL_ENV = "FER_DB_URL"
RETENTION_ENV = "FER_RETENTION_DAYS"
DB_FILE = "records.sqlite"
SOURCES = ("live", "video", "photos")
MAX_NAME = 200
MAX_NOTE = 2000
MAX_FILE_NAME = 300
# A recording whose writer has not written for this long is shown as interrupted (its
# process stopped, or its tab closed without stopping): what it wrote is kept.
STALE_SECONDS = 30.0
PURGE_EVERY_SECONDS = 3600.0
CLI_OWNER = "cli"


class RecordsError(FerError):
    """A request about people, sessions or captures that cannot be done (unknown, not
    yours, a bad name); the message says what to do."""


@dataclass(frozen=True)
class Viewer:
    """Who asks: an administrator sees and changes everything; anyone else only what their
    own browser session (``owner``, a random token) saved."""

    owner: str
    admin: bool = False


ADMIN_CLI = Viewer(CLI_OWNER, admin=True)  # the command line: whoever may read the database file


@dataclass(frozen=True)
class Person:
    id: int
    uid: str
    name: str
    note: str
    owner: str
    created_at: datetime


@dataclass(frozen=True)
class SessionInfo:
    id: int
    uid: str
    owner: str
    person_id: int | None
    person_name: str | None
    source: str
    name: str
    detector: str
    model: str
    started_at: datetime
    updated_at: datetime
    ended_at: datetime | None
    status: str  # recording, complete, interrupted (a recording nobody writes any more)
    thumbnails: bool
    rows: int
    faces: int  # rows with a face


@dataclass(frozen=True)
class Deleted:
    """What a delete removed, to say so."""

    people: int = 0
    sessions: int = 0
    rows: int = 0
    captures: int = 0
    assignments: int = 0

    def describe(self) -> str:
        parts = [
            f"{count:,} {word}{'' if count == 1 else 's'}"
            for count, word in (
                (self.people, "person" if self.people == 1 else "people"),
                (self.sessions, "session"),
                (self.rows, "result row"),
                (self.captures, "captured face"),
                (self.assignments, "face assignment"),
            )
            if count
        ]
        return ", ".join(parts).replace("peoples", "people") if parts else "nothing"


def utc_now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _new_id(result) -> int:
    """The number the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RecordsError("The database did not say which number it gave the new record.")
    return int(key[0])


# ----------------------------------------------------------------------------- the URL


def database_url(environ=None, runs: str | os.PathLike | None = None) -> str:
    """``$FER_DB_URL``, else SQLite in the runs folder (``$FER_RUNS_DIR`` or ``runs``)."""
    environ = os.environ if environ is None else environ
    url = (environ.get(DB_URL_ENV) or "").strip()
    if url:
        return url
    if runs is None:
        from fer_core.training.runs import runs_dir

        runs = runs_dir("runs")
    return f"sqlite:///{Path(runs).expanduser().resolve() / DB_FILE}"


def shown_url(url: str) -> str:
    """The URL without its password, for pages and logs."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL that does not parse is shown as "(invalid)"
        return "(invalid URL)"


def retention_days(environ=None) -> float | None:
    """``$FER_RETENTION_DAYS``: sessions and captured faces older than this many days are
    purged; unset or empty: kept until deleted."""
    environ = os.environ if environ is None else environ
    raw = (environ.get(RETENTION_ENV) or "").strip()
    if not raw:
        return None
    try:
        days = float(raw)
    except ValueError:
        days = -1.0
    if not days > 0 or days != days or days == float("inf"):
        raise ConfigError(
            f"{RETENTION_ENV} must be a number of days above 0 (got {raw!r}); unset it to keep "
            "records until they are deleted."
        )
    return days


# ----------------------------------------------------------------------------- the engine


def _sqlite_engine(url: sa.engine.URL) -> sa.engine.Engine:
    database = url.database
    if database and database != ":memory:":
        path = Path(database)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():  # people's records: readable by the server's user only
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    engine = sa.create_engine(url, connect_args={"timeout": 30})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        # SQLAlchemy, not the driver, begins transactions (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")  # readers never wait for a writer
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")  # WAL: a killed process loses nothing
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        # Take the write lock at the start: two writers wait for each other (busy_timeout)
        # instead of one failing when its read turns into a write.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def make_engine(url: str) -> sa.engine.Engine:
    try:
        parsed = sa.engine.make_url(url)
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(
            f"{DB_URL_ENV} is not a database URL ({type(exc).__name__}); expected e.g. "
            "postgresql+psycopg://user:password@host/dbname or sqlite:////path/records.sqlite"
        ) from exc
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # the driver this project installs
    try:
        return sa.create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # noqa: BLE001 - an unknown dialect or driver
        raise ConfigError(
            f"{DB_URL_ENV}: cannot use {shown_url(url)} ({exc}). SQLite and PostgreSQL "
            "(postgresql+psycopg://...) are supported."
        ) from exc


def migrate(engine: sa.engine.Engine, revision: str = "head") -> None:
    """Bring the database to ``revision`` of this version's schema (Alembic)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        raw = connection.connection.dbapi_connection
        if raw is None:  # pragma: no cover - an open connection always has one
            raise RuntimeError("no database connection")
        if sqlite:
            # SQLite alters a table by copying it; with foreign keys on, dropping the old
            # sessions table would cascade into every result row (Alembic's own advice). The
            # pragma only takes effect outside a transaction.
            raw.execute("PRAGMA foreign_keys=OFF")
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":  # two processes starting at once
                    connection.exec_driver_sql("SELECT pg_advisory_xact_lock(4242001)")
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError("the migration left rows without their parent")
        finally:
            if sqlite:
                raw.execute("PRAGMA foreign_keys=ON")


def schema_revision(engine: sa.engine.Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# ----------------------------------------------------------------------------- checks


def clean_name(name: str, what: str = "name", limit: int = MAX_NAME) -> str:
    """A person's name: trimmed, not empty, no control characters, at most ``limit``."""
    if not isinstance(name, str):
        raise RecordsError(f"The {what} must be text.")
    name = unicodedata.normalize("NFC", name).strip()
    if not name:
        raise RecordsError(f"The {what} is empty: type one.")
    if len(name) > limit:
        raise RecordsError(f"The {what} is {len(name):,} characters long; at most {limit}.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in name):
        raise RecordsError(f"The {what} holds control characters (line breaks, tabs): remove them.")
    return name


def clean_note(note: str) -> str:
    note = unicodedata.normalize("NFC", note or "").strip()
    if len(note) > MAX_NOTE:
        raise RecordsError(f"The note is {len(note):,} characters long; at most {MAX_NOTE:,}.")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\t" for ch in note):
        raise RecordsError("The note holds control characters: remove them.")
    return note


def _plain(value):
    """NumPy and pandas values as plain Python for the driver; NaN and <NA> as None."""
    if value is None:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value != value:
        return None
    try:
        import pandas as pd

        if value is pd.NA:
            return None
    except ImportError:  # pragma: no cover
        pass
    return value


def db_row(session_id: int, row: dict) -> dict:
    """An export row (any of the exports' column sets) as a ``result_rows`` row."""
    out = {"session_id": session_id}
    for column in t.ROW_COLUMNS:
        value = _plain(row.get(column))
        if column == "file" and isinstance(value, str):
            value = value[:MAX_FILE_NAME]
        if column in ("frame", "faces", "face", "face_id", "x", "y", "w", "h"):
            value = None if value is None else int(value)
        elif column == "uncertain":
            value = None if value is None else bool(value)
        elif column in ("time_s", "confidence", *EMOTIONS):
            value = None if value is None else float(value)
        out[column] = value
    return out


# ----------------------------------------------------------------------------- the store


class Records:
    """One records database. Thread-safe (SQLAlchemy's pool); share one per URL."""

    def __init__(self, url: str | None = None, *, migrate_to: str = "head"):
        self.url = url or database_url()
        self.engine = make_engine(self.url)
        self.dialect = self.engine.dialect.name
        try:
            migrate(self.engine, migrate_to)
        except sa.exc.OperationalError as exc:
            raise RecordsError(
                f"Cannot open the records database {shown_url(self.url)}: "
                f"{str(exc.orig).strip().splitlines()[0] if exc.orig else exc}. "
                f"Check {DB_URL_ENV} and that the database server runs."
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

    # --- who sees what
    @staticmethod
    def _visible(table, viewer: Viewer):
        return sa.true() if viewer.admin else table.c.owner == viewer.owner

    def _person_row(self, connection, person_id: int, viewer: Viewer):
        row = connection.execute(
            sa.select(t.people).where(
                t.people.c.id == int(person_id), self._visible(t.people, viewer)
            )
        ).first()
        if row is None:
            raise RecordsError(
                "No such person" + ("" if viewer.admin else " among those this session added") + "."
            )
        return row

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
            new_id = _new_id(connection.execute(t.people.insert().values(**values)))
        return Person(
            id=new_id,
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
                .where(self._visible(t.people, viewer))
                .order_by(sa.func.lower(t.people.c.name), t.people.c.id)
            ).all()
        return [self._person(row) for row in rows]

    def person(self, person_id: int, viewer: Viewer) -> Person:
        with self.engine.connect() as connection:
            return self._person(self._person_row(connection, person_id, viewer))

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
            created_at=_utc(row.created_at),
        )

    def rename_person(self, person_id: int, name: str, viewer: Viewer) -> Person:
        name = clean_name(name)
        with self.engine.begin() as connection:
            self._person_row(connection, person_id, viewer)
            connection.execute(
                t.people.update().where(t.people.c.id == int(person_id)).values(name=name)
            )
        return self.person(person_id, viewer)

    def set_note(self, person_id: int, note: str, viewer: Viewer) -> Person:
        note = clean_note(note)
        with self.engine.begin() as connection:
            self._person_row(connection, person_id, viewer)
            connection.execute(
                t.people.update().where(t.people.c.id == int(person_id)).values(note=note)
            )
        return self.person(person_id, viewer)

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

    def delete_person(self, person_id: int, viewer: Viewer) -> Deleted:
        """Delete a person and every row about them: their result rows (in their sessions,
        and their faces in other sessions), their sessions (a session that also holds other
        people's faces stays, without them), their face assignments and captured faces."""
        person_id = int(person_id)
        with self.engine.begin() as connection:
            self._person_row(connection, person_id, viewer)
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
            connection.execute(  # other people's faces stay, in a session about nobody
                t.sessions.update()
                .where(t.sessions.c.person_id == person_id)
                .values(person_id=None)
            )
            connection.execute(t.people.delete().where(t.people.c.id == person_id))
        return Deleted(
            people=1, sessions=sessions, rows=rows, captures=captures, assignments=assignments
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
                self._person_row(connection, person_id, viewer)
            new_id = _new_id(
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
        return int(new_id)

    def add_rows(self, session_id: int, rows: list[dict], thumbnails: list | None = None) -> int:
        """Append rows (the exports' columns) to a session, in one transaction; returns how
        many. ``thumbnails``: PNG bytes per row (or None), stored only for a session made
        with ``thumbnails=True``."""
        if not rows:
            return 0
        values = [db_row(session_id, row) for row in rows]
        with self.engine.begin() as connection:
            keeps = connection.execute(
                sa.select(t.sessions.c.thumbnails).where(t.sessions.c.id == int(session_id))
            ).scalar()
            if keeps is None:
                raise RecordsError("That session no longer exists (it was deleted).")
            if keeps and thumbnails is not None:
                for value, thumbnail in zip(values, thumbnails):
                    value["thumbnail"] = thumbnail
            connection.execute(t.result_rows.insert(), values)
            connection.execute(
                t.sessions.update()
                .where(t.sessions.c.id == int(session_id))
                .values(updated_at=utc_now())
            )
        return len(values)

    def finish_session(self, session_id: int, status: str = "complete") -> None:
        now = utc_now()
        with self.engine.begin() as connection:
            connection.execute(
                t.sessions.update()
                .where(t.sessions.c.id == int(session_id))
                .values(status=status, ended_at=now, updated_at=now)
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
        self, viewer: Viewer, person_id: int | None = None, limit: int | None = None
    ) -> list[SessionInfo]:
        """Sessions newest first; with ``person_id``, those about the person or holding a
        face assigned to them."""
        counts = (
            sa.select(
                t.result_rows.c.session_id,
                sa.func.count().label("rows"),
                sa.func.count(t.result_rows.c.label).label("faces"),
            )
            .group_by(t.result_rows.c.session_id)
            .subquery()
        )
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
            .where(self._visible(t.sessions, viewer))
            .order_by(t.sessions.c.started_at.desc(), t.sessions.c.id.desc())
        )
        if person_id is not None:
            assigned = sa.select(t.face_assignments.c.session_id).where(
                t.face_assignments.c.person_id == int(person_id)
            )
            query = query.where(
                sa.or_(t.sessions.c.person_id == int(person_id), t.sessions.c.id.in_(assigned))
            )
        if limit:
            query = query.limit(int(limit))
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [self._session(row) for row in rows]

    def session(self, session_id: int, viewer: Viewer) -> SessionInfo:
        for info in self.sessions(viewer):
            if info.id == int(session_id):
                return info
        raise RecordsError(
            "No such session" + ("" if viewer.admin else " among those this session saved") + "."
        )

    @staticmethod
    def _session(row) -> SessionInfo:
        status = row.status
        updated = _utc(row.updated_at)
        if status == "recording" and (utc_now() - updated).total_seconds() > STALE_SECONDS:
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
            started_at=_utc(row.started_at),
            updated_at=updated,
            ended_at=None if row.ended_at is None else _utc(row.ended_at),
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
        return _typed(pd.DataFrame([tuple(r) for r in rows], columns=[*shown, "person_id"]))

    def set_session_person(self, session_id: int, person_id: int | None, viewer: Viewer) -> None:
        """Say whom a whole session is about (None: nobody)."""
        self.session(session_id, viewer)
        with self.engine.begin() as connection:
            if person_id is not None:
                self._person_row(connection, person_id, viewer)
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
                self._person_row(connection, person_id, viewer)
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

    # --- retention
    def purge(self, days: float, now: datetime | None = None) -> Deleted:
        """Delete sessions that started, and captured faces taken, more than ``days`` ago."""
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
        return Deleted(
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

    # --- people's data
    def person_rows(self, person_id: int, viewer: Viewer):
        """Every row about a person, with its session's number, source, name and start, as
        a DataFrame (oldest first)."""
        import pandas as pd

        person_id = int(person_id)
        shown = [c for c in t.ROW_COLUMNS if c != "thumbnail"]
        with self.engine.connect() as connection:
            self._person_row(connection, person_id, viewer)
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
        frame = _typed(pd.DataFrame([tuple(r) for r in rows], columns=columns))
        frame["session_started"] = pd.to_datetime(frame["session_started"], utc=True)
        return frame

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
            self._person_row(connection, person_id, viewer)
            new_id = _new_id(
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
        return int(new_id)

    def capture_counts(self, viewer: Viewer, person_id: int | None = None) -> dict[str, int]:
        """Captured faces per emotion (every emotion listed)."""
        query = (
            sa.select(t.captures.c.emotion, sa.func.count())
            .where(self._visible(t.captures, viewer))
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
            .where(self._visible(t.captures, viewer))
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
                    t.captures.c.id == int(capture_id), self._visible(t.captures, viewer)
                )
            ).rowcount
        if not count:
            raise RecordsError("No such captured face.")
        return Deleted(captures=count)


_INT_COLUMNS = ("session", "person_id", "frame", "faces", "face", "face_id", "x", "y", "w", "h")


def _typed(frame):
    """Numbers of faces and boxes stay integers beside rows without a face (nullable), and
    ``uncertain`` a nullable boolean, as in the exports."""
    for column in frame.columns:
        if column in _INT_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        elif column == "uncertain":
            frame[column] = frame[column].astype("boolean")
    return frame


_OPEN: dict[str, Records] = {}
_OPEN_LOCK = threading.Lock()


def open_records(url: str | None = None) -> Records:
    """The records database at ``url`` (default: ``database_url()``), opened and migrated
    once per process and shared; ``FER_RETENTION_DAYS`` is applied when due."""
    url = url or database_url()
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


__all__ = [
    "Records",
    "RecordsError",
    "Viewer",
    "Person",
    "SessionInfo",
    "Deleted",
    "ADMIN_CLI",
    "DB_URL_ENV",
    "RETENTION_ENV",
    "database_url",
    "open_records",
    "forget_open_records",
    "retention_days",
    "schema_revision",
    "migrate",
    "make_engine",
    "shown_url",
    "utc_now",
]
