"""Decisions, fires and posts survive a process killed with SIGKILL: the work is taken
up again (by the same process restarted, or by another one) and its result is posted
exactly once. The killed processes are real ones (``tests/durable_worker.py``), on SQLite
and PostgreSQL, posting to the fake Slack server; model calls go to the fake model server,
which holds a call for as long as the test needs to kill the process that made it."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import REDIS_URL
from fakes.model_server import CallTool, Delay, FakeModelServer, Hang, Reply
from fakes.slack_server import FakeSlackServer
from harness import fake_models, make_team
from redis.asyncio import Redis
from slack_sdk.web.async_client import AsyncWebClient

from corral.agents.llm.registry import ModelRegistry
from corral.agents.llm.retry import RetryPolicy
from corral.agents.runtime import Runtime
from corral.agents.seams import Seams
from corral.bot.coordinator import Coordinator
from corral.bot.gateway import Gateway, Workers
from corral.bot.inbound import Inbound
from corral.bot.scheduling.runner import FireRunner
from corral.bot.slack.adapter import SlackAdapter
from corral.bot.slack.directory import Directory
from corral.storage.approvals import ApprovalRecord
from corral.storage.inbox import work_id
from corral.storage.locks import DatabaseLock
from corral.storage.queue import InProcessQueue, WorkQueue
from corral.storage.schedules import ScheduleSpec
from corral.storage.store import Storage
from corral.storage.stream_queue import RedisStreamQueue

WORKER = Path(__file__).parent / "durable_worker.py"
#: Short, so that a dead process's work is taken up again quickly.
STALE_AFTER = 3.0


async def until(check: Callable[[], Awaitable[bool]], within: float = 30.0) -> None:
    """Wait until ``check`` holds."""
    async with asyncio.timeout(within):
        while not await check():
            await asyncio.sleep(0.05)


@dataclass
class World:
    """The test's side of a deployment: it takes messages and decisions in (as the Slack
    listeners do) and starts and kills worker processes."""

    storage: Storage
    slack: FakeSlackServer
    models: FakeModelServer
    registry: ModelRegistry
    gateway: Gateway
    #: Not started: the surfaces' entry points (decide) only; the workers run elsewhere.
    workers: Workers
    config: dict[str, Any]
    processes: list[asyncio.subprocess.Process] = field(default_factory=list)
    _n: int = 0

    async def spawn(self) -> asyncio.subprocess.Process:
        """Start a worker process and wait until its workers run."""
        env = {**os.environ, "CORRAL_TEST_WORKER": json.dumps(self.config)}
        process = await asyncio.create_subprocess_exec(
            sys.executable, str(WORKER), env=env, stdout=asyncio.subprocess.PIPE
        )
        self.processes.append(process)
        assert process.stdout is not None
        async with asyncio.timeout(30):
            assert (await process.stdout.readline()).strip() == b"ready"
        return process

    async def kill(self, process: asyncio.subprocess.Process) -> None:
        """kill -9."""
        process.kill()
        await process.wait()

    async def say(self, text: str, *, thread: str | None = None) -> tuple[str, str]:
        """A person's message in #general (in ``thread``), taken in; (its ts, inbox id)."""
        message = self.slack.add_message("C0GEN", None, text, user="U0HUMAN", thread_ts=thread)
        self._n += 1
        inbox_id = await self.gateway.submit(
            Inbound(
                platform="slack",
                event_id=f"Ev{self._n}",
                channel="C0GEN",
                channel_name="#general",
                message_id=message["ts"],
                thread=thread or message["ts"],
                user="U0HUMAN",
                text=text,
                to_app=True,
            )
        )
        assert inbox_id is not None
        return message["ts"], inbox_id

    async def approval(self) -> ApprovalRecord:
        """The one approval that waits, once it does."""
        await until(lambda: _some(self.storage.approvals.pending()))
        (record,) = await self.storage.approvals.pending()
        return record

    async def done(self, inbox_id: str) -> None:
        async def finished() -> bool:
            record = await self.storage.inbox.get(inbox_id)
            return record is not None and record.status == "done"

        await until(finished)

    def texts(self, channel: str = "C0GEN") -> list[str]:
        """What the app posted in ``channel``, in order."""
        return [m["text"] for m in self.slack.messages(channel) if m.get("bot_id")]


async def _some(pending: Awaitable[list[ApprovalRecord]]) -> bool:
    return bool(await pending)


async def _true(value: bool) -> bool:
    return value


@pytest.fixture
async def world_for(
    database_url: str, model_server: FakeModelServer, redis_prefix: str
) -> AsyncIterator[Callable[[bool], Awaitable[World]]]:
    """world_for(shared_queue) → a World; with ``shared_queue`` the processes share a
    Redis queue, else each finds its work in the database (the sweep)."""
    made: list[tuple[World, Redis | None]] = []
    async with FakeSlackServer() as slack:
        slack.add_channel("C0GEN", "general")
        slack.add_channel("C0REL", "releases")
        slack.add_user("U0HUMAN", "alice")

        async def make(shared_queue: bool) -> World:
            storage = await Storage.open(database_url)
            team = make_team()
            registry = fake_models(team, model_server, RetryPolicy(attempts=1))
            redis = Redis.from_url(REDIS_URL) if shared_queue else None
            queue: WorkQueue = (
                RedisStreamQueue(redis, prefix=redis_prefix, block_ms=100)
                if redis is not None
                else InProcessQueue()
            )
            client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
            seams = Seams.compose(registry.client_for)
            workers = Workers(
                storage,
                queue,
                Coordinator(team, storage.threads, seams.model_call),
                Runtime(team, seams, storage),
                {
                    "slack": SlackAdapter(
                        client, team, Directory(client), requests=storage.approvals
                    )
                },
            )
            config = {
                "database_url": database_url,
                "models_url": model_server.anthropic_url,
                "slack_url": slack.api_url,
                "slack_token": slack.bot_token,
                "redis_url": REDIS_URL,
                "redis_prefix": redis_prefix if shared_queue else "",
                "stale_after": STALE_AFTER,
            }
            world = World(
                storage, slack, model_server, registry, Gateway(storage, queue), workers, config
            )
            made.append((world, redis))
            return world

        yield make
        for world, redis in made:
            for process in world.processes:
                if process.returncode is None:
                    await world.kill(process)
            await world.registry.aclose()
            await world.storage.close()
            if redis is not None:
                await redis.aclose()


