"""Work items of several kinds in the inbox (messages, decisions, escalations resolved,
schedule fires), and the ledger of posted parts that makes posting idempotent.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("inbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(20), nullable=False, server_default="message"))
    op.create_table(
        "post_parts",
        sa.Column("inbox_id", sa.String(40), primary_key=True),
        sa.Column("post", sa.Integer(), primary_key=True),
        sa.Column("part", sa.Integer(), primary_key=True),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("post_parts")
    with op.batch_alter_table("inbox") as batch:
        batch.drop_column("kind")
