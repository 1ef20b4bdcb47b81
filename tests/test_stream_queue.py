"""What only the shared work queue on Redis does: ids are shared out among processes,
only readers of its platform get one, and a Redis outage is survived. What every work
queue does is in tests/test_conformance_queue.py."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest
from conftest import REDIS_URL
from redis.asyncio import Redis

from corral.storage.stream_queue import RedisStreamQueue


@pytest.fixture
async def client() -> AsyncIterator[Redis]:
    redis = Redis.from_url(REDIS_URL, socket_timeout=2.0)
    yield redis
    await redis.aclose()


async def test_each_id_reaches_exactly_one_of_several_processes(
    client: Redis, redis_prefix: str
) -> None:
    writer = RedisStreamQueue(client, prefix=redis_prefix)
    readers = [RedisStreamQueue(client, prefix=redis_prefix) for _ in range(3)]
    got: list[list[str]] = [[] for _ in readers]

    async def read(n: int) -> None:
        while True:
            got[n].append(await readers[n].get(["slack"]))

    tasks = [asyncio.create_task(read(n)) for n in range(len(readers))]
    ids = [f"m{n}" for n in range(60)]
    for item in ids:
        await writer.put(item, "slack")
    async with asyncio.timeout(10):
        while sum(len(g) for g in got) < len(ids):
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # nothing more may arrive
    for task in tasks:
        task.cancel()
    everything = [item for g in got for item in g]
    assert sorted(everything) == sorted(ids)  # once each, none lost
    assert sum(1 for g in got if g) >= 2  # shared out, not all to one reader


async def test_a_process_only_reads_its_platforms(client: Redis, redis_prefix: str) -> None:
    slack_only = RedisStreamQueue(client, prefix=redis_prefix, block_ms=50)
    discord_only = RedisStreamQueue(client, prefix=redis_prefix, block_ms=50)
    await slack_only.put("for-discord", "discord")
    await slack_only.put("for-slack", "slack")
    assert await slack_only.get(["slack"]) == "for-slack"
    assert await discord_only.get(["discord"]) == "for-discord"
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await slack_only.get(["slack"])


async def test_ids_queued_before_any_reader_existed_are_not_lost(
    client: Redis, redis_prefix: str
) -> None:
    await RedisStreamQueue(client, prefix=redis_prefix).put("early", "slack")
    assert await RedisStreamQueue(client, prefix=redis_prefix).get(["slack"]) == "early"


async def test_redis_away_is_logged_and_survived(
    redis_prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    queue = RedisStreamQueue(down, prefix=redis_prefix)
    with caplog.at_level(logging.WARNING, logger="corral.queue"):
        await queue.put("x", "slack")  # stored in the database; the sweep queues it
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.5):
                await queue.get(["slack"])
    messages = [r.getMessage() for r in caplog.records]
    assert any("queueing x in Redis failed" in m for m in messages)
    assert any("reading the Redis work queue failed" in m for m in messages)
    await down.aclose()
