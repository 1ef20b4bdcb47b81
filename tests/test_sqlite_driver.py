"""The SQLite driver (storage/sqlite_driver.py): one trip to aiosqlite's thread per
statement, with the results, errors and counts SQLAlchemy expects from a cursor."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError

from storage.db import Database

pytestmark = pytest.mark.sqlite


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'driver.db'}")
    async with database.engine.begin() as connection:
        await connection.execute(
            text("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL)")
        )
    yield database
    await database.dispose()


@pytest.fixture
def trips(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every call that crosses to an aiosqlite connection's thread, in order."""
    calls: list[Any] = []
    original = aiosqlite.Connection._execute

    async def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(fn)
        return await original(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    return calls


async def test_a_statement_is_one_trip_to_the_thread(db: Database, trips: list[Any]) -> None:
    async with db.engine.begin() as connection:
        trips.clear()
        await connection.execute(text("INSERT INTO items (name) VALUES ('a')"))
        assert len(trips) == 1
        rows = (await connection.execute(text("SELECT name FROM items"))).all()
        assert len(trips) == 2
    assert [row.name for row in rows] == ["a"]
    # SQLAlchemy's own adapter makes three for the INSERT (cursor, execute, close) and
    # four for the SELECT (and fetchall).


async def test_results_counts_and_ids_are_those_of_the_statement(db: Database) -> None:
    async with db.engine.begin() as connection:
        inserted = await connection.execute(text("INSERT INTO items (name) VALUES ('a')"))
        assert inserted.lastrowid == 1
        await connection.execute(
            text("INSERT INTO items (name) VALUES (:name)"), [{"name": "b"}, {"name": "c"}]
        )
        updated = await connection.execute(
            text("UPDATE items SET name = name || '!' WHERE name != 'a'")
        )
        assert updated.rowcount == 2
        returned = await connection.execute(
            text("UPDATE items SET name = 'z' WHERE name = 'a' RETURNING id, name")
        )
        assert [tuple(row) for row in returned] == [(1, "z")]
        rows = await connection.execute(text("SELECT id, name FROM items ORDER BY id"))
        assert list(rows.keys()) == ["id", "name"]
        assert [tuple(row) for row in rows] == [(1, "z"), (2, "b!"), (3, "c!")]


async def test_errors_are_sqlalchemy_errors_and_roll_back(db: Database) -> None:
    with pytest.raises(IntegrityError, match="UNIQUE"):
        async with db.engine.begin() as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('a')"))
            await connection.execute(text("INSERT INTO items (name) VALUES ('a')"))
    with pytest.raises(OperationalError, match="no such table"):
        async with db.engine.connect() as connection:
            await connection.execute(text("SELECT * FROM missing"))
    async with db.engine.connect() as connection:
        assert (await connection.execute(text("SELECT count(*) FROM items"))).scalar() == 0
