"""The records database itself: where it is (``FER_DB_URL``, else ``records.sqlite`` in the
runs folder), the engine (SQLite in WAL mode, writers taking the lock at the start; PostgreSQL
through psycopg), the migrations (Alembic, run on opening), the retention setting, and the
checks every value passes before it is stored. Who asks (``Viewer``) and what the store hands
back (``Person``, ``SessionInfo``, ``Deleted``) are defined here too."""

from __future__ import annotations

import contextlib
import os
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
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
MAX_THUMBNAIL_BYTES = 64 << 10  # a 48x48 PNG is about 2 KB
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


def utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def new_id(result) -> int:
    """The number the database gave the row just inserted."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise RecordsError("The database did not say which number it gave the new record.")
    return int(key[0])


# ----------------------------------------------------------------------------- the URL


def database_url(environ=None, *, runs: str | os.PathLike) -> str:
    """``$FER_DB_URL``, else SQLite in the runs folder ``runs`` (the app's and ``fer``'s:
    ``$FER_RUNS_DIR`` or ``runs``), which is made when missing (the app's own folder; a
    folder named in ``$FER_DB_URL`` must exist)."""
    environ = os.environ if environ is None else environ
    url = (environ.get(DB_URL_ENV) or "").strip()
    if url:
        return url
    folder = Path(runs).expanduser().resolve()
    with contextlib.suppress(OSError):  # one that cannot be made is reported on opening
        folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / DB_FILE}"


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
        if not path.parent.is_dir():  # never made silently: a typo would start a new database
            raise ConfigError(
                f"The SQLite database {shown_url(str(url))} is in a folder that does not "
                f"exist: create the folder, or set {DB_URL_ENV} to another file."
            )
        if not path.exists():  # people's records: readable by the server's user only
            try:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
            except OSError as exc:
                raise ConfigError(
                    f"Cannot create the SQLite database {shown_url(str(url))}: "
                    f"{exc.strerror or type(exc).__name__}. Set {DB_URL_ENV} to a file the "
                    "server may write."
                ) from exc
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


def plain(value):
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
        value = plain(row.get(column))
        if column == "file" and isinstance(value, str):
            value = value[:MAX_FILE_NAME]
        if column == "thumbnail":
            ok = isinstance(value, (bytes, bytearray)) and len(value) <= MAX_THUMBNAIL_BYTES
            value = bytes(value) if ok else None
        if column in ("frame", "faces", "face", "face_id", "x", "y", "w", "h"):
            value = None if value is None else int(value)
        elif column == "uncertain":
            value = None if value is None else bool(value)
        elif column in ("time_s", "confidence", *EMOTIONS):
            value = None if value is None else float(value)
        out[column] = value
    return out


def visible(table, viewer: Viewer):
    """The condition that limits ``table`` (with an ``owner`` column) to what ``viewer`` sees."""
    return sa.true() if viewer.admin else table.c.owner == viewer.owner


def person_row(connection, person_id: int, viewer: Viewer):
    """The person's row, or RecordsError when there is none the viewer sees."""
    row = connection.execute(
        sa.select(t.people).where(t.people.c.id == int(person_id), visible(t.people, viewer))
    ).first()
    if row is None:
        raise RecordsError(
            "No such person" + ("" if viewer.admin else " among those this session added") + "."
        )
    return row


INT_COLUMNS = ("session", "person_id", "frame", "faces", "face", "face_id", "x", "y", "w", "h")


def typed(frame):
    """Numbers of faces and boxes stay integers beside rows without a face (nullable), and
    ``uncertain`` a nullable boolean, as in the exports."""
    for column in frame.columns:
        if column in INT_COLUMNS:
            frame[column] = frame[column].astype("Int64")
        elif column == "uncertain":
            frame[column] = frame[column].astype("boolean")
    return frame


__all__ = [
    "RecordsError",
    "Viewer",
    "Person",
    "SessionInfo",
    "Deleted",
    "ADMIN_CLI",
    "DB_URL_ENV",
    "RETENTION_ENV",
    "database_url",
    "retention_days",
    "schema_revision",
    "migrate",
    "make_engine",
    "shown_url",
    "utc_now",
]
