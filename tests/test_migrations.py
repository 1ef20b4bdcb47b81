"""The Alembic migrations build exactly the schema of ``storage/tables.py``."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect

from storage.db import Database
from storage.tables import Base

TABLES = {"inbox", "transcript", "threads", "runs", "memories", "approvals", "audit"}


def _schema(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    return {
        table: {
            "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(table)},
            "unique": {
                u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            },
            # PostgreSQL also lists the indexes behind unique constraints; those are above.
            "indexes": {
                i["name"]: tuple(i["column_names"])
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")
            },
            "primary_key": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
        }
        for table in inspector.get_table_names()
    }


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection)
    return list(compare_metadata(context, Base.metadata))


def _version(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def test_upgrade_creates_every_table_and_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        await db.upgrade()
        async with db.engine.connect() as connection:
            schema = await connection.run_sync(_schema)
            version = await connection.run_sync(_version)
    finally:
        await db.dispose()
    assert set(schema) == TABLES | {"alembic_version"}
    assert version == "0001"


async def test_migrated_schema_matches_the_tables_module(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.engine.connect() as connection:
            differences = await connection.run_sync(_differences)
            schema = await connection.run_sync(_schema)
    finally:
        await db.dispose()
    assert differences == []
    for table in Base.metadata.sorted_tables:
        migrated = schema[table.name]
        assert migrated["columns"] == {c.name: c.nullable for c in table.columns}
        assert migrated["primary_key"] == tuple(c.name for c in table.primary_key.columns)
        assert migrated["indexes"] == {
            i.name: tuple(c.name for c in i.columns) for i in table.indexes
        }
    assert schema["inbox"]["unique"] == {
        "uq_inbox_event": ("platform", "event_id"),
        "uq_inbox_message": ("platform", "channel", "message_id"),
    }
    assert schema["memories"]["unique"] == {
        "uq_memories_text": ("scope", "agent", "channel", "text_key"),
    }


async def test_concurrent_upgrades_of_a_new_database_both_succeed(database_url: str) -> None:
    first, second = Database(database_url), Database(database_url)
    try:
        await asyncio.gather(first.upgrade(), second.upgrade())
        async with first.engine.connect() as connection:
            schema = await connection.run_sync(_schema)
    finally:
        await first.dispose()
        await second.dispose()
    assert set(schema) == TABLES | {"alembic_version"}


def test_env_module_is_importable_outside_alembic() -> None:
    import storage.migrations.env as env

    assert callable(env.run_migrations)
