"""A note per person, face ids assigned to people, captured faces, optional thumbnails.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("people") as batch:
        batch.add_column(sa.Column("note", sa.Text, nullable=False, server_default=""))
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(
            sa.Column("thumbnails", sa.Boolean, nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("result_rows") as batch:
        batch.add_column(sa.Column("thumbnail", sa.LargeBinary))
    op.create_table(
        "face_assignments",
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
        ),
    )
    op.create_index("ix_face_assignments_person_id", "face_assignments", ["person_id"])
    op.create_table(
        "captures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "person_id",
            sa.Integer,
            sa.ForeignKey("people.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("emotion", sa.Integer, nullable=False),
        sa.Column("pixels", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_captures_person_id", "captures", ["person_id"])
    op.create_index("ix_captures_owner", "captures", ["owner"])
    op.create_index("ix_captures_created_at", "captures", ["created_at"])


def downgrade() -> None:
    op.drop_table("captures")
    op.drop_table("face_assignments")
    with op.batch_alter_table("result_rows") as batch:
        batch.drop_column("thumbnail")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("thumbnails")
    with op.batch_alter_table("people") as batch:
        batch.drop_column("note")
