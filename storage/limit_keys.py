"""What the shared counters (storage/limiter.py, storage/run_slots.py) have in common:
the clock they count on, and how a database transaction takes its turn on their keys."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database
from corral.storage.tables import LimitKeyRow

#: Seconds since the epoch. Processes sharing a counter are assumed to have synchronised
#: clocks, as the database lock's expiry already is; tests pass a clock they step.
Clock = Callable[[], float]


async def take_turn(connection: AsyncConnection, db: Database, keys: Iterable[str]) -> None:
    """Lock ``keys`` for the rest of ``connection``'s transaction, so that what it reads
    of their counters cannot change before it writes. Call it first in the transaction.

    An upsert that writes each key's row: on PostgreSQL it locks the rows, in sorted
    order so that two transactions wanting the same keys cannot deadlock; on SQLite it
    makes the transaction the one writer before it reads anything."""
    statement = db.insert(LimitKeyRow).values([{"key": key} for key in sorted(set(keys))])
    await connection.execute(
        statement.on_conflict_do_update(
            index_elements=["key"], set_={"key": statement.excluded.key}
        )
    )
