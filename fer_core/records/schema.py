"""The tables of the records database, as SQLAlchemy Core: the schema the newest migration
makes (``migrations/versions``). Alembic migrates a database to it; nothing here creates
tables (``fer_core.records.store.open_records`` runs the migrations).

- ``people``: the design's User: a number (``id``), an id that never changes (``uid``), a
  name, a note, and who added them (``owner``: a browser session's token, or ``cli``).
- ``sessions``: a live recording, a video analysis or a photo batch saved on purpose: who it
  is about (``person_id``, or none), when, from where (``source``, ``name``: a file name), the
  detector and model, and whether it finished (``status``: recording, complete).
- ``result_rows``: one row per face per frame or photo, the exports' columns.
- ``face_assignments``: a face id of a session assigned to a person (who else was in view).
- ``captures``: labelled 48x48 faces a person captured to teach the model.
"""

from __future__ import annotations

import sqlalchemy as sa

from fer_core.labels import EMOTIONS

metadata = sa.MetaData()

people = sa.Table(
    "people",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("note", sa.Text, nullable=False, server_default=""),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("uid", sa.String(36), nullable=False, unique=True),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL"), index=True),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("name", sa.String(300), nullable=False, server_default=""),
    sa.Column("detector", sa.String(32), nullable=False, server_default=""),
    sa.Column("model", sa.String(300), nullable=False, server_default=""),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("thumbnails", sa.Boolean, nullable=False, server_default=sa.false()),
)

result_rows = sa.Table(
    "result_rows",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "session_id",
        sa.Integer,
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("timestamp", sa.String(40)),
    sa.Column("file", sa.String(300)),
    sa.Column("frame", sa.Integer),
    sa.Column("time_s", sa.Float),
    sa.Column("faces", sa.Integer),
    sa.Column("face", sa.Integer),
    sa.Column("face_id", sa.Integer),
    sa.Column("x", sa.Integer),
    sa.Column("y", sa.Integer),
    sa.Column("w", sa.Integer),
    sa.Column("h", sa.Integer),
    sa.Column("label", sa.String(16)),
    sa.Column("confidence", sa.Float),
    sa.Column("uncertain", sa.Boolean),
    sa.Column("second", sa.String(16)),
    *[sa.Column(emotion, sa.Float) for emotion in EMOTIONS],
    sa.Column("thumbnail", sa.LargeBinary),
)

face_assignments = sa.Table(
    "face_assignments",
    metadata,
    sa.Column(
        "session_id",
        sa.Integer,
        sa.ForeignKey("sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("face_id", sa.Integer, primary_key=True),
    sa.Column(
        "person_id",
        sa.Integer,
        sa.ForeignKey("people.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

captures = sa.Table(
    "captures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "person_id",
        sa.Integer,
        sa.ForeignKey("people.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("owner", sa.String(64), nullable=False, index=True),
    sa.Column("emotion", sa.Integer, nullable=False),
    sa.Column("pixels", sa.LargeBinary, nullable=False),  # 48x48 uint8, row by row
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
)

ROW_COLUMNS = [
    column.name for column in result_rows.columns if column.name not in ("id", "session_id")
]

__all__ = [
    "metadata",
    "people",
    "sessions",
    "result_rows",
    "face_assignments",
    "captures",
    "ROW_COLUMNS",
]
