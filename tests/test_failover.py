"""Redis down never crashes Corral: rate limits, cooldowns and run slots go to the
database while Redis is unreachable and back to Redis when it answers again
(storage/failover.py). Real Redis clients: one pointed at a closed port, and one that
reaches Redis through a proxy this test closes and opens again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from backends import Clock, databases, redis_clients
from conftest import REDIS_URL
from redis.asyncio import Redis

from corral.storage.cooldowns import DatabaseCooldowns, RedisCooldowns
from corral.storage.db import Database
from corral.storage.failover import (
    BACK,
    DOWN,
    FailoverCooldowns,
    FailoverLimiter,
    FailoverRunSlots,
)
from corral.storage.limiter import DatabaseLimiter, Grant, Need, RedisLimiter
from corral.storage.run_slots import DatabaseRunSlots, RedisRunSlots

#: Nothing listens there.
CLOSED = "redis://127.0.0.1:1/0"


class Proxy:
    """A TCP proxy to the test Redis that can be closed (every connection cut, new ones
    refused) and opened again on the same port."""

    def __init__(self) -> None:
        self.port = 0
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: list[asyncio.StreamWriter] = []

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._pipe, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._writers:
            writer.close()
        self._writers.clear()
        await self._server.wait_closed()

    async def _pipe(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream = urlsplit(REDIS_URL)
        redis_r, redis_w = await asyncio.open_connection(upstream.hostname, upstream.port)
        self._writers += [client_w, redis_w]
        await asyncio.gather(_copy(client_r, redis_w), _copy(redis_r, client_w))


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    try:
        while data := await source.read(65536):
            sink.write(data)
            await sink.drain()
    except OSError:
        pass
    finally:
        sink.close()


@pytest.fixture
async def database(tmp_path: Path) -> AsyncIterator[Database]:
    async with databases("sqlite", tmp_path) as another:
        yield another()


@pytest.fixture
async def down() -> AsyncIterator[Redis]:
    client = Redis.from_url(CLOSED, socket_connect_timeout=0.5)
    yield client
    await client.aclose()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    opened = Proxy()
    await opened.open()
    yield opened
    await opened.close()


def warnings_and_infos(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "corral.limits"]


async def test_with_redis_unreachable_everything_is_kept_in_the_database(
    database: Database, down: Redis, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral.limits")
    limiter = FailoverLimiter(RedisLimiter(down), DatabaseLimiter(database))
    cooldowns = FailoverCooldowns(RedisCooldowns(down), DatabaseCooldowns(database))
    slots = FailoverRunSlots(RedisRunSlots(down), DatabaseRunSlots(database))

    grant = await limiter.acquire([Need("rpm", 2, 3)])
    assert isinstance(grant, Grant)
    assert limiter.degraded
    assert await limiter.acquire([Need("rpm", 2, 3)]) > 0  # the database holds the limit
    await limiter.settle(grant, {"rpm": 1})
    assert isinstance(await limiter.acquire([Need("rpm", 2, 3)]), Grant)

    await cooldowns.cool("openai/gpt-5-mini", 30)
    assert await cooldowns.until("openai/gpt-5-mini") > 0
    assert list(await cooldowns.cooling()) == ["openai/gpt-5-mini"]
    assert cooldowns.degraded

    assert await slots.take("beaver", "run-1", 1, 30)
    assert not await slots.take("beaver", "run-2", 1, 30)
    await slots.renew("beaver", "run-1", 30)
    await slots.give_back("beaver", "run-1")
    assert await slots.held("beaver") == 0
    assert slots.degraded

    # One warning for each (one per Redis client in the composition root), none per call.
    assert warnings_and_infos(caplog) == [DOWN, DOWN, DOWN]
    assert all(r.levelno == logging.WARNING for r in caplog.records)


async def test_redis_gone_and_back_is_used_again_without_a_restart(
    database: Database, proxy: Proxy, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="corral.limits")
    clock = Clock()
    client = Redis.from_url(proxy.url, socket_connect_timeout=0.5)
    async with redis_clients() as (direct, prefix):
        cooldowns = FailoverCooldowns(
            RedisCooldowns(client, prefix + "cooldowns"),
            DatabaseCooldowns(database),
            retry_s=5,
            clock=clock,
        )
        await cooldowns.cool("in-redis", 300)
        assert not cooldowns.degraded
        assert await RedisCooldowns(direct(), prefix + "cooldowns").until("in-redis") > 0

        await proxy.close()
        await cooldowns.cool("in-the-database", 300)
        assert cooldowns.degraded
        assert list(await cooldowns.cooling()) == ["in-the-database"]

        await proxy.open()
        reached = proxy.connections
        clock.advance(4.9)
        assert list(await cooldowns.cooling()) == ["in-the-database"]  # not tried yet
        assert proxy.connections == reached
        clock.advance(0.1)
        assert list(await cooldowns.cooling()) == ["in-redis"]
        assert not cooldowns.degraded
        assert proxy.connections > reached
    await client.aclose()
    assert warnings_and_infos(caplog) == [DOWN, BACK]
    assert [r.levelno for r in caplog.records] == [logging.WARNING, logging.INFO]


async def test_grants_settled_on_the_other_side_do_not_raise(
    database: Database, proxy: Proxy
) -> None:
    clock = Clock()
    client = Redis.from_url(proxy.url, socket_connect_timeout=0.5)
    async with redis_clients() as (_, prefix):
        limiter = FailoverLimiter(
            RedisLimiter(client, prefix), DatabaseLimiter(database), retry_s=5, clock=clock
        )
        slots = FailoverRunSlots(
            RedisRunSlots(client, prefix), DatabaseRunSlots(database), retry_s=5, clock=clock
        )
        in_redis = await limiter.acquire([Need("tpm", 5, 10)])
        assert isinstance(in_redis, Grant)
        assert await slots.take("k", "run-1", 1, 30)

        await proxy.close()
        await limiter.settle(in_redis, {"tpm": 7})
        await limiter.release(in_redis)
        await slots.renew("k", "run-1", 30)
        await slots.give_back("k", "run-1")
        in_the_database = await limiter.acquire([Need("tpm", 5, 10)])
        assert isinstance(in_the_database, Grant)
        assert limiter.degraded and slots.degraded

        await proxy.open()
        clock.advance(5)
        await limiter.settle(in_the_database, {"tpm": 1})
        await limiter.release(in_the_database)
        assert not limiter.degraded
        # Redis never heard of the settle and release sent to the database meanwhile:
        # it still counts its grant's 5 units, and the slot, until they expire.
        assert await limiter.acquire([Need("tpm", 6, 10)]) > 0
        assert await slots.held("k") == 1
        assert not slots.degraded
    await client.aclose()
