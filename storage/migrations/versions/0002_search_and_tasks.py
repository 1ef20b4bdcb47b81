"""Word search for memories, and the tasks agents hand each other.

Each searchable table (memories, tasks) gets a ``terms`` column, the words of its text as
``storage/search.py`` splits them, and an index over it: on SQLite an FTS5 table kept in
step by triggers, on PostgreSQL a generated ``tsvector`` column with a GIN index. Existing
memories get their terms here.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from corral.storage.search import search_terms

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def _sqlite_index(table: str) -> list[str]:
    """An FTS5 table over ``table.terms``, kept in step by triggers.

    External content: FTS5 keeps only the index and reads the words from ``table``.
    The ascii tokenizer splits on ASCII spaces and punctuation only (it takes every
    other character as part of a word); ``terms`` holds words of letters and digits
    separated by single spaces, so FTS5 sees exactly Corral's words. ``detail=none``:
    matching needs no positions. The prefix indexes make two- and three-letter prefix
    queries as fast as longer ones.
    """
    fts = f"{table}_fts"
    add = f"INSERT INTO {fts}(rowid, terms) VALUES (new.id, new.terms);"
    remove = f"INSERT INTO {fts}({fts}, rowid, terms) VALUES ('delete', old.id, old.terms);"
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5(terms, content='{table}', content_rowid='id', "
        "tokenize=ascii, detail=none, prefix='2 3')",
        f"CREATE TRIGGER {fts}_insert AFTER INSERT ON {table} BEGIN {add} END",
        f"CREATE TRIGGER {fts}_delete AFTER DELETE ON {table} BEGIN {remove} END",
        f"CREATE TRIGGER {fts}_update AFTER UPDATE OF terms ON {table} BEGIN {remove} {add} END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def _postgres_index(table: str) -> list[str]:
    """A generated tsvector of ``table.terms`` with a GIN index.

    ``array_to_tsvector`` takes the words as they are (``to_tsvector`` would parse and
    stem them differently from SQLite). Without fastupdate, new rows go straight into
    the index instead of a pending list that every search would scan until a vacuum.
    """
    return [
        f"ALTER TABLE {table} ADD COLUMN search_vector tsvector "
        "GENERATED ALWAYS AS (array_to_tsvector(string_to_array(terms, ' '))) STORED",
        f"CREATE INDEX ix_{table}_search ON {table} USING gin (search_vector) "
        "WITH (fastupdate = off)",
    ]


def _create_index(table: str) -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    for statement in _sqlite_index(table) if sqlite else _postgres_index(table):
        op.execute(statement)


def _fill_memory_terms() -> None:
    memories = sa.table(
        "memories", sa.column("id", sa.Integer()), sa.column("text"), sa.column("terms")
    )
    connection = op.get_bind()
    rows = connection.execute(sa.select(memories.c.id, memories.c.text)).all()
    if not rows:
        return
    fill = (
        memories.update()
        .where(memories.c.id == sa.bindparam("memory_id"))
        .values(terms=sa.bindparam("words"))
    )
    connection.execute(fill, [{"memory_id": i, "words": search_terms(t)} for i, t in rows])


def upgrade() -> None:
    op.add_column("memories", sa.Column("terms", sa.Text(), nullable=False, server_default=""))
    op.create_index("ix_memories_updated", "memories", ["updated_at"])
    _fill_memory_terms()
    _create_index("memories")

    op.create_table(
        "tasks",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("from_agent", sa.String(64), nullable=False),
        sa.Column("to_agent", sa.String(64), nullable=False),
        sa.Column("task", sa.Text(), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("result", sa.Text(), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("channel", sa.String(200), nullable=False),
        sa.Column("thread", sa.String(200), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False, server_default=""),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
    )
    op.create_index("ix_tasks_status", "tasks", ["status", "id"])
    op.create_index("ix_tasks_updated", "tasks", ["updated_at"])
    _create_index("tasks")


def downgrade() -> None:
    sqlite = op.get_context().dialect.name == "sqlite"
    if sqlite:
        for table in ("memories", "tasks"):
            for trigger in ("insert", "delete", "update"):
                op.execute(f"DROP TRIGGER {table}_fts_{trigger}")
            op.execute(f"DROP TABLE {table}_fts")
    op.drop_table("tasks")
    with op.batch_alter_table("memories") as batch:
        if not sqlite:
            batch.drop_column("search_vector")
        batch.drop_index("ix_memories_updated")
        batch.drop_column("terms")
