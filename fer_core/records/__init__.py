"""People, saved sessions and captured faces in a database (SQLite by default, any
SQLAlchemy URL through ``FER_DB_URL``), with migrations. See ``store.py``."""

from fer_core.records.store import (
    ADMIN_CLI,
    DB_URL_ENV,
    RETENTION_ENV,
    Deleted,
    Person,
    Records,
    RecordsError,
    SessionInfo,
    Viewer,
    database_url,
    forget_open_records,
    open_records,
    retention_days,
)

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
