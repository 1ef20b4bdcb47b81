"""One conformance suite for the rate limiter (storage/limiter.py), run against every
implementation: in this process, the database one on SQLite and PostgreSQL, and the
Redis one. Several handles on one backend stand for several processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from backends import DATABASES, Clock, databases, redis_clients

from corral.storage.limiter import DatabaseLimiter, InProcessLimiter, Limiter, RedisLimiter

#: A period long enough that the real time a test takes refills nothing that matters.
HOUR = 3600.0

Limiters = Callable[[], Limiter]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in-process", *DATABASES, "redis"])
async def limiters(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Limiters]:
    """A function giving another handle on one shared set of buckets, on ``clock``."""
    backend = request.param
    if backend == "in-process":
        shared = InProcessLimiter(clock)
        yield lambda: shared
    elif backend == "redis":
        async with redis_clients() as (client, prefix):
            yield lambda: RedisLimiter(client(), prefix, clock)
    else:
        async with databases(backend, tmp_path) as database:
            yield lambda: DatabaseLimiter(database(), clock)


async def test_a_full_bucket_grants_its_limit_then_says_how_long_to_wait(
    limiters: Limiters, clock: Clock
) -> None:
    limiter = limiters()
    # 5 units per 50 s: one unit comes back every 10 s.
    assert await limiter.acquire("k", 2, 5, 50) == 0
    assert await limiter.acquire("k", 3, 5, 50) == 0
    assert await limiter.acquire("k", 1, 5, 50) == pytest.approx(10, abs=0.01)
    clock.advance(4)
    assert await limiter.acquire("k", 1, 5, 50) == pytest.approx(6, abs=0.01)
    clock.advance(6)
    assert await limiter.acquire("k", 1, 5, 50) == 0  # refused calls took nothing
    assert await limiter.acquire("k", 2, 5, 50) == pytest.approx(20, abs=0.01)


async def test_a_bucket_refills_no_higher_than_its_limit(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters()
    assert await limiter.acquire("k", 5, 5, 50) == 0
    clock.advance(1000)
    assert await limiter.acquire("k", 5, 5, 50) == 0
    assert await limiter.acquire("k", 1, 5, 50) > 0


async def test_keys_are_separate_buckets(limiters: Limiters) -> None:
    limiter = limiters()
    assert await limiter.acquire("roo", 3, 3, HOUR) == 0
    assert await limiter.acquire("roo", 1, 3, HOUR) > 0
    assert await limiter.acquire("ada", 3, 3, HOUR) == 0


@pytest.mark.parametrize(("cost", "limit", "per"), [(4, 3, HOUR), (0, 3, HOUR), (1, 0, HOUR)])
async def test_a_cost_that_can_never_be_granted_is_an_error(
    limiters: Limiters, cost: int, limit: int, per: float
) -> None:
    with pytest.raises(ValueError):
        await limiters().acquire("k", cost, limit, per)


async def test_settling_gives_back_what_was_not_used_and_takes_what_was(
    limiters: Limiters, clock: Clock
) -> None:
    limiter = limiters()
    # 10 units per 100 s: one unit every 10 s.
    assert await limiter.acquire("tpm", 8, 10, 100) == 0
    await limiter.settle("tpm", 8, 3, 10, 100)  # 5 back: 7 left
    assert await limiter.acquire("tpm", 7, 10, 100) == 0
    assert await limiter.acquire("tpm", 1, 10, 100) == pytest.approx(10, abs=0.01)
    clock.advance(20)
    assert await limiter.acquire("tpm", 2, 10, 100) == 0
    await limiter.settle("tpm", 2, 12, 10, 100)  # 10 more than reserved: 10 in debt
    assert await limiter.acquire("tpm", 1, 10, 100) == pytest.approx(110, abs=0.01)
    await limiter.settle("tpm", 0, -100, 10, 100)  # given back, but no more than the limit
    assert await limiter.acquire("tpm", 10, 10, 100) == 0
    assert await limiter.acquire("tpm", 1, 10, 100) > 0


async def test_settling_an_unused_key_counts_from_a_full_bucket(limiters: Limiters) -> None:
    limiter = limiters()
    await limiter.settle("k", 0, 4, 10, HOUR)
    assert await limiter.acquire("k", 7, 10, HOUR) > 0
    assert await limiter.acquire("k", 6, 10, HOUR) == 0


async def test_two_processes_cannot_both_take_the_last_unit(limiters: Limiters) -> None:
    mine, theirs = limiters(), limiters()
    for key in ("a", "b", "c"):
        waits = await asyncio.gather(mine.acquire(key, 1, 1, HOUR), theirs.acquire(key, 1, 1, HOUR))
        assert sorted(w == 0 for w in waits) == [False, True]


async def test_concurrent_acquirers_never_get_more_than_the_bucket_and_its_refill(
    limiters: Limiters, clock: Clock
) -> None:
    processes = [limiters(), limiters(), limiters()]
    granted = 0
    # 10 units per 10 s; four rounds of 30 callers, 5 s apart: 10 at first, then 5 a round.
    for _ in range(4):
        waits = await asyncio.gather(
            *[processes[n % 3].acquire("busy", 1, 10, 10) for n in range(30)]
        )
        granted += sum(w == 0 for w in waits)
        assert all(w >= 0 for w in waits)
        clock.advance(5)
    assert granted == 10 + 3 * 5


async def test_after_the_wait_it_was_told_a_caller_is_granted(
    limiters: Limiters, clock: Clock
) -> None:
    """On the real clock: the wait a refused caller is told is enough, and not far more."""
    clock.running = True
    limiter = limiters()
    assert await limiter.acquire("k", 2, 2, 0.4) == 0
    wait = await limiter.acquire("k", 1, 2, 0.4)
    assert 0.1 < wait <= 0.2
    await asyncio.sleep(wait)
    assert await limiter.acquire("k", 1, 2, 0.4) == 0
