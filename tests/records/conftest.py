"""The records tests run against SQLite and against a real PostgreSQL (``postgres.py``)."""

from __future__ import annotations

import pytest

from fer_core.records import Records, forget_open_records
from tests.records import postgres


@pytest.fixture(scope="session")
def postgres_server():
    reason = postgres.why_not()
    if reason:
        pytest.skip(reason)
    server = postgres.Postgres()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A fresh, empty database of each kind."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'records.sqlite'}"
    return request.getfixturevalue("postgres_server").new_database()


@pytest.fixture
def records(db_url):
    store = Records(db_url)
    yield store
    store.close()
    forget_open_records()
