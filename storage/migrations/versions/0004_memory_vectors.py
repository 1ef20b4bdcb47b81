"""Vectors of memories, for the optional semantic search (``storage/embeddings.py``).

Stored as bytes (float32), so that SQLite and PostgreSQL keep them alike without an
extension; memories stored before are embedded lazily, or by ``corral memory reindex``.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "memory_vectors",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("memory_id", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("memory_id", name="uq_memory_vectors_memory"),
    )


def downgrade() -> None:
    op.drop_table("memory_vectors")
