"""Several processes on one database and one Redis: the process that takes messages in
need not be the one that answers; each message is answered once, by a process that
serves its platform, in its thread's order; a worker that dies mid-message is covered."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import pytest
from conftest import REDIS_URL
from fakes.model_server import FakeModelServer
from harness import RecordingAdapter, fake_models, make_team
from redis.asyncio import Redis

from corral.agents.llm.registry import ModelRegistry
from corral.agents.llm.retry import RetryPolicy
from corral.agents.runtime import Runtime
from corral.agents.seams import Seams
from corral.bot.coordinator import Coordinator
from corral.bot.gateway import Gateway, Workers
from corral.bot.inbound import Inbound
from corral.storage.keys import ThreadKey
from corral.storage.store import Storage
from corral.storage.stream_queue import RedisStreamQueue


@dataclass
class Process:
    """One Corral process: its own queue client, gateway and (maybe) workers."""

    gateway: Gateway
    workers: Workers | None
    adapter: RecordingAdapter
    models: ModelRegistry
    redis: Redis


class Start(Protocol):
    async def __call__(
        self, platform: str, *, workers: bool = True, stale_after: float = 30.0
    ) -> Process: ...


@pytest.fixture
async def start(
    storage: Storage, model_server: FakeModelServer, redis_prefix: str
) -> AsyncIterator[Start]:
    """start(platform, workers=True) → a Process on the shared database and Redis."""
    team = make_team()
    started: list[Process] = []

    async def make(platform: str, *, workers: bool = True, stale_after: float = 30.0) -> Process:
        redis = Redis.from_url(REDIS_URL, socket_timeout=2.0)
        queue = RedisStreamQueue(redis, prefix=redis_prefix, block_ms=100)
        models = fake_models(team, model_server, RetryPolicy(attempts=1))
        adapter = RecordingAdapter(platform)
        pool = None
        if workers:
            pool = Workers(
                storage,
                queue,
                Coordinator(team, storage.threads, Seams.compose(models.client_for).model_call),
                Runtime(team, Seams.compose(models.client_for), storage),
                {platform: adapter},
                2,
                stale_after=stale_after,
                sweep_every=0.2,
            )
            pool.start()
        process = Process(Gateway(storage, queue), pool, adapter, models, redis)
        started.append(process)
        return process

    yield make
    for process in started:
        if process.workers is not None:
            await process.workers.stop()
        await process.models.aclose()
        await process.redis.aclose()


def _inbound(platform: str, n: int, thread: str = "") -> Inbound:
    return Inbound(
        platform=platform,
        event_id=f"e{n}",
        channel="C1",
        channel_name="#general",
        message_id=f"m{n}",
        thread=thread or f"m{n}",
        user="U1",
        text=f"@owl question {n}",
        to_app=True,
    )


async def _until_done(storage: Storage, count: int) -> None:
    async with asyncio.timeout(20):
        while (await storage.inbox.count_by_status()).get("done", 0) < count:
            await asyncio.sleep(0.05)


async def test_messages_taken_in_by_one_process_are_answered_by_the_others(
    start: Start, storage: Storage
) -> None:
    intake = await start("slack", workers=False)
    one = await start("slack")
    two = await start("slack")
    for n in range(12):
        await intake.gateway.submit(_inbound("slack", n))
    await _until_done(storage, 12)
    await asyncio.sleep(0.3)  # nothing is answered twice, later
    answered = one.adapter.texts("answer") + two.adapter.texts("answer")
    assert sorted(t.split("question ")[1].split("<")[0] for t in answered) == sorted(
        str(n) for n in range(12)
    )
    assert one.adapter.posts and two.adapter.posts  # both took a share


async def test_a_process_answers_only_the_platforms_it_serves(
    start: Start, storage: Storage
) -> None:
    slack = await start("slack")
    discord = await start("discord")
    await slack.gateway.submit(_inbound("discord", 1))
    await slack.gateway.submit(_inbound("slack", 2))
    await _until_done(storage, 2)
    assert [p.platform for p, _ in slack.adapter.posts] == ["slack"]
    assert [p.platform for p, _ in discord.adapter.posts] == ["discord"]


async def test_a_thread_is_answered_in_order_across_processes(
    start: Start, storage: Storage
) -> None:
    intake = await start("slack", workers=False)
    one = await start("slack")
    two = await start("slack")
    for n in range(6):
        await intake.gateway.submit(_inbound("slack", n, thread="m0"))
    await _until_done(storage, 6)
    posts = sorted(
        [*one.adapter.posts, *two.adapter.posts],
        key=lambda post: int(post[1].text.split("question ")[1].split("<")[0]),
    )
    transcript = await storage.transcript.history(ThreadKey("slack", "C1", "m0"))
    asked = [entry.text for entry in transcript if entry.user]
    assert asked == [f"@owl question {n}" for n in range(6)]
    assert len(posts) == 6


async def test_a_message_whose_worker_died_is_answered_by_another(
    start: Start, storage: Storage
) -> None:
    intake = await start("slack", workers=False)
    inbox_id = await intake.gateway.submit(_inbound("slack", 1))
    assert inbox_id is not None
    # A worker took it from Redis, claimed it, and died: no lease renewals ever come.
    await storage.inbox.claim(inbox_id)
    rescuer = await start("slack", stale_after=0.5)
    await _until_done(storage, 1)
    assert rescuer.adapter.texts("answer")


async def test_corral_worker_answers_on_slack_what_another_process_took_in(
    storage: Storage, model_server: FakeModelServer, redis_prefix: str
) -> None:
    from fakes import slack_events as se
    from fakes.slack_server import FakeSlackServer
    from harness import make_core

    from corral.bot.settings import Settings
    from corral.bot.worker import work

    team = make_team()
    async with FakeSlackServer() as slack:
        slack.add_channel("C0GENERAL1", "general")
        redis = Redis.from_url(REDIS_URL)
        settings = Settings(
            _env_file=None,
            redis_url=REDIS_URL,
            slack_bot_token=slack.bot_token,
            slack_api_url=slack.api_url,
        )
        core = make_core(
            storage, fake_models(team, model_server, RetryPolicy(attempts=1)), team, settings
        )
        core.queue = RedisStreamQueue(redis, prefix=redis_prefix, block_ms=100)
        stop = asyncio.Event()
        worker = asyncio.create_task(work(core, stop))
        try:
            intake = Gateway(storage, RedisStreamQueue(redis, prefix=redis_prefix))
            stored = slack.add_message("C0GENERAL1", None, "@owl ping", user=se.USER_ID)
            await intake.submit(
                Inbound(
                    platform="slack",
                    event_id="Ev1",
                    channel="C0GENERAL1",
                    message_id=stored["ts"],
                    thread=stored["ts"],
                    user=se.USER_ID,
                    text="@owl ping",
                )
            )
            await _until_done(storage, 1)
            (post,) = [c.params for c in slack.calls_to("chat.postMessage")]
            assert post["username"] == "Owl" and post["thread_ts"] == stored["ts"]
        finally:
            stop.set()
            await asyncio.wait_for(worker, 10)
            await core.models.aclose()
            await redis.aclose()
