"""Deduplication of deliveries across processes: in Redis when REDIS_URL is set, always in
the database. Two gateways stand for two processes (each with its own engine) on one
database, with and without a shared Redis, and with a Redis that is down."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis
from sqlalchemy import event

from corral.bot.gateway import Gateway
from corral.bot.inbound import Inbound
from corral.storage.dedupe import RedisDelivered
from corral.storage.queue import InProcessQueue
from corral.storage.store import Storage

REDIS_URL = "redis://127.0.0.1:6379/0"
#: Nothing listens there: a Redis that is down.
DOWN_URL = "redis://127.0.0.1:1/0"


@dataclass
class Process:
    """One process's gateway, its storage, and the SQL statements that storage ran."""

    gateway: Gateway
    storage: Storage
    statements: list[str] = field(default_factory=list)


@dataclass
class Pair:
    """Two processes on one database; ``redis`` says how they share Redis: ``up`` (one
    Redis), ``down`` (configured, unreachable) or ``none`` (no REDIS_URL)."""

    first: Process
    second: Process
    redis: str


@pytest.fixture(params=["up", "down", "none"])
async def pair(request: pytest.FixtureRequest, database_url: str) -> AsyncIterator[Pair]:
    prefix = f"corral-test:{secrets.token_hex(4)}:"
    clients: list[Redis] = []
    made: list[Process] = []
    for _ in range(2):
        storage = await Storage.open(database_url)
        delivered = None
        if request.param != "none":
            url = REDIS_URL if request.param == "up" else DOWN_URL
            client = Redis.from_url(url, socket_connect_timeout=1)
            clients.append(client)
            delivered = RedisDelivered(client, prefix)
        process = Process(Gateway(storage, InProcessQueue(), delivered), storage)
        event.listen(
            storage.db.engine.sync_engine, "before_cursor_execute", _recorder(process.statements)
        )
        made.append(process)
    if request.param == "up":
        try:
            await clients[0].ping()
        except OSError as exc:  # never skip: Redis is part of the test machine
            raise RuntimeError(f"Redis is required at {REDIS_URL}: {exc}") from exc
    yield Pair(made[0], made[1], request.param)
    for client in clients:
        await client.aclose()
    for process in made:
        await process.storage.close()


def _recorder(into: list[str]) -> Callable[..., None]:
    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        into.append(statement)

    return record


def mention(event_id: str = "Ev1", message_id: str = "1700000000.000100") -> Inbound:
    return Inbound(
        platform="slack",
        event_id=event_id,
        channel="C0DEV",
        message_id=message_id,
        thread=message_id,
        user="U0ALICE",
        text="<@U0BOT> beaver the build is red",
        to_app=True,
    )


async def test_a_redelivery_to_another_process_is_answered_once(pair: Pair) -> None:
    first, second = pair.first, pair.second
    inbox_id = await first.gateway.submit(mention())
    assert inbox_id is not None
    second.statements.clear()
    assert await second.gateway.submit(mention()) is None
    # The same message as another event (Slack: app_mention and message).
    assert await second.gateway.submit(mention(event_id="Ev2")) is None
    assert await first.gateway.submit(mention(event_id="Ev3")) is None
    if pair.redis == "up":
        # Refused in Redis: the second process did not touch the database.
        assert second.statements == []
    else:
        assert second.statements
    assert await first.storage.inbox.unfinished() == [inbox_id]


async def test_other_messages_get_through(pair: Pair) -> None:
    one = await pair.first.gateway.submit(mention("Ev1", "1700000000.000100"))
    two = await pair.second.gateway.submit(mention("Ev2", "1700000000.000200"))
    assert one is not None and two is not None and one != two


async def test_concurrent_deliveries_store_one(pair: Pair) -> None:
    deliveries = [
        gateway.submit(mention(event_id=f"Ev{k}"))
        for k in range(4)
        for gateway in (pair.first.gateway, pair.second.gateway)
    ]
    stored = [i for i in await asyncio.gather(*deliveries) if i is not None]
    assert len(stored) == 1
    assert await pair.first.storage.inbox.unfinished() == stored


async def test_a_delivery_that_was_not_stored_is_not_refused(
    pair: Pair, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process that fails before storing leaves no trace in Redis: the platform's
    retry, in another process, is stored and answered."""

    async def database_away(*_args: object) -> str | None:
        raise ConnectionError("database away")

    monkeypatch.setattr(pair.first.storage.inbox, "add", database_away)
    with pytest.raises(ConnectionError):
        await pair.first.gateway.submit(mention())
    assert await pair.second.gateway.submit(mention()) is not None


async def test_a_redis_outage_is_logged_once_per_process(
    pair: Pair, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="corral.dedupe"):
        for k in range(3):
            for n, process in enumerate((pair.first, pair.second)):
                assert await process.gateway.submit(mention(f"Ev{k}{n}", f"17.{k}{n}"))
        assert await pair.first.gateway.submit(mention("Ev00", "17.00")) is None
    warnings = [r for r in caplog.records if r.name == "corral.dedupe"]
    assert len(warnings) == (2 if pair.redis == "down" else 0)
