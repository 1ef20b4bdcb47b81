"""Budgets that hold and the ledger of model calls: each day's spend per agent and for
the team, the holds reserved before calls, every call's usage and cost; and on runs,
their cost, cached tokens and how their model was picked.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "spend_days",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("scope", sa.String(64), primary_key=True),
        sa.Column("spent_usd", sa.Double(), nullable=False),
        sa.Column("raised_usd", sa.Double(), nullable=False),
        sa.Column("warned", sa.Boolean(), nullable=False),
        sa.Column("refused_told", sa.Boolean(), nullable=False),
    )
    op.create_table(
        "spend_holds",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("amount", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
    )
    op.create_index("ix_spend_holds_day", "spend_holds", ["day", "agent"])
    op.create_table(
        "model_calls",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("run_id", sa.String(40), nullable=False),
        sa.Column("agent", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("tokens_in", sa.Integer(), nullable=False),
        sa.Column("tokens_out", sa.Integer(), nullable=False),
        sa.Column("cache_read", sa.Integer(), nullable=False),
        sa.Column("cache_write", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Double(), nullable=True),
    )
    op.create_index("ix_model_calls_at", "model_calls", ["at"])
    op.create_index("ix_model_calls_agent_at", "model_calls", ["agent", "at"])
    # Runs recorded before this revision keep an unknown cost and no cached tokens.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("cost_usd", sa.Double(), nullable=True))
        batch.add_column(
            sa.Column("tokens_cache_read", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("tokens_cache_write", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("model_choice", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("model_choice")
        batch.drop_column("tokens_cache_write")
        batch.drop_column("tokens_cache_read")
        batch.drop_column("cost_usd")
    op.drop_index("ix_model_calls_agent_at", table_name="model_calls")
    op.drop_index("ix_model_calls_at", table_name="model_calls")
    op.drop_table("model_calls")
    op.drop_index("ix_spend_holds_day", table_name="spend_holds")
    op.drop_table("spend_holds")
    op.drop_table("spend_days")
