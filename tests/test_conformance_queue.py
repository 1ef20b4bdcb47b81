"""One conformance suite for the work queue (storage/queue.py), run against every
implementation: in this process, and Redis Streams (storage/stream_queue.py). There is no
database queue: the inbox is the record, and a queue only rings the bell. Several handles
on one queue stand for several processes (the in-process queue has only itself).
What only the Redis queue does (platforms, outages) is in tests/test_stream_queue.py."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from backends import redis_clients

from corral.storage.queue import InProcessQueue, WorkQueue
from corral.storage.stream_queue import RedisStreamQueue

Queues = Callable[[], WorkQueue]
SLACK = ["slack"]


@pytest.fixture(params=["in-process", "redis"])
async def queues(request: pytest.FixtureRequest) -> AsyncIterator[Queues]:
    """A function giving another handle on one queue."""
    if request.param == "in-process":
        shared = InProcessQueue()
        yield lambda: shared
        return
    async with redis_clients() as (client, prefix):
        yield lambda: RedisStreamQueue(client(), prefix=prefix, block_ms=100)


async def test_ids_come_out_in_the_order_they_went_in(queues: Queues) -> None:
    queue = queues()
    for n in range(5):
        await queue.put(f"i{n}", "slack")
    assert [await queue.get(SLACK) for _ in range(5)] == [f"i{n}" for n in range(5)]


async def test_a_getter_waits_until_there_is_an_id(queues: Queues) -> None:
    writer, reader = queues(), queues()
    waiting = asyncio.create_task(reader.get(SLACK))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.3):
            await asyncio.shield(waiting)
    await writer.put("late", "slack")
    async with asyncio.timeout(5):
        assert await waiting == "late"


async def test_each_id_reaches_exactly_one_of_several_getters(queues: Queues) -> None:
    writer = queues()
    readers = [queues() for _ in range(3)]
    got: list[list[str]] = [[] for _ in readers]

    async def read(n: int) -> None:
        while True:
            got[n].append(await readers[n].get(SLACK))

    tasks = [asyncio.create_task(read(n)) for n in range(len(readers))]
    ids = [f"m{n}" for n in range(60)]
    for item in ids:
        await writer.put(item, "slack")
    async with asyncio.timeout(10):
        while sum(len(g) for g in got) < len(ids):
            await asyncio.sleep(0.01)
    # Every reader reads on for a while: nothing may arrive twice.
    stragglers = [asyncio.create_task(reader.get(SLACK)) for reader in readers]
    done, _ = await asyncio.wait(stragglers, timeout=0.3)
    for task in [*tasks, *stragglers]:
        task.cancel()
    assert not done
    everything = [item for g in got for item in g]
    assert sorted(everything) == sorted(ids)  # once each, none lost
