"""Scheduled jobs end to end: APScheduler's scheduler, the real runtime and model SDKs
(against the fake model server), storage on SQLite and PostgreSQL, and locks in the
database and in Redis."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import Harness, RecordingAdapter, make_team
from redis.asyncio import Redis
from sqlalchemy import update

from corral.agents.conversation import Place
from corral.agents.conversation import Reply as Said
from corral.agents.cron import cron_trigger, first_after
from corral.agents.runtime import Turn
from corral.bot.adapter import OnPart
from corral.bot.commands.registry import CommandContext
from corral.bot.commands.table import dispatch
from corral.bot.gateway import Workers
from corral.bot.scheduling.reconcile import reconcile
from corral.bot.scheduling.runner import FireError, FireRunner
from corral.bot.scheduling.scheduler import Scheduler
from corral.storage.locks import DatabaseLock, Lock, RedisLock
from corral.storage.queue import InProcessQueue
from corral.storage.schedules import FireRecord, ScheduleRecord, ScheduleSpec
from corral.storage.store import Storage
from corral.storage.tables import ScheduleRow, utcnow

REDIS_URL = "redis://127.0.0.1:6379/0"
TICK = ScheduleSpec("roo", "#ops", "Check the queue.", every="1s")


def scheduler_for(
    h: Harness,
    adapter: RecordingAdapter | None = None,
    *,
    lock: Lock | None = None,
    grace: timedelta = timedelta(hours=1),
) -> Scheduler:
    """A scheduler whose fires workers post through ``adapter`` (through the harness's
    own workers and adapter by default)."""
    runner = FireRunner(
        h.team,
        h.storage,
        h.workers if adapter is None else h.workers_for(adapter),
        lock or DatabaseLock(h.storage.db),
        grace=grace,
    )
    return Scheduler(runner, h.storage, h.team, sync_every=0.2)


async def until(check: Callable[[], Awaitable[bool]], within: float = 15.0) -> None:
    """Wait until ``check`` holds."""
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def warm_up(h: Harness) -> None:
    """Make the first model call before a test's schedule fires: creating the SDK clients
    takes long enough to make the first fire late."""
    turn = Turn(Place("warm-up", "#warm-up", "w"), "roo", "warm-up", "hello")
    await h.runtime.handle(turn, RecordingAdapter("warm-up").say)


@pytest.fixture
async def h(harness: Harness) -> Harness:
    """The test team, its model clients warmed up."""
    await warm_up(harness)
    return harness


def fires_of(storage: Storage, name: str) -> Callable[[], Awaitable[list[FireRecord]]]:
    """The schedule's finished records, oldest slot first."""

    async def read() -> list[FireRecord]:
        fires = await storage.schedules.fires(name, limit=200)
        return [f for f in reversed(fires) if f.outcome != "running"]

    return read


def at_least(read: Callable[[], Awaitable[list[FireRecord]]], n: int, outcome: str) -> Any:
    async def check() -> bool:
        return sum(f.outcome == outcome for f in await read()) >= n

    return check


async def test_an_every_second_job_fires_and_posts(h: Harness) -> None:
    await h.storage.schedules.add(TICK, source="chat", created_by="U1", name="tick")
    scheduler = scheduler_for(h)
    await scheduler.start()
    try:
        await until(at_least(fires_of(h.storage, "tick"), 2, "ran"))
    finally:
        await scheduler.stop()
    ran = [f for f in await fires_of(h.storage, "tick")() if f.outcome == "ran"]
    assert ran[1].slot - ran[0].slot == timedelta(seconds=1)
    place, reply = h.adapter.posts[0]
    # A new conversation in the schedule's channel, under the agent's persona.
    assert place == Place("test", "#ops", "", "#ops")
    assert reply.agent == "roo" and reply.kind == "answer"
    assert reply.text.startswith("[fast-a] Check the queue.")
    run = await h.storage.runs.get(ran[0].run_id)
    assert run is not None and run.outcome == "ok" and run.route_reason == "schedule tick"
    # Each fire keeps its conversation apart from the others'.
    assert run.thread == f"schedule-{ran[0].id}"


