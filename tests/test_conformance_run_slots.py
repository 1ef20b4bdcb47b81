"""One conformance suite for run slots (storage/run_slots.py), run against every
implementation: in this process, the database on SQLite and PostgreSQL, and Redis.
Several handles on one backend stand for several processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from backends import DATABASES, Clock, databases, redis_clients

from corral.storage.run_slots import (
    DatabaseRunSlots,
    InProcessRunSlots,
    RedisRunSlots,
    RunSlots,
)

AllRunSlots = Callable[[], RunSlots]
TTL = 30.0


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in-process", *DATABASES, "redis"])
async def slots(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[AllRunSlots]:
    """A function giving another handle on one shared set of slots, on ``clock``."""
    backend = request.param
    if backend == "in-process":
        shared = InProcessRunSlots(clock)
        yield lambda: shared
    elif backend == "redis":
        async with redis_clients() as (client, prefix):
            yield lambda: RedisRunSlots(client(), prefix, clock)
    else:
        async with databases(backend, tmp_path) as database:
            yield lambda: DatabaseRunSlots(database(), clock)


async def test_at_most_limit_holders_at_once(slots: AllRunSlots) -> None:
    mine, theirs = slots(), slots()
    assert await mine.take("beaver", "run-1", 2, TTL)
    assert await theirs.take("beaver", "run-2", 2, TTL)
    assert not await theirs.take("beaver", "run-3", 2, TTL)
    assert await mine.held("beaver") == 2
    assert await theirs.take("owl", "run-3", 2, TTL)  # keys are separate
    await mine.give_back("beaver", "run-1")
    assert await theirs.held("beaver") == 1
    assert await theirs.take("beaver", "run-3", 2, TTL)


async def test_taking_again_is_granted_and_renews(slots: AllRunSlots, clock: Clock) -> None:
    mine, theirs = slots(), slots()
    assert await mine.take("lark", "run-1", 1, TTL)
    clock.advance(20)
    assert await mine.take("lark", "run-1", 1, TTL)  # full, but it is already ours
    clock.advance(20)
    assert not await theirs.take("lark", "run-2", 1, TTL)  # renewed: still held
    assert await theirs.held("lark") == 1


async def test_a_holder_that_stops_renewing_stops_counting(
    slots: AllRunSlots, clock: Clock
) -> None:
    mine, theirs = slots(), slots()
    assert await mine.take("k", "alive", 2, TTL)
    assert await mine.take("k", "dies", 2, TTL)
    clock.advance(20)
    await mine.renew("k", "alive", TTL)
    clock.advance(10)
    assert await theirs.held("k") == 1
    assert await theirs.take("k", "new", 2, TTL)
    assert not await theirs.take("k", "another", 2, TTL)
    await mine.renew("k", "dies", TTL)  # too late: it does not come back
    assert await theirs.held("k") == 2
    await mine.give_back("k", "dies")  # nor does giving back what is gone matter
    assert await theirs.held("k") == 2


async def test_renewing_or_giving_back_a_slot_never_taken_changes_nothing(
    slots: AllRunSlots,
) -> None:
    slot = slots()
    await slot.renew("k", "nobody", TTL)
    await slot.give_back("k", "nobody")
    assert await slot.held("k") == 0
    assert await slot.take("k", "one", 1, TTL)


@pytest.mark.parametrize(("limit", "ttl"), [(0, TTL), (1, 0.0)])
async def test_a_slot_of_nothing_is_an_error(slots: AllRunSlots, limit: int, ttl: float) -> None:
    with pytest.raises(ValueError):
        await slots().take("k", "h", limit, ttl)


async def test_racing_processes_never_hold_more_than_the_limit(slots: AllRunSlots) -> None:
    processes = [slots(), slots(), slots()]
    taken = await asyncio.gather(
        *[processes[n % 3].take("busy", f"run-{n}", 3, TTL) for n in range(30)]
    )
    assert sum(taken) == 3
    assert await processes[0].held("busy") == 3


async def test_holders_coming_and_going_never_overlap_beyond_the_limit(
    slots: AllRunSlots,
) -> None:
    processes = [slots(), slots()]
    holding: set[str] = set()
    most = 0
    turns = [0] * 8

    async def run(n: int) -> None:
        nonlocal most
        slot, holder = processes[n % 2], f"run-{n}"
        while turns[n] < 3:
            if not await slot.take("agent", holder, 2, TTL):
                await asyncio.sleep(0)
                continue
            holding.add(holder)
            most = max(most, len(holding))
            await asyncio.sleep(0.002)  # let the others try meanwhile
            holding.discard(holder)
            turns[n] += 1
            await slot.give_back("agent", holder)

    async with asyncio.timeout(30):
        await asyncio.gather(*[run(n) for n in range(len(turns))])
    assert most <= 2
    assert turns == [3] * 8
