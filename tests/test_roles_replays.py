"""A replayed request does nothing twice: the record of requests taken (storage/dedupe.py
``Requests``) on SQLite, PostgreSQL and Redis, as two processes share it; and a signed
Slack command or click re-sent as is, through slack-bolt's real request handling, and a
Discord interaction delivered twice, through discord.py's."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import DATABASES, databases, redis_clients
from fakes import slack_events as se
from fakes.discord_server import FakeDiscordServer
from fakes.model_server import FakeModelServer
from fakes.slack_server import FakeSlackServer
from redis.asyncio import Redis
from test_discord_e2e import GENERAL as DISCORD_GENERAL
from test_discord_e2e import USER as DISCORD_USER
from test_discord_e2e import seed, start_rig, stop_rig
from test_slack_e2e import ADMIN, GENERAL, SlackRig, slack_rig

from corral.storage.dedupe import Requests
from corral.storage.locks import DatabaseLock, RedisLock
from corral.storage.store import Storage

SHORT = timedelta(milliseconds=150)


@pytest.fixture(params=[*DATABASES, "redis"])
async def two_processes(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[Requests, Requests]]:
    """The record of requests as two processes hold it, on one backend."""
    if request.param == "redis":
        async with redis_clients() as (client, prefix):
            yield Requests(RedisLock(client(), prefix)), Requests(RedisLock(client(), prefix))
    else:
        async with databases(request.param, tmp_path) as database:
            yield Requests(DatabaseLock(database())), Requests(DatabaseLock(database()))


async def test_a_request_is_taken_once_by_any_process(
    two_processes: tuple[Requests, Requests],
) -> None:
    mine, theirs = two_processes
    assert await mine.first("slack:v0=abc")
    assert not await theirs.first("slack:v0=abc")
    assert not await mine.first("slack:v0=abc")
    assert await theirs.first("slack:v0=def")
    # Any key, however long, fits.
    assert await mine.first("discord:" + "9" * 1000)


@pytest.mark.parametrize("backend", ["sqlite", "redis"])
async def test_a_request_is_forgotten_after_the_window(backend: str, tmp_path: Path) -> None:
    async with databases("sqlite", tmp_path) as database, redis_clients() as (client, prefix):
        lock = DatabaseLock(database()) if backend == "sqlite" else RedisLock(client(), prefix)
        requests = Requests(lock, window=SHORT)
        assert await requests.first("k")
        assert not await requests.first("k")
        await asyncio.sleep(SHORT.total_seconds() + 0.05)
        assert await requests.first("k")


async def test_with_redis_down_the_database_decides(storage: Storage) -> None:
    down = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        requests = Requests(RedisLock(down), DatabaseLock(storage.db))
        assert await requests.first("slack:v0=abc")
        assert not await requests.first("slack:v0=abc")
    finally:
        await down.aclose()


# --- Slack, through bolt -------------------------------------------------------------


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer() as slack:
        slack.add_channel(GENERAL, "general")
        slack.add_user(se.USER_ID, "alice", "Alice Liddell")
        slack.add_user(ADMIN, "admin", "Ada Admin")
        yield slack


@pytest.fixture
async def rig(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> AsyncIterator[SlackRig]:
    async with slack_rig(storage, model_server, fake_slack) as rig:
        yield rig


ADD = '"0 9 * * 1-5" @roo #ops Post the standup'


async def test_a_slash_command_replayed_three_times_runs_once(rig: SlackRig) -> None:
    signed = se.slash_command("/corral", f"schedule add {ADD}", user_id=ADMIN, channel_id=GENERAL)
    first = await rig.send(signed)
    assert first.status == 200
    assert (await first.json())["text"].startswith("Added `roo-1`: @roo in #ops")
    for _ in range(3):
        again = await rig.send(signed)
        assert again.status == 200 and await again.read() == b""
    (schedule,) = await rig.storage.schedules.all()
    assert schedule.name == "roo-1"
    actions = [e.action for e in await rig.storage.audit.recent()]
    assert actions == ["schedule.add"]
    # The same command typed again is a new request (its own timestamp and trigger), and runs.
    typed_again = se.slash_command(
        "/corral", f"schedule add {ADD}", user_id=ADMIN, channel_id=GENERAL
    )
    assert (await (await rig.send(typed_again)).json())["text"].startswith("Added `roo-2`")


async def test_a_replay_with_a_forged_signature_is_refused_before_the_record(
    rig: SlackRig,
) -> None:
    signed = se.slash_command("/corral", "status", channel_id=GENERAL)
    forged = signed.with_headers(**{"X-Slack-Signature": "v0=" + "0" * 64})
    assert (await rig.send(forged)).status == 401
    # The real request was not marked by the forged one.
    assert "Team status" in (await (await rig.send(signed)).json())["text"]


async def test_a_replayed_click_decides_nothing_twice(rig: SlackRig) -> None:
    click = se.block_actions(
        "corral_approve", "a-nonexistent", channel=GENERAL, message_ts=se.new_ts()
    )
    assert (await rig.send(click)).status == 200
    await rig.until(lambda: len(rig.slack.calls_to("chat.postEphemeral")) == 1)
    again = await rig.send(click)
    assert again.status == 200 and await again.read() == b""
    # A different click after it is answered; the repeat before it was not.
    second = se.block_actions(
        "corral_approve", "a-nonexistent", channel=GENERAL, message_ts=se.new_ts()
    )
    await rig.send(second)
    await rig.until(lambda: len(rig.slack.calls_to("chat.postEphemeral")) >= 2)
    await asyncio.sleep(0.1)
    assert len(rig.slack.calls_to("chat.postEphemeral")) == 2


# --- Discord, through discord.py -----------------------------------------------------


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer() as server:
        seed(server)
        with server.patch_discord():
            yield server


async def test_a_discord_interaction_delivered_twice_runs_once(
    storage: Storage, model_server: FakeModelServer, fake_discord: FakeDiscordServer
) -> None:
    rig = await start_rig(storage, model_server, fake_discord)
    callbacks = "/interactions/{interaction_id}/{interaction_token}/callback"
    try:
        # Refused (the person is no admin) and audited: each run leaves a row.
        payload: dict[str, Any] = fake_discord.interaction_create_command(
            "corral",
            "schedule",
            {"args": "add every 1h @roo #ops Hi"},
            user_id=DISCORD_USER,
            channel_id=DISCORD_GENERAL,
        )
        await fake_discord.dispatch("INTERACTION_CREATE", payload)
        await rig.until(lambda: len(fake_discord.interaction_responses) == 1)
        await fake_discord.dispatch("INTERACTION_CREATE", payload)
        # A different interaction after it is answered; the repeat before it was not.
        status = fake_discord.interaction_create_command(
            "corral", "status", user_id=DISCORD_USER, channel_id=DISCORD_GENERAL
        )
        await fake_discord.dispatch("INTERACTION_CREATE", status)
        await rig.until(lambda: len(fake_discord.interaction_responses) == 2)
        await asyncio.sleep(0.1)
        first, second = fake_discord.interaction_responses
        assert first.data["content"].startswith("Sorry, only admins can add schedules.")
        assert "Team status" in second.data["content"]
        assert len(fake_discord.calls_to("POST", callbacks)) == 2
        refusals = [e for e in await storage.audit.recent() if e.action == "permission.refused"]
        assert [(e.actor, e.where.platform) for e in refusals] == [(DISCORD_USER, "discord")]
    finally:
        await stop_rig(rig)