async def test_nothing_posts_nothing_but_is_recorded(h: Harness) -> None:
    h.server.script("fast-a", *[Reply("  NOTHING\n")] * 20)
    await h.storage.schedules.add(TICK, source="chat", created_by="U1", name="tick")
    scheduler = scheduler_for(h)
    await scheduler.start()
    try:
        await until(at_least(fires_of(h.storage, "tick"), 2, "nothing"))
    finally:
        await scheduler.stop()
    assert h.adapter.posts == []
    fire = next(f for f in await fires_of(h.storage, "tick")() if f.outcome == "nothing")
    run = await h.storage.runs.get(fire.run_id)
    assert run is not None and run.outcome == "ok" and run.tokens_in > 0


async def test_a_failing_fire_is_escalated_in_the_channel(h: Harness) -> None:
    h.server.fail_always("fast-a", 500)
    h.server.fail_always("fast-b", 503)
    await h.storage.schedules.add(TICK, source="chat", created_by="U1", name="tick")
    scheduler = scheduler_for(h)
    await scheduler.start()
    try:
        await until(at_least(fires_of(h.storage, "tick"), 1, "failed"))
    finally:
        await scheduler.stop()
    fire = next(f for f in await fires_of(h.storage, "tick")() if f.outcome == "failed")
    assert "every model failed" in fire.reason
    place, reply = next((p, r) for p, r in h.adapter.posts if r.run_id == fire.run_id)
    assert place.channel == "#ops" and reply.kind == "escalation"
    assert reply.text.startswith("Roo could not finish: every model failed")
    assert "<@U0ADMIN>" in reply.text
    escalations = await h.storage.approvals.pending()
    assert fire.run_id in {e.run_id for e in escalations}


