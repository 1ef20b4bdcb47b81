"""``limits.concurrent_runs``: at most N runs of an agent at once, across processes; the
rest wait in order and none is dropped; waiting for a slot holds no worker, so another
agent's message is answered meanwhile."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from conftest import REDIS_URL
from fakes.model_server import FakeModelServer
from harness import TEAM, Harness, make_team
from redis.asyncio import Redis

from corral.bot.gateway import Workers
from corral.bot.limits import LimitStores
from corral.storage.cooldowns import InProcessCooldowns
from corral.storage.limiter import InProcessLimiter
from corral.storage.run_slots import DatabaseRunSlots, RedisRunSlots, RunSlots
from corral.storage.store import Storage

OWL_MODEL = "fast-a"


def capped_team() -> object:
    agents = dict(TEAM["agents"])
    agents["owl"] = {**agents["owl"], "model": "fast"}
    return make_team(agents=agents, limits={**TEAM["limits"], "concurrent_runs": {"owl": 1}})


async def _ask_owl(h: Harness, n: int) -> float:
    # Ids of its own: the harnesses of two processes would number their messages alike.
    await h.say(
        f"@owl check build {n}",
        channel="C0QA",
        channel_name="#qa",
        event_id=f"owl-e{n}",
        message_id=f"owl-m{n}",
    )
    return time.monotonic()


async def test_one_run_at_a_time_and_other_agents_go_on(
    storage: Storage, model_server: FakeModelServer
) -> None:
    model_server.latency = 0.2
    h = Harness.build(storage, model_server, team=capped_team())  # type: ignore[arg-type]
    h.workers.start()
    try:
        owl = [asyncio.create_task(_ask_owl(h, n)) for n in range(4)]
        await asyncio.sleep(0.05)
        beaver_done = asyncio.create_task(h.say("@beaver fix it"))
        await beaver_done
        beaver_at = time.monotonic()
        owl_at = await asyncio.gather(*owl)
    finally:
        await h.close()
    assert model_server.peak_in_flight(OWL_MODEL) == 1
    assert model_server.count(OWL_MODEL) == 4  # none dropped
    # Owl's four runs take 0.8 s one after another; Beaver was not held behind them,
    # though the harness has only two workers.
    assert beaver_at < max(owl_at)
    runs = await storage.runs.recent()
    assert sorted(r.outcome for r in runs if r.agent == "owl") == ["ok"] * 4


@pytest.fixture(params=["database", "redis"])
async def shared_slots(
    request: pytest.FixtureRequest, database_url: str, redis_prefix: str
) -> AsyncIterator[Callable[[Storage], RunSlots]]:
    """Run slots that several processes share: each call gives another process's handle."""
    if request.param == "database":
        yield lambda storage: DatabaseRunSlots(storage.db)
        return
    clients: list[Redis] = []

    def another(_: Storage) -> RunSlots:
        clients.append(Redis.from_url(REDIS_URL))
        return RedisRunSlots(clients[-1], prefix=f"{redis_prefix}slots:")

    yield another
    for client in clients:
        await client.aclose()


async def test_the_cap_holds_across_processes(
    database_url: str,
    model_server: FakeModelServer,
    shared_slots: Callable[[Storage], RunSlots],
) -> None:
    model_server.latency = 0.15
    opened = [await Storage.open(database_url) for _ in range(2)]
    processes = []
    for storage in opened:
        stores = LimitStores(
            InProcessLimiter(), InProcessCooldowns(), shared_slots(storage), lambda: False
        )
        h = Harness.build(storage, model_server, team=capped_team(), stores=stores)  # type: ignore[arg-type]
        h.workers.start()
        processes.append(h)
    try:
        await asyncio.gather(*(_ask_owl(processes[n % 2], n) for n in range(6)))
    finally:
        for h in processes:
            await h.close()
        for storage in opened:
            await storage.close()
    assert model_server.peak_in_flight(OWL_MODEL) == 1
    assert model_server.count(OWL_MODEL) == 6


async def test_one_worker_is_enough_while_runs_wait_for_slots(
    storage: Storage, model_server: FakeModelServer
) -> None:
    # With a single worker, runs waiting for owl's one slot give the worker back: the
    # others, and Beaver's message, still go through; nothing waits forever.
    model_server.latency = 0.05
    h = Harness.build(storage, model_server, team=capped_team())  # type: ignore[arg-type]
    h.workers = Workers(storage, h.gateway.queue, h.coordinator, h.runtime, h.workers.adapters, 1)
    h.workers.start()
    try:
        async with asyncio.timeout(20):
            await asyncio.gather(*(_ask_owl(h, n) for n in range(3)), h.say("@beaver fix it"))
    finally:
        await h.close()
    assert model_server.count(OWL_MODEL) == 3
    assert model_server.peak_in_flight(OWL_MODEL) == 1
