"""An index for the claim's question "is an earlier message of this thread unfinished?".

Partial, over pending and working messages only: the inbox keeps every message, and a
busy channel's history would otherwise be read on every claim.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_UNFINISHED = sa.text("status IN ('pending', 'working')")


def upgrade() -> None:
    op.create_index(
        "ix_inbox_unfinished_thread",
        "inbox",
        ["platform", "channel", "thread", "received_at"],
        sqlite_where=_UNFINISHED,
        postgresql_where=_UNFINISHED,
    )


def downgrade() -> None:
    op.drop_index("ix_inbox_unfinished_thread", table_name="inbox")
