"""A throw-away PostgreSQL from Debian's package, on loopback, for the records tests.

It runs as the ``postgres`` system user in a temporary folder (trust authentication on a
socket and 127.0.0.1 only, no fsync: nothing here needs to survive the test run), is stopped
after, and each test gets a database of its own. Needs root (to run as ``postgres``) and the
``postgresql`` package (``make test`` installs it as root); otherwise the tests that need it
are skipped, saying which of the two is missing.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

from tests.browser.appserver import _free_port


def _bin(name: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


def why_not() -> str | None:
    """Why a real PostgreSQL cannot be started here, or None."""
    if _bin("initdb") is None or _bin("pg_ctl") is None:
        return "PostgreSQL is not installed (Debian's postgresql package; `make test` as root installs it)"
    if os.geteuid() != 0:
        return "not root: a throw-away PostgreSQL runs as the postgres user, which needs root"
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres user (Debian's postgresql package makes it)"
    return None


class Postgres:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="fer-pg-"))
        self.port = _free_port()
        shutil.chown(self.root, "postgres", "postgres")
        os.chmod(self.root, 0o700)
        self.data = self.root / "data"
        self._as_postgres(
            [
                _bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                "fer",
                "--no-sync",
                "-E",
                "UTF8",
            ]
        )
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
            "-c full_page_writes=off -c synchronous_commit=off"
        )
        self._as_postgres(
            [
                _bin("pg_ctl"),
                "-D",
                str(self.data),
                "-o",
                options,
                "-l",
                str(self.root / "log"),
                "-w",
                "start",
            ]
        )

    def _as_postgres(self, command):
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *command],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd=self.root,
            timeout=120,
        )

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://fer@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its URL."""
        import sqlalchemy as sa

        name = "fer_" + uuid.uuid4().hex[:12]
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        engine.dispose()
        return self.url(name)

    def stop(self):
        try:
            self._as_postgres(
                [_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
