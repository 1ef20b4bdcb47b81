"""The SQLite driver (storage/sqlite_driver.py): one trip to aiosqlite's thread per
statement, with the results, errors and counts SQLAlchemy expects from a cursor, and
writers that take turns."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import IntegrityError, OperationalError

from corral.storage.db import Database

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
    with pytest.raises(OperationalError, match="no such table"):
        async with db.engine.connect() as connection:
            await connection.execute(text("DELETE FROM missing"))
    # The failed writes gave up their turn: another write goes through.
    async with asyncio.timeout(5), db.engine.begin() as connection:
        await connection.execute(text("INSERT INTO items (name) VALUES ('b')"))
    async with db.engine.connect() as connection:
        assert (await connection.execute(text("SELECT name FROM items"))).scalars().all() == ["b"]


async def test_writers_take_turns_and_readers_do_not_wait(db: Database) -> None:
    # With SQLite's own wait switched off, a second writer that did not wait for its turn
    # would fail at once with "database is locked".
    event.listen(db.engine.sync_engine, "connect", _no_busy_wait)
    await db.engine.dispose()
    order: list[str] = []

    async def second_writer() -> None:
        async with db.engine.begin() as other:
            await other.execute(text("INSERT INTO items (name) VALUES ('second')"))
        order.append("second committed")

    async with db.engine.connect() as first:
        await first.begin()
        await first.execute(text("INSERT INTO items (name) VALUES ('first')"))
        waiting = asyncio.create_task(second_writer())
        await asyncio.sleep(0.1)
        assert not waiting.done()
        async with db.engine.connect() as reader:
            seen = (await reader.execute(text("SELECT count(*) FROM items"))).scalar()
        order.append(f"read {seen}")
        await first.commit()
        order.append("first committed")
    await asyncio.wait_for(waiting, 5)

    assert order == ["read 0", "first committed", "second committed"]
    async with db.engine.connect() as reader:
        names = (await reader.execute(text("SELECT name FROM items ORDER BY id"))).scalars()
        assert names.all() == ["first", "second"]


def _no_busy_wait(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=0")
    cursor.close()


async def test_a_writer_kept_waiting_too_long_is_told_the_database_is_locked(
    db: Database,
) -> None:
    db.engine.sync_engine.dialect.dbapi.busy_timeout = 0.2  # type: ignore[union-attr]
    async with db.engine.connect() as first:
        await first.begin()
        await first.execute(text("INSERT INTO items (name) VALUES ('first')"))
        with pytest.raises(OperationalError, match="database is locked"):
            async with db.engine.begin() as other:
                await other.execute(text("INSERT INTO items (name) VALUES ('second')"))
        await first.commit()
    # The one that gave up holds nothing: the next write goes through at once.
    async with asyncio.timeout(5), db.engine.begin() as connection:
        await connection.execute(text("INSERT INTO items (name) VALUES ('third')"))
    async with db.engine.connect() as reader:
        names = (await reader.execute(text("SELECT name FROM items ORDER BY id"))).scalars()
        assert names.all() == ["first", "third"]


_SLOW_INSERT = text(
    "INSERT INTO items (name) SELECT 'slow' FROM (WITH RECURSIVE n(i) AS "
    "(SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000000) SELECT max(i) FROM n)"
)


@pytest.mark.parametrize("cancelled", ["between statements", "during a statement"])
async def test_a_writer_cancelled_mid_transaction_gives_up_its_turn(
    db: Database, cancelled: str
) -> None:
    started = asyncio.Event()

    async def writer() -> None:
        async with db.engine.begin() as connection:
            await connection.execute(text("INSERT INTO items (name) VALUES ('gone')"))
            started.set()
            if cancelled == "between statements":
                await asyncio.sleep(60)
            else:
                await connection.execute(_SLOW_INSERT)

    task = asyncio.create_task(writer())
    await started.wait()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    async with asyncio.timeout(10), db.engine.begin() as connection:
        await connection.execute(text("INSERT INTO items (name) VALUES ('next')"))
    async with db.engine.connect() as reader:
        names = (await reader.execute(text("SELECT name FROM items"))).scalars()
        assert names.all() == ["next"]
