"""One conformance suite for the lock (storage/locks.py), run against every
implementation: the database lock on SQLite and PostgreSQL, and the Redis lock. (A
single process uses the database lock too, on SQLite: there is no in-process lock.)
Several handles on one backend stand for several processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from backends import DATABASES, databases, redis_clients
from sqlalchemy import func, select

from corral.storage.locks import DatabaseLock, Lock, RedisLock
from corral.storage.store import Storage
from corral.storage.tables import LockRow

LONG = timedelta(seconds=30)
SHORT = timedelta(milliseconds=200)


@pytest.fixture(params=[*DATABASES, "redis"])
async def locks(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[tuple[Lock, Lock]]:
    """Two locks on one backend, as two processes would hold them."""
    if request.param == "redis":
        async with redis_clients() as (client, prefix):
            yield RedisLock(client(), prefix), RedisLock(client(), prefix)
    else:
        async with databases(request.param, tmp_path) as database:
            yield DatabaseLock(database()), DatabaseLock(database())


async def test_one_holder_at_a_time(locks: tuple[Lock, Lock]) -> None:
    mine, theirs = locks
    token = await mine.acquire("k", LONG)
    assert token is not None
    assert await theirs.acquire("k", LONG) is None
    assert await mine.acquire("k", LONG) is None  # not re-entrant either
    assert await theirs.acquire("other", LONG) is not None


async def test_release_and_renew_need_the_token(locks: tuple[Lock, Lock]) -> None:
    mine, theirs = locks
    token = await mine.acquire("k", LONG)
    assert token is not None
    await theirs.release("k", "not-the-token")
    assert await theirs.acquire("k", LONG) is None
    assert not await theirs.renew("k", "not-the-token", LONG)
    assert await mine.renew("k", token, LONG)
    await mine.release("k", token)
    assert await theirs.acquire("k", LONG) is not None


async def test_a_lock_expires_unless_renewed(locks: tuple[Lock, Lock]) -> None:
    mine, theirs = locks
    token = await mine.acquire("k", SHORT)
    assert token is not None
    await asyncio.sleep(0.1)
    assert await mine.renew("k", token, timedelta(milliseconds=400))
    await asyncio.sleep(0.2)
    assert await theirs.acquire("k", SHORT) is None  # renewed: still held
    await asyncio.sleep(0.4)
    theirs_token = await theirs.acquire("k", LONG)
    assert theirs_token is not None  # expired: taken over
    assert not await mine.renew("k", token, LONG)  # the old holder cannot take it back
    await mine.release("k", token)
    assert await mine.acquire("k", LONG) is None


async def test_racing_processes_get_one_token(locks: tuple[Lock, Lock]) -> None:
    mine, theirs = locks
    tokens = await asyncio.gather(*[(mine, theirs)[i % 2].acquire("race", LONG) for i in range(10)])
    assert sum(token is not None for token in tokens) == 1


async def test_holders_contending_for_a_while_never_overlap(locks: tuple[Lock, Lock]) -> None:
    holding: list[int] = []
    overlaps = 0
    turns = [0] * 8

    async def contend(n: int) -> None:
        nonlocal overlaps
        while turns[n] < 3:
            token = await locks[n % 2].acquire("contended", LONG)
            if token is None:
                await asyncio.sleep(0)
                continue
            holding.append(n)
            overlaps += len(holding) > 1
            await asyncio.sleep(0)  # let every other contender try meanwhile
            holding.remove(n)
            turns[n] += 1
            await locks[n % 2].release("contended", token)

    async with asyncio.timeout(30):
        await asyncio.gather(*[contend(n) for n in range(len(turns))])
    assert overlaps == 0
    assert turns == [3] * 8


async def test_expired_database_locks_are_swept_out(storage: Storage) -> None:
    lock = DatabaseLock(storage.db, purge_every=timedelta(0))
    for n in range(5):
        assert await lock.acquire(f"slot-{n}", timedelta(milliseconds=1)) is not None
    await asyncio.sleep(0.01)
    await lock.acquire("another", LONG)
    async with storage.db.session() as session:
        left = (await session.execute(select(func.count()).select_from(LockRow))).scalar_one()
    assert left == 1
