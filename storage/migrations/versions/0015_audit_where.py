"""The audit says where and for which agent an action happened, and how it ended.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | None = None
depends_on: str | None = None

_COLUMNS = (("agent", 64), ("platform", 32), ("channel", 200), ("thread", 200), ("outcome", 32))


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=False, server_default=""))
    op.create_index("ix_audit_agent", "audit", ["agent"])
    op.create_index("ix_audit_created_at", "audit", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_audit_created_at", "audit")
    op.drop_index("ix_audit_agent", "audit")
    with op.batch_alter_table("audit") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
