"""People, saved sessions and captured faces in a database (SQLite by default, any
SQLAlchemy URL through ``FER_DB_URL``), with migrations. ``store.Records`` is the API;
``database.py`` the engine, the URL and the checks; ``history.py`` what a person's rows say;
``writer.py`` writes a live recording while it records."""

from fer_core.records.database import (
    ADMIN_CLI,
    DB_URL_ENV,
    RETENTION_ENV,
    Deleted,
    Person,
    RecordsError,
    SessionInfo,
    Viewer,
    database_url,
    retention_days,
)
from fer_core.records.store import Records, forget_open_records, open_records

__all__ = [
    "ADMIN_CLI",
    "DB_URL_ENV",
    "RETENTION_ENV",
    "Deleted",
    "Person",
    "Records",
    "RecordsError",
    "SessionInfo",
    "Viewer",
    "database_url",
    "forget_open_records",
    "open_records",
    "retention_days",
]
