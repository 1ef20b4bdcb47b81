"""Sliding-window rate limits, per-model cooldowns and run slots (issue 13): the token
buckets of ``limits`` give way to the grants of ``limit_grants`` and to ``limit_keys``,
whose rows the database serialises each key's counters on.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # The buckets were never wired into a run: nothing in them is worth carrying over.
    op.drop_table("limits")
    op.create_table("limit_keys", sa.Column("key", sa.String(255), primary_key=True))
    op.create_table(
        "limit_grants",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("grant_id", sa.String(40), primary_key=True),
        sa.Column("stamp", sa.Double(), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
    )
    op.create_index("ix_limit_grants_key_stamp", "limit_grants", ["key", "stamp"])
    op.create_table(
        "cooldowns",
        sa.Column("model", sa.String(255), primary_key=True),
        sa.Column("until", sa.Double(), nullable=False),
    )
    op.create_table(
        "run_slots",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("holder", sa.String(255), primary_key=True),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("run_slots")
    op.drop_table("cooldowns")
    op.drop_index("ix_limit_grants_key_stamp", table_name="limit_grants")
    op.drop_table("limit_grants")
    op.drop_table("limit_keys")
    op.create_table(
        "limits",
        sa.Column("key", sa.String(255), primary_key=True),
        sa.Column("tokens", sa.Double(), nullable=False),
        sa.Column("refilled_at", sa.Double(), nullable=False),
    )