@dataclass
class GatedAdapter(RecordingAdapter):
    """Posts only once the gate opens: a fire that takes as long as the test wants."""

    gate: asyncio.Event = field(default_factory=asyncio.Event)

    async def post(
        self, place: Place, reply: Said, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        await self.gate.wait()
        return await super().post(place, reply, start=start, on_part=on_part)


async def test_a_slot_while_the_previous_fire_runs_is_skipped_and_recorded(
    h: Harness,
) -> None:
    adapter = GatedAdapter()
    await h.storage.schedules.add(TICK, source="chat", created_by="U1", name="tick")
    scheduler = scheduler_for(h, adapter)
    await scheduler.start()
    try:
        await until(at_least(fires_of(h.storage, "tick"), 2, "skipped"))
        # A run by hand waits for its turn too, in any process.
        with pytest.raises(FireError, match="`tick` is running now"):
            await scheduler.run_now("tick", "U1")
        adapter.gate.set()
        await until(at_least(fires_of(h.storage, "tick"), 1, "ran"))
    finally:
        await scheduler.stop()
    fires = await fires_of(h.storage, "tick")()
    first_ran = next(f for f in fires if f.outcome == "ran")
    skipped = [f for f in fires if f.outcome == "skipped"]
    assert all(f.reason == "the previous fire was still running" for f in skipped)
    assert all(f.slot > first_ran.slot for f in skipped[:2])
    # Every slot has exactly one record.
    slots = [f.slot for f in fires]
    assert len(slots) == len(set(slots))


def command(h: Harness, scheduler: Scheduler | None, user: str = "U0ADMIN") -> CommandContext:
    return CommandContext(h.team, h.storage, user, "test", "#ops", scheduler=scheduler)


async def test_add_pause_resume_run_and_remove_from_chat(h: Harness) -> None:
    scheduler = scheduler_for(h)
    await scheduler.start()
    ctx = command(h, scheduler)
    read = fires_of(h.storage, "hello")
    try:
        # Stored as `/corral schedule add` stores it, every second (a command refuses
        # intervals under MIN_SCHEDULE_INTERVAL; tests/test_roles_schedules.py).
        spec = ScheduleSpec("roo", "#ops", "Say hello", every="1s")
        added = await h.storage.schedules.add(
            spec, source="chat", created_by="U0ADMIN", name="hello"
        )
        assert added is not None
        await scheduler.changed()
        await until(at_least(read, 1, "ran"))

        paused = await dispatch(ctx, "/corral schedule pause hello")
        assert paused.text.startswith("Paused `hello`")
        await asyncio.sleep(0.5)  # a fire that had started may still finish
        count = len(await read())
        await asyncio.sleep(2)
        assert len(await read()) == count
        listed = await dispatch(ctx, "/corral schedule list")
        assert "`hello` (chat, by U0ADMIN): @roo in #ops, every 1s (UTC) — next none: paused" in (
            listed.text
        )

        ran = await dispatch(ctx, "/corral schedule run hello")
        assert ran.text.startswith("Running `hello` now: @roo posts in #ops (fire f-")
        await until(lambda: _manual_done(h.storage, "hello"))
        assert len([f for f in await read() if f.kind == "slot"]) == count

        resumed = await dispatch(ctx, "/corral schedule resume hello")
        assert resumed.text.startswith("Resumed `hello` — next ")
        await until(lambda: _slots_after(h.storage, "hello", count))
        listed = await dispatch(ctx, "/corral schedule list")
        assert ": ran (run r-" in listed.text

        removed = await dispatch(ctx, "/corral schedule remove hello")
        assert removed.text == "Removed `hello`."
        await asyncio.sleep(0.2)
        assert await h.storage.schedules.fires("hello") == []
        await asyncio.sleep(1.5)
        assert await h.storage.schedules.fires("hello") == []
    finally:
        await scheduler.stop()
    assert (await dispatch(ctx, "/corral schedule list")).text.startswith("No schedules yet.")


async def _manual_done(storage: Storage, name: str) -> bool:
    fires = await storage.schedules.fires(name, limit=200)
    return any(f.kind == "manual" and f.outcome == "ran" for f in fires)


async def _slots_after(storage: Storage, name: str, count: int) -> bool:
    fires = await storage.schedules.fires(name, limit=200)
    return len([f for f in fires if f.kind == "slot" and f.outcome == "ran"]) > count


async def test_commands_explain_mistakes_and_permissions(h: Harness) -> None:
    ctx = command(h, None)
    cases = {
        '/corral schedule add "0 9 * * 1-8" @roo #ops Hi': "day-of-week `1-8` is not valid",
        "/corral schedule add every 30m @hawk #ops Hi": "There is no agent `@hawk`",
        "/corral schedule add every 30m @roo": "Say when, which agent, where and what",
        "/corral schedule add every 30m @roo #ops Hi --tz Mars/Olympus": "unknown time zone",
        "/corral schedule pause nope": "There is no schedule `nope`",
        "/corral schedule frobnicate": "Unknown `frobnicate`",
    }
    for line, message in cases.items():
        assert message in (await dispatch(ctx, line)).text, line
    # An apostrophe in an unquoted prompt is just an apostrophe.
    added = await dispatch(ctx, "/corral schedule add 0 9 * * 1-5 @roo #ops Draft this week's post")
    assert added.text.startswith("Added `roo-1`: @roo in #ops, `0 9 * * 1-5` (UTC)")
    record = await h.storage.schedules.get("roo-1")
    assert record is not None and record.spec.prompt == "Draft this week's post"
    other = command(h, None, user="U2")
    assert (await dispatch(other, "/corral schedule pause roo-1")).text == (
        "Sorry, only admins can pause schedules. Ask <@U0ADMIN>."
    )
    assert (await dispatch(other, "/corral schedule run roo-1")).text == (
        "Sorry, only admins can run `roo-1`, which someone else made. Ask <@U0ADMIN> to run "
        "`/corral schedule run roo-1`."
    )
    assert "No scheduler runs here" in (await dispatch(ctx, "/corral schedule run roo-1")).text
    await reconcile(make_team(schedules={"standup": _standup()}), h.storage)
    refused = await dispatch(ctx, "/corral schedule remove standup")
    assert refused.text.startswith("`standup` comes from team.yaml: delete it there")


def _standup(**changes: Any) -> dict[str, Any]:
    return {
        "cron": "0 9 * * 1-5",
        "timezone": "Europe/Berlin",
        "agent": "roo",
        "channel": "#general",
        "prompt": "Summarise what the team did yesterday.",
        **changes,
    }


async def test_team_yaml_changes_are_reconciled_on_start(
    storage: Storage, model_server: FakeModelServer
) -> None:
    chat = ScheduleSpec("beaver", "#dev", "Digest.", every="1d")
    await storage.schedules.add(chat, source="chat", created_by="U1", name="digest")
    first = make_team(
        schedules={
            "standup": _standup(),
            "sweep": {"every": "4h", "agent": "owl", "channel": "C0QA", "prompt": "Sweep."},
        }
    )
    second = make_team(
        schedules={
            "standup": _standup(prompt="What happened yesterday?"),
            "report": {"cron": "0 8 * * 1", "agent": "roo", "channel": "#ops", "prompt": "Rep."},
        }
    )
    for team in (first, second):
        h = Harness.build(storage, model_server, team)
        h.workers.start()
        scheduler = scheduler_for(h)
        await scheduler.start()
        await scheduler.stop()
        await h.close()
    records = {r.name: r for r in await storage.schedules.all()}
    assert set(records) == {"standup", "report", "digest"}
    assert records["standup"].spec.prompt == "What happened yesterday?"
    assert records["digest"].source == "chat" and records["digest"].spec == chat
    ctx = CommandContext(second, storage, "U0ADMIN", "test")
    listed = (await dispatch(ctx, "/corral schedule list")).text
    assert "`standup` (team.yaml): @roo in #general, `0 9 * * 1-5` (Europe/Berlin) — next " in (
        listed
    )
    assert "`digest` (chat, by U1)" in listed and "never fired" in listed


async def _backdate(storage: Storage, name: str, since: datetime) -> None:
    async with storage.db.session() as session, session.begin():
        await session.execute(
            update(ScheduleRow).where(ScheduleRow.name == name).values(active_since=since)
        )


async def test_after_downtime_a_fire_within_grace_runs_once_older_ones_are_missed(
    h: Harness,
) -> None:
    now = utcnow()
    if not 1 <= now.second <= 50:  # keep the minute from turning while the test looks
        await asyncio.sleep((61 - now.second) % 60)
        now = utcnow()
    store = h.storage.schedules
    # Every minute, "down" for the last five and a half: the latest runs, the minute
    # before it is coalesced into it, the four before that are beyond the 2-minute grace.
    await store.add(
        ScheduleSpec("roo", "#ops", "Minutely.", cron="* * * * *"),
        source="chat",
        created_by="U1",
        name="minutely",
    )
    down_since = now - timedelta(minutes=5, seconds=30)
    await _backdate(h.storage, "minutely", down_since)
    # Hourly at a minute half an hour away from now, "down" for three hours: all missed.
    minute = (now.minute + 30) % 60
    await store.add(
        ScheduleSpec("roo", "#ops", "Hourly.", cron=f"{minute} * * * *"),
        source="chat",
        created_by="U1",
        name="hourly",
    )
    await _backdate(h.storage, "hourly", now - timedelta(hours=3))
    scheduler = scheduler_for(h, grace=timedelta(minutes=2))
    await scheduler.start()
    try:
        await until(at_least(fires_of(h.storage, "minutely"), 1, "ran"))
        await until(at_least(fires_of(h.storage, "hourly"), 1, "missed"))
        await asyncio.sleep(0.3)
    finally:
        await scheduler.stop()

    minutely = await fires_of(h.storage, "minutely")()
    first = down_since.replace(second=0, microsecond=0) + timedelta(minutes=1)
    # The latest due minute ran: the one of `now`, or the next on a slow machine.
    latest = minutely[-1].slot
    assert latest - now.replace(second=0, microsecond=0) in (timedelta(0), timedelta(minutes=1))
    old = (latest - first) // timedelta(minutes=1) - 1
    assert [(f.outcome, f.slot, f.count) for f in minutely] == [
        ("missed", latest - timedelta(minutes=2), old),
        ("missed", latest - timedelta(minutes=1), 1),
        ("ran", latest, 1),
    ]
    older, coalesced, _ = minutely
    assert older.first_slot == first
    assert "only fires within the grace time (2m) are caught up" in older.reason
    assert coalesced.reason.startswith("coalesced into the later fire time")
    assert [r.text.split("\n")[0] for _, r in h.adapter.posts] == ["[fast-a] Minutely."]

    (hourly,) = await fires_of(h.storage, "hourly")()
    assert hourly.outcome == "missed" and hourly.count == 3
    trigger = cron_trigger(f"{minute} * * * *", UTC)
    assert hourly.first_slot == first_after(trigger, now - timedelta(hours=3))
    listed = (await dispatch(command(h, None), "/corral schedule list")).text
    assert "last 3 fires from " in listed and ": missed — not fired in time" in listed


@dataclass
class Process:
    """One of several Corral processes on one database: its own engine, runtime, lock."""

    storage: Storage
    harness: Harness
    adapter: RecordingAdapter
    scheduler: Scheduler
    redis: Redis | None = None

    async def close(self) -> None:
        await self.scheduler.stop()
        await self.harness.close()
        if self.redis is not None:
            await self.redis.aclose()
        await self.storage.close()


async def _process(
    database_url: str, server: FakeModelServer, platform: str, redis_prefix: str | None
) -> Process:
    storage = await Storage.open(database_url)
    h = Harness.build(storage, server)
    # Warm up the model clients: a first call that is slow would skip the next slot.
    await warm_up(h)
    adapter = RecordingAdapter(platform)
    redis = Redis.from_url(REDIS_URL) if redis_prefix else None
    lock: Lock = (
        RedisLock(redis, redis_prefix) if redis and redis_prefix else DatabaseLock(storage.db)
    )
    return Process(storage, h, adapter, scheduler_for(h, adapter, lock=lock), redis)


@pytest.fixture
async def processes(
    database_url: str, model_server: FakeModelServer
) -> AsyncIterator[list[Process]]:
    """Four processes on one database: two with database locks posting on platform
    ``db``, two with Redis locks posting on ``redis``; each pair fires its own schedule."""
    prefix = f"corral-test:{secrets.token_hex(4)}:"
    made = [
        await _process(
            database_url, model_server, platform, prefix if platform == "redis" else None
        )
        for platform in ("db", "db", "redis", "redis")
    ]
    yield made
    for process in made:
        await process.close()


async def test_two_schedulers_on_one_database_fire_each_slot_once(
    processes: list[Process],
) -> None:
    store = processes[0].storage.schedules
    for platform in ("db", "redis"):
        spec = ScheduleSpec("roo", f"#{platform}", "Tick.", every="1s", platform=platform)
        await store.add(spec, source="chat", created_by="U1", name=f"tick-{platform}")
    await asyncio.gather(*(p.scheduler.start() for p in processes))
    try:
        for platform in ("db", "redis"):
            await until(at_least(fires_of(processes[0].storage, f"tick-{platform}"), 20, "ran"), 40)
    finally:
        await asyncio.gather(*(p.scheduler.stop() for p in processes))
    for platform, pair in (("db", processes[:2]), ("redis", processes[2:])):
        fires = [f for f in await fires_of(processes[0].storage, f"tick-{platform}")()]
        # Stopping may interrupt the fire of the last slot; every other slot ran once.
        if fires[-1].outcome == "interrupted":
            fires = fires[:-1]
        assert len(fires) >= 20 and {f.outcome for f in fires} == {"ran"}, platform
        slots = [f.slot for f in fires]
        assert slots == [slots[0] + timedelta(seconds=n) for n in range(len(slots))], platform
        posts = [r.run_id for p in pair for _, r in p.adapter.posts]
        assert len(posts) == len(set(posts)) >= len(fires), platform
        assert {f.run_id for f in fires} <= set(posts), platform


async def test_the_schedule_tool_creates_one_after_approval(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team()
    roo = team.agents["roo"].model_copy(
        update={"tools": ["schedule", "escalate"], "approval": ["schedule"]}
    )
    team = team.model_copy(update={"agents": {**team.agents, "roo": roo}})
    h = Harness.build(storage, model_server, team)
    h.workers.start()
    standup = {
        "cron_or_every": "0 9 * * 1-5",
        "prompt": "Post the standup.",
        "channel": "#general",
        "timezone": "Europe/Berlin",
    }
    wrong = {"cron_or_every": "every 0s", "prompt": "x", "channel": "#ops"}
    try:
        model_server.script(
            "fast-a",
            CallTool("schedule", standup),
            Reply("Scheduled."),
            CallTool("schedule", wrong),
            Reply("That interval does not work."),
        )
        await h.say("@roo post a standup every weekday at nine")
        (ask,) = h.adapter.texts("approval")
        assert "wants to run `schedule`" in ask and "0 9 * * 1-5" in ask
        assert await storage.schedules.all() == []
        await h.decide(h.adapter.posts[-1][1].approval_id)
        assert h.adapter.texts()[-1] == "Scheduled."

        await h.say("@roo and one every zero seconds")
        await h.decide(h.adapter.posts[-1][1].approval_id)
    finally:
        await h.close()
    (record,) = await storage.schedules.all()
    assert record.name == "roo-1" and record.source == "chat"
    assert record.created_by == "agent:roo" and record.spec.platform == "test"
    assert record.spec.cron == "0 9 * * 1-5" and record.spec.timezone == "Europe/Berlin"
    refusal = model_server.requests_for("fast-a")[-1].json["messages"][-1]["content"][0]
    assert refusal["is_error"] is True and "`0s` is zero" in str(refusal["content"])


def test_a_schedule_posts_on_the_platform_its_channel_belongs_to(h: Harness) -> None:
    slack, discord = RecordingAdapter("slack"), RecordingAdapter("discord")

    def workers(*adapters: RecordingAdapter) -> Workers:
        served = {a.platform: a for a in adapters}
        return Workers(h.storage, InProcessQueue(), h.coordinator, h.runtime, served)

    runner = FireRunner(
        h.team,
        h.storage,
        workers(slack, discord),
        DatabaseLock(h.storage.db),
        grace=timedelta(hours=1),
    )
    now = utcnow()

    def record(channel: str, platform: str = "") -> ScheduleRecord:
        spec = ScheduleSpec("roo", channel, "Standup.", every="1d", platform=platform)
        return ScheduleRecord("s", "team.yaml", spec, False, "", now, now, now)

    assert runner.platform_of(record("#general")) == "slack"
    assert runner.platform_of(record("C0GENERAL1")) == "slack"
    assert runner.platform_of(record("1200000000000000010")) == "discord"
    assert runner.platform_of(record("1200000000000000010", platform="slack")) == "slack"
    alone = FireRunner(
        h.team,
        h.storage,
        workers(slack),
        DatabaseLock(h.storage.db),
        grace=timedelta(hours=1),
    )
    # A process without Discord leaves a Discord channel's schedule to one with it.
    assert alone.serves(record("#general"))
    assert not alone.serves(record("1200000000000000010"))
