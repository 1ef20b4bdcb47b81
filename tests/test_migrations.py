"""The Alembic migrations build exactly the schema of ``storage/tables.py``."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect

from corral.storage.db import MIGRATIONS, Database
from corral.storage.migrations.env import include_name
from corral.storage.search import is_search_object
from corral.storage.tables import Base

TABLES = {"inbox", "transcript", "threads", "runs", "memories", "approvals", "audit"}
#: Scheduled jobs (migration 0003).
TABLES |= {"schedules", "schedule_fires", "locks"}
#: The team's tasks (migration 0002).
TABLES |= {"tasks"}
#: Vectors for semantic memory search (migration 0004).
TABLES |= {"memory_vectors"}
#: Added by 0010 (the ledger of posted parts).
TABLES |= {"post_parts"}
#: Rate limits' windows, cooldowns and run slots (migration 0012; 0009's "limits" dropped).
TABLES |= {"limit_keys", "limit_grants", "cooldowns", "run_slots"}
#: Budgets and the ledger of model calls (migration 0013).
TABLES |= {"spend_days", "spend_holds", "model_calls"}


def _schema(connection: Connection) -> dict[str, Any]:
    """The schema as migrated, without the word-search objects (FTS5 tables, tsvector
    columns and their indexes) that ``storage/tables.py`` cannot declare;
    ``test_word_indexes_are_migrated`` checks those."""
    inspector = inspect(connection)
    tables = [t for t in inspector.get_table_names() if not is_search_object(t, "table")]
    return {
        table: {
            "columns": {
                c["name"]: c["nullable"]
                for c in inspector.get_columns(table)
                if not is_search_object(c["name"], "column", table)
            },
            "unique": {
                u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            },
            # PostgreSQL also lists the indexes behind unique constraints; those are above.
            "indexes": {
                i["name"]: tuple(i["column_names"])
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint") and not is_search_object(i["name"], "index")
            },
            "primary_key": tuple(inspector.get_pk_constraint(table)["constrained_columns"]),
        }
        for table in tables
    }


def _differences(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"include_name": include_name})
    return list(compare_metadata(context, Base.metadata))


def _versions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _script_heads() -> set[str]:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return set(ScriptDirectory.from_config(config).get_heads())


async def test_upgrade_creates_every_table_and_is_idempotent(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        await db.upgrade()
        async with db.engine.connect() as connection:
            schema = await connection.run_sync(_schema)
            versions = await connection.run_sync(_versions)
    finally:
        await db.dispose()
    assert set(schema) == TABLES | {"alembic_version"}
    assert versions == _script_heads()


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
    import corral.storage.migrations.env as env

    assert callable(env.run_migrations)


def _search_objects(connection: Connection) -> set[str]:
    """Every object of the schema that the comparisons above leave out, as kind:name."""
    inspector = inspect(connection)
    found = set()
    for table in inspector.get_table_names():
        if is_search_object(table, "table"):
            found.add(f"table:{table}")
            continue
        found |= {
            f"column:{table}.{c['name']}"
            for c in inspector.get_columns(table)
            if is_search_object(c["name"], "column", table)
        }
        found |= {
            f"index:{i['name']}"
            for i in inspector.get_indexes(table)
            if is_search_object(i["name"], "index")
        }
    if connection.dialect.name == "sqlite":
        # The audit's append-only triggers are tests/test_audit_append_only.py's.
        triggers = connection.exec_driver_sql(
            "SELECT name FROM sqlite_master WHERE type='trigger' AND tbl_name <> 'audit'"
        )
        found |= {f"trigger:{name}" for (name,) in triggers}
    return found


async def test_word_indexes_are_migrated(database_url: str) -> None:
    db = Database(database_url)
    try:
        await db.upgrade()
        async with db.engine.connect() as connection:
            found = await connection.run_sync(_search_objects)
    finally:
        await db.dispose()
    if db.is_sqlite:
        fts5 = ("", "_data", "_idx", "_docsize", "_config")  # external content: no _content
        expected = {f"table:{t}_fts{s}" for t in ("memories", "tasks") for s in fts5}
        expected |= {
            f"trigger:{t}_fts_{event}"
            for t in ("memories", "tasks")
            for event in ("insert", "delete", "update")
        }
    else:
        expected = {
            "column:memories.search_vector",
            "column:tasks.search_vector",
            "index:ix_memories_search",
            "index:ix_tasks_search",
        }
    # Exactly these are left out of the comparison with storage/tables.py: no more.
    assert found == expected


def _upgrade(connection: Connection, target: str) -> None:
    from alembic import command

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, target)


async def test_memories_stored_before_word_search_are_found_after_the_upgrade(
    database_url: str,
) -> None:
    from corral.storage.store import Storage

    db = Database(database_url)
    try:
        async with db.engine.begin() as connection:
            await connection.run_sync(_upgrade, "0001")
            await connection.exec_driver_sql(
                "INSERT INTO memories (text, text_key, scope, agent, channel, author, "
                "created_at, updated_at) VALUES ('Backups run nightly at 02:00', 'k', 'team', "
                "'', '', 'U1', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
    finally:
        await db.dispose()
    storage = await Storage.open(database_url)
    try:
        (found,) = await storage.memory.search("when do backups run?")
        assert found.text == "Backups run nightly at 02:00"
    finally:
        await storage.close()


STARTER = Path(__file__).parent / "sqlite_starter.py"


def test_two_processes_starting_on_a_new_sqlite_file_both_start(tmp_path: Path) -> None:
    """The first connection to a new SQLite file switches it to WAL, which needs an
    exclusive lock for which SQLite's busy handler is not called: two processes opening
    the file at once used to fail one in about fifteen times with "database is locked".
    Two real processes, each handed the same new file at the same moment, many times."""
    rounds = 25
    starters = [
        subprocess.Popen(
            [sys.executable, str(STARTER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for starter in starters:
            assert starter.stdout is not None
            assert starter.stdout.readline().strip() == "ready"
        failures = []
        for round_ in range(rounds):
            path = tmp_path / f"corral-{round_}.db"
            for starter in starters:
                assert starter.stdin is not None
                starter.stdin.write(f"{path}\n")
            for starter in starters:
                assert starter.stdin is not None
                starter.stdin.flush()
            for starter in starters:
                assert starter.stdout is not None
                answer = starter.stdout.readline().strip()
                if answer != "ok":
                    failures.append(f"round {round_}: {answer}")
    finally:
        for starter in starters:
            assert starter.stdin is not None
            starter.stdin.close()
            starter.wait(timeout=30)
    assert failures == []
