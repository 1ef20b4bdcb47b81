"""The audit says where and for which agent an action happened, and how it ended; and it
is append-only: the database itself refuses to change or delete a row.

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

#: What every refused UPDATE, DELETE or TRUNCATE says.
APPEND_ONLY = "audit is append-only"

_SQLITE_TRIGGERS = {
    f"audit_no_{verb.lower()}": f"CREATE TRIGGER audit_no_{verb.lower()} BEFORE {verb} ON audit "
    f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    for verb in ("UPDATE", "DELETE")
}

# Statement-level: even a statement that matches no row is refused, and TRUNCATE (which
# fires no row trigger) has its own.
_POSTGRES_UP = (
    "CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    f"BEGIN RAISE EXCEPTION '{APPEND_ONLY}' USING ERRCODE = 'insufficient_privilege'; END $$",
    "CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
    "CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()",
)
_POSTGRES_DOWN = (
    "DROP TRIGGER IF EXISTS audit_no_truncate ON audit",
    "DROP TRIGGER IF EXISTS audit_no_change ON audit",
    "DROP FUNCTION IF EXISTS audit_append_only()",
)


def upgrade() -> None:
    with op.batch_alter_table("audit") as batch:
        for name, length in _COLUMNS:
            batch.add_column(sa.Column(name, sa.String(length), nullable=False, server_default=""))
    op.create_index("ix_audit_agent", "audit", ["agent"])
    op.create_index("ix_audit_created_at", "audit", ["created_at"])
    # After the columns: on SQLite a batch that rebuilds the table drops its triggers, so
    # a later migration that rebuilds `audit` there must create these again.
    if op.get_context().dialect.name == "sqlite":
        statements: tuple[str, ...] = tuple(_SQLITE_TRIGGERS.values())
    else:
        statements = _POSTGRES_UP
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        statements = tuple(f"DROP TRIGGER IF EXISTS {name}" for name in _SQLITE_TRIGGERS)
    else:
        statements = _POSTGRES_DOWN
    for statement in statements:
        op.execute(statement)
    op.drop_index("ix_audit_created_at", "audit")
    op.drop_index("ix_audit_agent", "audit")
    with op.batch_alter_table("audit") as batch:
        for name, _ in reversed(_COLUMNS):
            batch.drop_column(name)
