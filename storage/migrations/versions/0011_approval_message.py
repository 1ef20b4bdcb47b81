"""Which platform message carries an approval's buttons (channel and message id), so a
click counts only on the request's own message.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # Requests posted before this revision keep "": nothing to check their clicks against.
    with op.batch_alter_table("approvals") as batch:
        batch.add_column(
            sa.Column("message_channel", sa.String(200), nullable=False, server_default="")
        )
        batch.add_column(sa.Column("message_id", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("approvals") as batch:
        batch.drop_column("message_id")
        batch.drop_column("message_channel")
