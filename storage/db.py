"""The database: one async engine, its sessions, and its migrations."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from corral.storage.sqlite_driver import OneTripConnection, OneTripDBAPI
from corral.storage.tables import Base

MIGRATIONS = Path(__file__).resolve().parent / "migrations"

#: How long a SQLite writer waits for another one before "database is locked".
SQLITE_BUSY_TIMEOUT_MS = 15_000

#: Any constant: the PostgreSQL advisory lock that serialises concurrent upgrades.
_UPGRADE_LOCK = 0x636F7272616C

_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def normalise_url(url: str) -> URL:
    """``url`` with the async driver Corral uses (aiosqlite, asyncpg) and, for a SQLite
    file, an absolute path: relative paths are taken from the current directory now, not
    whenever a connection happens to open."""
    parsed = make_url(url)
    parsed = parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))
    database = parsed.database
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite and database and database != ":memory:" and parsed.query.get("uri") != "true":
        parsed = parsed.set(database=str(Path(database).resolve()))
    return parsed


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC datetime; naive values (SQLite returns those) are UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


#: Seconds between tries to switch a new SQLite file to WAL, as SQLite's busy handler
#: waits between its own tries; the last is repeated until the busy timeout runs out.
_WAL_BACKOFF = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.025, 0.025, 0.025, 0.05, 0.05, 0.1)


def _is_busy(error: sqlite3.OperationalError) -> bool:
    return getattr(error, "sqlite_errorcode", 0) & 0xFF == sqlite3.SQLITE_BUSY


def switch_to_wal(connection: sqlite3.Connection, timeout: float) -> None:
    """Put the database in WAL mode (a no-op when it is already), waiting up to
    ``timeout`` seconds for other connections that stand in the way.

    WAL is recorded in the file's header, so the first connection to a new file writes
    that header: it takes a read lock, then asks for the exclusive lock while holding
    it. SQLite does not call the busy handler for that second step (two connections
    that each hold a read lock and wait for the other would deadlock), so when another
    process opens the new file at the same moment, "database is locked" comes at once,
    whatever the busy timeout. The header is written once; this tries again with the
    busy handler's backoff until it is, or until the timeout has run out."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        try:
            connection.execute("PRAGMA journal_mode=WAL").fetchall()
            return
        except sqlite3.OperationalError as error:
            delay = _WAL_BACKOFF[min(tries, len(_WAL_BACKOFF) - 1)]
            if not _is_busy(error) or time.monotonic() + delay > deadline:
                raise
        time.sleep(delay)
        tries += 1


def _configure_sqlite(connection: sqlite3.Connection) -> None:
    # The busy timeout first: the switch to WAL below may wait for other connections.
    # It makes concurrent writers queue up instead of failing at once.
    connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    # WAL lets readers proceed while one task writes.
    switch_to_wal(connection, SQLITE_BUSY_TIMEOUT_MS / 1000)
    # With WAL, NORMAL cannot corrupt the database; it syncs at checkpoints instead of on
    # every commit, which is most of a small transaction's cost.
    connection.execute("PRAGMA synchronous=NORMAL")
    # SQLite's own lower() folds ASCII only; memory search must match "Über" to "über"
    # as it does on PostgreSQL.
    connection.create_function("lower", 1, _lower, deterministic=True)


def _on_sqlite_connect(dbapi_connection: OneTripConnection, _record: Any) -> None:
    # On the connection's own thread, in one trip: the switch to WAL may sleep between
    # tries, which must not stop the event loop.
    dbapi_connection.run(_configure_sqlite)


def _upgrade_to_head(connection: Connection) -> list[str]:
    # Imported here: Alembic is only needed when migrating, and the CLI must start fast.
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    # Several processes may start at once: the first migrates, the others wait and then
    # find the schema at head. Both locks are released when the transaction ends.
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
    else:
        # The sqlite3 driver opens transactions only before DML, which would leave each
        # CREATE TABLE on its own; this makes the whole upgrade one locked transaction.
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    config = Config()
    # ConfigParser interpolation would read a "%" in the install path as a placeholder.
    config.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    config.attributes["connection"] = connection
    # Read under the lock: what another process applied meanwhile is not this one's.
    before = MigrationContext.configure(connection).get_current_heads()
    command.upgrade(config, "heads")
    script = ScriptDirectory.from_config(config)
    applied = script.iterate_revisions("heads", before or "base")
    return [revision.revision for revision in reversed(list(applied))]


class Database:
    """An async SQLAlchemy engine for SQLite (aiosqlite) or PostgreSQL (asyncpg)."""

    def __init__(self, url: str) -> None:
        self.url = normalise_url(url)
        if self.url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError(
                f"unsupported database {self.url.drivername!r}: use SQLite or PostgreSQL"
            )
        if self.is_sqlite:
            self.engine: AsyncEngine = create_async_engine(
                self.url, module=OneTripDBAPI(busy_timeout=SQLITE_BUSY_TIMEOUT_MS / 1000)
            )
            event.listen(self.engine.sync_engine, "connect", _on_sqlite_connect)
        else:
            self.engine = create_async_engine(self.url)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        """True for SQLite, False for PostgreSQL."""
        return self.url.get_backend_name() == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session; use ``async with session.begin():`` for a transaction."""
        async with self._sessions() as session:
            yield session

    @asynccontextmanager
    async def transaction(
        self, on: AsyncConnection | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """A Core connection in a transaction that commits when the block ends; with
        ``on``, that connection instead, in the caller's transaction. The hot paths use
        these rather than ORM sessions, which cost more than the statements they run."""
        if on is not None:
            yield on
            return
        async with self.engine.begin() as connection:
            yield connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncConnection]:
        """A Core connection for reads (its implicit transaction is rolled back)."""
        async with self.engine.connect() as connection:
            yield connection

    def insert(self, table: type[Base]) -> sqlite.Insert | postgresql.Insert:
        """An INSERT for ``table`` in this database's dialect, which supports
        ``on_conflict_do_nothing`` and ``on_conflict_do_update`` (upserts)."""
        if self.is_sqlite:
            return sqlite.insert(table)
        return postgresql.insert(table)

    async def upgrade(self) -> list[str]:
        """Apply every Alembic migration up to head; a no-op when already there. Returns
        the revisions applied, oldest first."""
        async with self.engine.begin() as connection:
            return await connection.run_sync(_upgrade_to_head)

    async def dispose(self) -> None:
        """Close every pooled connection."""
        await self.engine.dispose()
