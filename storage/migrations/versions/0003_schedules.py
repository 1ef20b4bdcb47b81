"""Scheduled jobs: schedules, what became of each fire time, and database locks.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("every", sa.String(40), nullable=True),
        sa.Column("timezone", sa.String(64), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("active_since", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )

    op.create_table(
        "schedule_fires",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("schedule", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("slot", _utc(), nullable=False),
        sa.Column("first_slot", _utc(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.UniqueConstraint("schedule", "kind", "slot", name="uq_schedule_fires_slot"),
    )
    op.create_index("ix_schedule_fires_outcome", "schedule_fires", ["schedule", "outcome"])

    op.create_table(
        "locks",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("token", sa.String(40), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
    )
    op.create_index("ix_locks_expires", "locks", ["expires_at"])


def downgrade() -> None:
    for table in ("locks", "schedule_fires", "schedules"):
        op.drop_table(table)
