"""SQLAlchemy's aiosqlite adapter, with one trip to the SQLite thread per statement.

aiosqlite runs each SQLite connection on a thread of its own, and every call crosses to
that thread and back. SQLAlchemy's adapter makes a statement three or four such calls
(open a cursor, execute, fetch the rows of a query, close the cursor), and each crossing
costs about as much as the statement: measured here, 0.42 ms a statement against 0.18 ms
when the steps run as one call on the thread. Corral runs about ten statements for every
message, so this was most of what SQLite cost a turn.

Only the plain cursor changes; everything else is SQLAlchemy's adapter, which already
reaches into aiosqlite's connection (``_conn``, ``_tx``) the same way. Why not the
sqlite3 module on the event loop itself: a write that waits for another process's lock
(``busy_timeout``) would stop every task for as long.

It also makes this process's writers take turns. SQLite has one writer at a time; a
connection that finds another one writing waits in SQLite's busy handler, which sleeps
1, 2, 5, 10, … up to 100 ms between tries, so under a burst a short write could wait far
longer than the writes before it took. Here a connection about to write first waits for
the process's other writing connections to commit, in order of arrival (an
``asyncio.Lock``), and holds that turn exactly as long as SQLite's write lock: from the
first statement that may write until the transaction ends. Writers in other processes
still meet SQLite's busy handler.
"""

from __future__ import annotations

import asyncio
import collections
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import aiosqlite
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.util import EMPTY_DICT
from sqlalchemy.util.concurrency import await_

_Result = tuple[Any, list[Any], int, int | None, bool]
_T = TypeVar("_T")

#: Statements that only read: they run without waiting for the writers' turn.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A cursor whose ``execute`` opens, runs, fetches and closes a sqlite3 cursor in one
    call on the connection's thread; the results are kept here, as SQLAlchemy's cursor
    keeps them after its fetch."""

    __slots__ = ("_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:
        # The base class would open an aiosqlite cursor now, one more trip to the thread.
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> Any:
        return self._lastrowid

    async def _async_soft_close(self) -> None:
        # The sqlite3 cursor is closed on the thread already.
        return None

    def close(self) -> None:
        self._rows.clear()

    def execute(self, operation: Any, parameters: Any = None) -> Any:
        self._run(
            operation,
            lambda cursor: cursor.execute(operation, () if parameters is None else parameters),
        )

    def executemany(self, operation: Any, seq_of_parameters: Sequence[Any]) -> Any:
        self._run(operation, lambda cursor: cursor.executemany(operation, seq_of_parameters))

    def _run(self, operation: str, call: Callable[[sqlite3.Cursor], object]) -> None:
        adapted: OneTripConnection = self._adapt_connection  # type: ignore[assignment]
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]

        def on_thread() -> _Result:
            cursor = connection._conn.cursor()
            try:
                call(cursor)
                rows = cursor.fetchall() if cursor.description else []
                return (
                    cursor.description,
                    rows,
                    cursor.rowcount,
                    cursor.lastrowid,
                    connection._conn.in_transaction,
                )
            finally:
                cursor.close()

        try:
            if not operation.lstrip()[:7].upper().startswith(_READS):
                adapted.take_writers_turn()
            result: _Result = await_(connection._execute(on_thread))  # type: ignore[no-untyped-call]
        except Exception as error:
            adapted.end_writers_turn_unless_in_transaction()
            self._adapt_connection._handle_exception(error)
        self._description, rows, self._rowcount, self._lastrowid, in_transaction = result
        self._rows = collections.deque(rows)
        if not in_transaction:
            # Autocommitted (no transaction was open, or the statement ended it).
            adapted.end_writers_turn()


class _Writers:
    """Whose turn it is to write, among one engine's connections: a lock per event loop,
    since an engine may outlive the loop it was first used on (``asyncio.run`` twice)."""

    def __init__(self) -> None:
        self._locks: dict[asyncio.AbstractEventLoop, asyncio.Lock] = {}

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self._locks.get(loop)
        if lock is None:
            # Loops that are closed are gone for good: forget their locks.
            self._locks = {
                known: held for known, held in self._locks.items() if not known.is_closed()
            }
            lock = self._locks[loop] = asyncio.Lock()
        return lock


async def _acquire(lock: asyncio.Lock, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await lock.acquire()
    except TimeoutError:
        # What SQLite says when its own wait runs out, so callers see one error for both.
        raise sqlite3.OperationalError(
            f"database is locked (another write of this process took over {seconds:g} s)"
        ) from None


class OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ("_turn",)
    _cursor_cls = _OneTripCursor
    dbapi: OneTripDBAPI

    def __init__(self, dbapi: OneTripDBAPI, connection: Any) -> None:
        super().__init__(dbapi, connection)
        #: The writers' lock this connection holds, and its loop, while it holds one.
        self._turn: tuple[asyncio.AbstractEventLoop, asyncio.Lock] | None = None

    def run(self, call: Callable[[sqlite3.Connection], _T]) -> _T:
        """``call(connection)`` on this connection's thread, with the sqlite3 connection
        itself: for set-up that is several statements, or that must wait between them
        without holding up the event loop."""
        connection: aiosqlite.Connection = self._connection  # type: ignore[assignment]
        result: _T = await_(connection._execute(call, connection._conn))  # type: ignore[no-untyped-call]
        return result

    def take_writers_turn(self) -> None:
        """Wait until no other connection of this engine is writing (a no-op while this
        one holds the turn); "database is locked" after as long as SQLite would wait."""
        if self._turn is None:
            lock = self.dbapi.writers.lock()
            await_(_acquire(lock, self.dbapi.busy_timeout))
            self._turn = (asyncio.get_running_loop(), lock)

    def end_writers_turn(self) -> None:
        """Let the next writer go (a no-op unless this connection holds the turn)."""
        turn, self._turn = self._turn, None
        if turn is None:
            return
        loop, lock = turn
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            lock.release()
        elif not loop.is_closed():
            # Closed by the garbage collector, which may run on any thread.
            loop.call_soon_threadsafe(lock.release)

    def end_writers_turn_unless_in_transaction(self) -> None:
        """After a failed statement: the turn ends unless a transaction is still open."""
        live = self._connection._connection
        if live is None or not live.in_transaction:
            self.end_writers_turn()

    # Every way a transaction can end gives the turn up: a writer that kept it would
    # hold up every other.

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_writers_turn()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_writers_turn()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_writers_turn()

    def terminate(self) -> None:
        # How SQLAlchemy drops a connection whose task was cancelled mid-transaction,
        # and how the garbage collector closes one nobody returned.
        try:
            super().terminate()
        finally:
            self.end_writers_turn()


class OneTripDBAPI(AsyncAdapt_aiosqlite_dbapi):
    """The DBAPI module SQLAlchemy's aiosqlite dialect uses, handing out connections whose
    cursors make one trip a statement and whose writers take turns. Pass an instance as
    ``module=`` to ``create_async_engine``: one per engine, since the turns are the
    engine's."""

    def __init__(self, busy_timeout: float) -> None:
        super().__init__(aiosqlite, sqlite3)
        self.writers = _Writers()
        #: Seconds a writer waits for its turn, as SQLite's ``busy_timeout`` does.
        self.busy_timeout = busy_timeout

    def connect(self, *arg: Any, **kw: Any) -> OneTripConnection:
        adapted = super().connect(*arg, **kw)
        return OneTripConnection(self, adapted._connection)