@pytest.mark.parametrize("processes", ["one", "two"])
async def test_an_approved_post_killed_mid_run_is_posted_once(
    world_for: Callable[[bool], Awaitable[World]], processes: str
) -> None:
    world = await world_for(processes == "two")
    world.models.script(
        "smart-a",
        CallTool("post_message", {"channel": "C0REL", "text": "v2 is out"}),
        Hang(),
        Reply("Announced in #releases."),
    )
    first = await world.spawn()
    await world.say("@beaver announce v2")
    approval = await world.approval()
    assert await world.workers.decide(approval.id, True, "U0ADMIN") is not None
    # A second decision of the same approval is refused.
    assert await world.workers.decide(approval.id, False, "U0ADMIN") is None
    # The approved post is out, and the run waits on the model: now the process dies.
    await until(lambda: _true(world.models.hanging == 1))
    assert world.texts("C0REL") == ["v2 is out"]
    if processes == "two":
        await world.spawn()  # another process, up all along, takes the work over
    await world.kill(first)
    if processes == "one":
        await world.spawn()  # the same deployment, restarted
    await world.done(work_id("decision", approval.id))
    assert world.texts("C0REL") == ["v2 is out"]
    answers = world.texts()
    assert answers[-1] == "Announced in #releases."
    assert answers.count("Announced in #releases.") == 1
    run = await world.storage.runs.get(approval.run_id)
    assert run is not None and run.outcome == "ok"


async def test_a_split_answer_killed_after_its_first_part_posts_only_the_rest(
    world_for: Callable[[bool], Awaitable[World]],
) -> None:
    world = await world_for(False)
    parts = ["A" * 3000, "B" * 3000, "C" * 3000]
    long = "\n\n".join(parts)
    world.models.script("smart-a", Reply(long), Reply(long))
    world.slack.hang("chat.postMessage", lambda params: str(params.get("text")).startswith("B"))
    first = await world.spawn()
    _, inbox_id = await world.say("@owl write it all down")
    await until(lambda: _true(world.slack.hanging == 1))
    assert world.texts() == [parts[0]]
    await world.kill(first)
    world.slack.hang("chat.postMessage", lambda _: False)
    await world.spawn()
    await world.done(inbox_id)
    assert world.texts() == parts
    # What was said is in the thread's history once: recorded with the answer's last part.
    item = await world.storage.inbox.get(inbox_id)
    assert item is not None
    said = [e.text for e in await world.storage.transcript.history(item.key) if e.agent]
    assert said == [long]
    # The killed run was closed by the sweep; the run that finished the answer is apart.
    runs = [r for r in await world.storage.runs.recent() if r.inbox_id == inbox_id]
    assert sorted(r.outcome for r in runs) == ["interrupted", "ok"]


async def test_a_schedule_fire_killed_mid_run_is_posted_once(
    world_for: Callable[[bool], Awaitable[World]],
) -> None:
    world = await world_for(False)
    spec = ScheduleSpec("roo", "C0GEN", "Report.", every="1d", platform="slack")
    await world.storage.schedules.add(spec, source="chat", created_by="U1", name="report")
    world.models.script("fast-a", Hang(), Reply("Report: all good."))
    runner = FireRunner(
        world.workers.runtime.team,
        world.storage,
        world.workers,
        DatabaseLock(world.storage.db),
        grace=timedelta(hours=1),
    )
    first = await world.spawn()
    fire, run = await runner.begin_manual("report", "U0ADMIN")
    ended = asyncio.create_task(run)
    await until(lambda: _true(world.models.hanging == 1))
    await world.kill(first)
    await world.spawn()
    final = await asyncio.wait_for(ended, 30)
    assert final.id == fire.id and final.outcome == "ran"
    assert world.texts() == ["Report: all good."]


async def test_a_resume_and_a_new_message_of_its_thread_are_answered_in_order(
    world_for: Callable[[bool], Awaitable[World]],
) -> None:
    world = await world_for(True)
    world.models.script(
        "smart-a",
        CallTool("post_message", {"channel": "C0REL", "text": "v2 is out"}),
        # The resumed run is slow: a follow-up answered out of turn would come first.
        Delay(1.5, Reply("Announced.")),
    )
    await world.spawn()
    await world.spawn()
    thread, _ = await world.say("@beaver announce v2")
    approval = await world.approval()
    assert await world.workers.decide(approval.id, True, "U0ADMIN") is not None
    _, follow_up = await world.say("any news?", thread=thread)
    await world.done(follow_up)
    await world.done(work_id("decision", approval.id))
    answers = [m["text"] for m in world.slack.thread("C0GEN", thread) if m.get("bot_id")]
    # The approval request, the resumed run's answer, then the follow-up's.
    assert len(answers) == 3 and answers[1] == "Announced."
    assert answers[2].startswith("[smart-a]") and answers[2].endswith("any news?</message>")
