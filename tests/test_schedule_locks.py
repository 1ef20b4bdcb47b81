"""One conformance suite for the lock, run against every implementation: the database lock
on SQLite and PostgreSQL, and the Redis lock on a real Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from corral.storage.locks import DatabaseLock, Lock, RedisLock
from corral.storage.store import Storage
from corral.storage.tables import LockRow

REDIS_URL = "redis://127.0.0.1:6379/0"
LONG = timedelta(seconds=30)
SHORT = timedelta(milliseconds=200)


@pytest.fixture(params=["database", "redis"])
async def locks(
    request: pytest.FixtureRequest, storage: Storage
) -> AsyncIterator[tuple[Lock, Lock]]:
    """Two locks on one backend, as two processes would hold them. The Redis variant
    runs once per database parameter too: cheap, and it keeps the fixture simple."""
    if request.param == "database":
        yield DatabaseLock(storage.db), DatabaseLock(storage.db)
        return
    prefix = f"corral-test:{secrets.token_hex(4)}:"
    clients = [Redis.from_url(REDIS_URL), Redis.from_url(REDIS_URL)]
    try:
        await clients[0].ping()
    except OSError as exc:  # never skip: Redis is part of the test machine
        raise RuntimeError(f"Redis is required at {REDIS_URL}: {exc}") from exc
    yield RedisLock(clients[0], prefix), RedisLock(clients[1], prefix)
    for client in clients:
        await client.aclose()


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


async def test_expired_database_locks_are_swept_out(storage: Storage) -> None:
    lock = DatabaseLock(storage.db, purge_every=timedelta(0))
    for n in range(5):
        assert await lock.acquire(f"slot-{n}", timedelta(milliseconds=1)) is not None
    await asyncio.sleep(0.01)
    await lock.acquire("another", LONG)
    async with storage.db.session() as session:
        left = (await session.execute(select(func.count()).select_from(LockRow))).scalar_one()
    assert left == 1
