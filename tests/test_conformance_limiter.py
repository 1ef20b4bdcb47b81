"""One conformance suite for the rate limiter (storage/limiter.py), run against every
implementation: in this process, the database one on SQLite and PostgreSQL, and the
Redis one. Several handles on one backend stand for several processes."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from backends import DATABASES, Clock, databases, redis_clients

from corral.storage.limiter import (
    DatabaseLimiter,
    Grant,
    InProcessLimiter,
    Limiter,
    Need,
    RedisLimiter,
)

Limiters = Callable[[], Limiter]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in-process", *DATABASES, "redis"])
async def limiters(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Limiters]:
    """A function giving another handle on one shared set of window logs, on ``clock``."""
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


def rpm(cost: int, key: str = "k", limit: int = 5, window_s: float = 60.0) -> Need:
    return Need(key, cost, limit, window_s)


async def granted(limiter: Limiter, *needs: Need) -> Grant:
    result = await limiter.acquire(needs)
    assert isinstance(result, Grant), f"refused: wait {result}"
    assert result.needs == needs
    return result


async def test_a_window_grants_its_limit_then_waits_for_the_oldest_entries_to_leave(
    limiters: Limiters, clock: Clock
) -> None:
    limiter = limiters()
    await granted(limiter, rpm(2))
    clock.advance(10)
    await granted(limiter, rpm(3))
    # The first entry (2 units, stamped at 0) leaves at 60; up to 2 units fit then.
    assert await limiter.acquire([rpm(1)]) == pytest.approx(50)
    assert await limiter.acquire([rpm(2)]) == pytest.approx(50)
    # 3 units need both entries gone: the second leaves at 70.
    assert await limiter.acquire([rpm(3)]) == pytest.approx(60)
    clock.advance(49.5)
    assert await limiter.acquire([rpm(1)]) == pytest.approx(0.5)
    clock.advance(0.5)
    await granted(limiter, rpm(2))  # refused calls took nothing
    assert await limiter.acquire([rpm(1)]) == pytest.approx(10)


async def test_a_refusal_waits_at_least_a_millisecond(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters()
    await granted(limiter, rpm(5))
    clock.advance(60 - 1e-5)
    assert await limiter.acquire([rpm(1)]) == pytest.approx(0.001)
    clock.advance(1e-5)
    await granted(limiter, rpm(5))


async def test_keys_are_separate_windows(limiters: Limiters) -> None:
    limiter = limiters()
    await granted(limiter, rpm(5, "roo"))
    assert await limiter.acquire([rpm(1, "roo")]) == pytest.approx(60)
    await granted(limiter, rpm(5, "ada"))


async def test_several_needs_are_granted_all_or_none(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters()
    tokens = lambda cost: rpm(cost, "tokens", limit=10)  # noqa: E731
    await granted(limiter, rpm(5, "requests"))
    clock.advance(20)
    await granted(limiter, tokens(4))
    # The requests are full for 40 s more; the tokens would fit: nothing is taken.
    assert await limiter.acquire([tokens(6), rpm(1, "requests")]) == pytest.approx(40)
    # The wait is the longest of the keys': 7 tokens fit when the 4 leave, in 60 s.
    assert await limiter.acquire([tokens(7), rpm(1, "requests")]) == pytest.approx(60)
    await granted(limiter, tokens(6))  # the refusals took no tokens
    clock.advance(60)
    both = await granted(limiter, tokens(4), rpm(5, "requests"))
    assert await limiter.acquire([tokens(7)]) == pytest.approx(60)
    await limiter.release(both)
    await granted(limiter, tokens(10), rpm(5, "requests"))


@pytest.mark.parametrize(
    "needs",
    [
        [Need("k", 6, 5)],
        [Need("k", 0, 5)],
        [Need("k", -1, 5)],
        [Need("k", 1, 0)],
        [Need("k", 1, 5, 0)],
        [Need("k", 1, 5), Need("k", 1, 5)],
        [],
    ],
)
async def test_needs_that_can_never_be_granted_are_an_error(
    limiters: Limiters, needs: list[Need]
) -> None:
    with pytest.raises(ValueError):
        await limiters().acquire(needs)


async def test_settling_puts_the_units_used_in_place_and_restamps_them_now(
    limiters: Limiters, clock: Clock
) -> None:
    limiter = limiters()
    reserved = await granted(limiter, rpm(8, "tpm", limit=10), rpm(1, "rpm"))
    clock.advance(30)
    await limiter.settle(reserved, {"tpm": 3})  # the requests stay as reserved
    await granted(limiter, rpm(7, "tpm", limit=10))
    # The settled 3 units count from the settling (t=30), the 7 from t=30 as well.
    assert await limiter.acquire([rpm(1, "tpm", limit=10)]) == pytest.approx(60)
    assert await limiter.acquire([rpm(5, "rpm")]) == pytest.approx(60)
    clock.advance(60)
    over = await granted(limiter, rpm(2, "tpm", limit=10))
    await limiter.settle(over, {"tpm": 25})  # used far more than the limit
    clock.advance(59)
    assert await limiter.acquire([rpm(1, "tpm", limit=10)]) == pytest.approx(1)
    clock.advance(1)
    await granted(limiter, rpm(10, "tpm", limit=10))


async def test_settling_to_none_used_frees_the_units_at_once(limiters: Limiters) -> None:
    limiter = limiters()
    grant = await granted(limiter, rpm(5))
    await limiter.settle(grant, {"k": 0, "not-reserved": 9})
    await granted(limiter, rpm(5))


async def test_a_released_grant_gives_every_unit_back(limiters: Limiters) -> None:
    limiter = limiters()
    grant = await granted(limiter, rpm(5, "a"), rpm(3, "b", limit=3))
    await limiter.release(grant)
    await granted(limiter, rpm(5, "a"), rpm(3, "b", limit=3))


async def test_an_expired_or_unknown_grant_is_ignored(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters()
    old = await granted(limiter, rpm(5))
    clock.advance(60)
    await limiter.settle(old, {"k": 5})  # it left the window: it does not come back
    await granted(limiter, rpm(5))
    stranger = Grant("not-a-grant", (rpm(5),))
    await limiter.settle(stranger, {"k": 1})
    await limiter.release(stranger)
    assert await limiter.acquire([rpm(1)]) == pytest.approx(60)


async def test_old_entries_leave_and_stay_gone(limiters: Limiters, clock: Clock) -> None:
    limiter = limiters()
    for _ in range(3):
        await granted(limiter, rpm(5, window_s=1))
        clock.advance(1)
    await granted(limiter, rpm(5, window_s=1))
    assert await limiter.acquire([rpm(1, window_s=1)]) == pytest.approx(1)


async def test_processes_racing_for_the_last_unit_get_it_once(limiters: Limiters) -> None:
    mine, theirs = limiters(), limiters()
    for key in ("a", "b", "c"):
        results = await asyncio.gather(
            mine.acquire([rpm(1, key, limit=1)]), theirs.acquire([rpm(1, key, limit=1)])
        )
        assert sorted(isinstance(r, Grant) for r in results) == [False, True]


async def test_concurrent_acquirers_never_overfill_any_window(
    limiters: Limiters, clock: Clock
) -> None:
    """Three processes, rounds of callers with random costs on two keys while the clock
    steps through three windows: no window of 10 s ever holds more than the limit, and
    the limits are used (not merely never exceeded by refusing everyone)."""
    processes = [limiters(), limiters(), limiters()]
    rng = random.Random(13)
    log: dict[str, list[tuple[float, int]]] = {"a": [], "b": []}

    async def caller(n: int) -> None:
        needs = [Need("a", rng.randint(1, 4), 12, 10.0)]
        if n % 2:
            needs.append(Need("b", 1, 5, 10.0))
        result = await processes[n % 3].acquire(needs)
        if isinstance(result, Grant):
            for need in needs:
                log[need.key].append((clock.now, need.cost))

    start = clock.now
    for _ in range(15):
        await asyncio.gather(*[caller(n) for n in range(12)])
        clock.advance(2)
    fullest = {}
    for key, limit in (("a", 12), ("b", 5)):
        windows = [
            sum(u for stamp, u in log[key] if begin <= stamp < begin + 10)
            for begin in {stamp for stamp, _ in log[key]}
        ]
        assert max(windows) <= limit, f"{key}: {max(windows)} units in one window"
        fullest[key] = max(windows)
    # a's costs are 1 to 4: a window refuses only with fewer than 4 units left.
    assert fullest["a"] >= 12 - 3
    assert fullest["b"] >= 1
    assert clock.now - start == pytest.approx(30)


async def test_after_the_wait_it_was_told_a_caller_is_granted(
    limiters: Limiters, clock: Clock
) -> None:
    """On the real clock: the wait a refused caller is told is enough, and not far more."""
    clock.running = True
    limiter = limiters()
    await granted(limiter, rpm(2, limit=2, window_s=0.2))
    wait = await limiter.acquire([rpm(1, limit=2, window_s=0.2)])
    assert isinstance(wait, float)
    assert 0.1 < wait <= 0.2
    await asyncio.sleep(wait)
    await granted(limiter, rpm(1, limit=2, window_s=0.2))
