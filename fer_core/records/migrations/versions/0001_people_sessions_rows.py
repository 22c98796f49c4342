"""People, saved sessions and their result rows: the first schema.

Revision ID: 0001
Revises:
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def upgrade() -> None:
    op.create_table(
        "people",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uid", sa.String(36), nullable=False, unique=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("person_id", sa.Integer, sa.ForeignKey("people.id", ondelete="SET NULL")),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("name", sa.String(300), nullable=False, server_default=""),
        sa.Column("detector", sa.String(32), nullable=False, server_default=""),
        sa.Column("model", sa.String(300), nullable=False, server_default=""),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True)),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_sessions_owner", "sessions", ["owner"])
    op.create_index("ix_sessions_person_id", "sessions", ["person_id"])
    op.create_index("ix_sessions_started_at", "sessions", ["started_at"])
    op.create_table(
        "result_rows",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "session_id",
            sa.Integer,
            sa.ForeignKey("sessions.id", ondelete="CASCADE"),
            nullable=False,
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
    )
    op.create_index("ix_result_rows_session_id", "result_rows", ["session_id"])


def downgrade() -> None:
    op.drop_table("result_rows")
    op.drop_table("sessions")
    op.drop_table("people")
