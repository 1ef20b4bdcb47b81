"""The model tier a schedule's fires use (empty: the agent's own model).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.add_column(sa.Column("tier", sa.String(64), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("schedules") as batch:
        batch.drop_column("tier")
