"""One conformance suite for per-model cooldowns (storage/cooldowns.py), run against
every implementation: in this process, the database on SQLite and PostgreSQL, and Redis.
Several handles on one backend stand for several processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from backends import DATABASES, Clock, databases, redis_clients

from corral.storage.cooldowns import (
    Cooldowns,
    DatabaseCooldowns,
    InProcessCooldowns,
    RedisCooldowns,
)

AllCooldowns = Callable[[], Cooldowns]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["in-process", *DATABASES, "redis"])
async def cooldowns(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[AllCooldowns]:
    """A function giving another handle on one shared set of cooldowns, on ``clock``."""
    backend = request.param
    if backend == "in-process":
        shared = InProcessCooldowns(clock)
        yield lambda: shared
    elif backend == "redis":
        async with redis_clients() as (client, prefix):
            yield lambda: RedisCooldowns(client(), prefix + "cooldowns", clock)
    else:
        async with databases(backend, tmp_path) as database:
            yield lambda: DatabaseCooldowns(database(), clock)


async def test_a_model_cools_for_its_time_in_every_process(
    cooldowns: AllCooldowns, clock: Clock
) -> None:
    mine, theirs = cooldowns(), cooldowns()
    start = clock.now
    assert await theirs.until("anthropic/claude-haiku-4-5") == 0.0
    await mine.cool("anthropic/claude-haiku-4-5", 30)
    assert await theirs.until("anthropic/claude-haiku-4-5") == start + 30  # exactly
    assert await theirs.until("anthropic/claude-opus-4-1") == 0.0  # the model, not the provider
    assert await theirs.cooling() == {"anthropic/claude-haiku-4-5": start + 30}
    clock.advance(30)
    assert await theirs.until("anthropic/claude-haiku-4-5") == 0.0
    assert await mine.cooling() == {}


async def test_a_cooldown_is_lengthened_never_shortened(
    cooldowns: AllCooldowns, clock: Clock
) -> None:
    mine, theirs = cooldowns(), cooldowns()
    start = clock.now
    await mine.cool("m", 60)
    await theirs.cool("m", 5)
    assert await mine.until("m") == start + 60
    clock.advance(10)
    await theirs.cool("m", 90)
    assert await mine.until("m") == start + 100
    await mine.cool("other", 1)
    assert await theirs.cooling() == {"m": start + 100, "other": start + 11}


async def test_a_cooled_model_can_cool_again_after_its_time(
    cooldowns: AllCooldowns, clock: Clock
) -> None:
    cooldown = cooldowns()
    await cooldown.cool("m", 10)
    clock.advance(20)
    assert await cooldown.cooling() == {}
    await cooldown.cool("m", 5)
    assert await cooldown.until("m") == clock.now + 5


async def test_racing_processes_keep_the_longest_cooldown(
    cooldowns: AllCooldowns, clock: Clock
) -> None:
    processes = [cooldowns(), cooldowns(), cooldowns()]
    await asyncio.gather(*[processes[n % 3].cool("m", float(n)) for n in range(1, 31)])
    assert await processes[0].until("m") == clock.now + 30
