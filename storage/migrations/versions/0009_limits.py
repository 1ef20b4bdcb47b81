"""Rate limits' token buckets, for the database limiter (storage/limiter.py).

Revision ID: 0009
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "limits",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refilled_at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("limits")
