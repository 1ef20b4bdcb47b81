"""Slack over Socket Mode, end to end and under failure: bolt's real AsyncApp with
slack_sdk's real aiohttp SocketModeClient, connected to the fake Slack server's Socket Mode
WebSocket, its Web API client on the fake server's ``api_url``, models on the fake model
server. The link is dropped, wedged, refused and recycled by the fake server, and the
tests check that Corral notices, logs, reconnects and reports it on ``GET /healthz``.

Timings are shrunk (pings every 0.2 s, backoff capped at 0.4 s) so that each test takes
about a second.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

# The model SDKs take seconds to import, and the providers import them on first use,
# inside the event loop. A stall that long reads as a dead link with pings every 0.2 s,
# so they are imported here, at collection.
import anthropic  # noqa: F401
import openai  # noqa: F401
import pytest
from aiohttp import web
from fakes import slack_events as se
from fakes.model_server import CallTool, FakeModelServer, Reply
from fakes.slack_server import FakeSlackServer
from harness import TEAM, fake_models, free_port, make_core, make_team
from pydantic import ValidationError
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from corral.agents.llm.retry import RetryPolicy
from corral.bot.gateway import Workers
from corral.bot.http_server import build_http_app
from corral.bot.settings import Settings
from corral.bot.slack.app import slack_parts
from corral.bot.slack.socket_mode import Backoff, SocketModeConnection
from corral.storage.store import Storage

GENERAL, DEV = "C0GENERAL1", "C0DEV00001"
ADMIN = "U0ADMIN"
LOGGER = "corral.slack.socket_mode"

#: Fast enough for tests: a wedge is noticed in well under a second.
FAST: dict[str, Any] = {
    "ping_interval": 0.2,
    "connect_timeout": 1.0,
    "backoff": Backoff(base=0.05, cap=0.4),
    "probe_interval": 5.0,
    "unhealthy_after": 30.0,
}


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """SQLite only: what is under test here is the link to Slack, not the database, and
    test_slack_e2e runs the same listeners on both databases."""
    return f"sqlite+aiosqlite:///{tmp_path / 'corral.db'}"


@dataclass
class SocketRig:
    slack: FakeSlackServer
    models: FakeModelServer
    storage: Storage
    app: AsyncApp
    workers: Workers
    http: aiohttp.ClientSession
    socket: SocketModeConnection | None = None
    base: str = ""
    runners: list[web.AppRunner] = field(default_factory=list)

    async def connect(self, **options: Any) -> SocketModeConnection:
        """Start Socket Mode (the FAST timings unless overridden) and the HTTP server that
        reports its health."""
        self.socket = SocketModeConnection(self.app, self.slack.app_token, **{**FAST, **options})
        runner = web.AppRunner(
            build_http_app(self.storage, health=self.socket.health), access_log=None
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        self.runners.append(runner)
        self.base = f"http://127.0.0.1:{runner.addresses[0][1]}"
        await self.socket.start()
        return self.socket

    async def until(self, condition: Callable[[], bool], within: float = 10) -> None:
        async with asyncio.timeout(within):
            while not condition():
                await asyncio.sleep(0.01)

    async def sessions(self, count: int) -> None:
        """Wait until Slack has greeted ``count`` sessions and the last one is up."""
        assert self.socket is not None
        socket = self.socket
        await self.until(lambda: socket.status.sessions >= count and socket.status.connected)

    async def healthz(self) -> tuple[int, dict[str, Any]]:
        async with self.http.get(f"{self.base}/healthz") as response:
            return response.status, await response.json()

    def posts(self, channel: str) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.slack.calls_to("chat.postMessage")
            if c.ok and c.params.get("channel") == channel
        ]

    async def mention(self, text: str, channel: str = GENERAL) -> tuple[dict[str, Any], str]:
        """A person mentions the app; Slack delivers it over Socket Mode. Returns the event
        and its envelope id."""
        stored = self.slack.add_message(channel, None, se.mention() + " " + text, user=se.USER_ID)
        event = se.app_mention(text, channel=channel, ts=stored["ts"])
        return event, await self.slack.socket_send(se.event_callback(event))

    async def answered(self, event: dict[str, Any], channel: str = GENERAL) -> dict[str, Any]:
        """The answer posted in ``event``'s thread, once it is there."""
        await self.until(
            lambda: any(p.get("thread_ts") == event["ts"] for p in self.posts(channel))
        )
        return next(p for p in self.posts(channel) if p.get("thread_ts") == event["ts"])


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == level]


@pytest.fixture
async def rig(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[SocketRig]:
    agents = dict(TEAM["agents"])
    agents["beaver"] = {**agents["beaver"], "icon": ":beaver:", "channels": [DEV]}
    team = make_team(agents=agents, approvers=[ADMIN])
    async with FakeSlackServer() as slack:
        slack.add_channel(GENERAL, "general")
        slack.add_channel(DEV, "dev")
        slack.add_user(se.USER_ID, "alice", "Alice Liddell")
        slack.add_user(ADMIN, "admin", "Ada Admin")
        models = fake_models(
            team, model_server, RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)
        )
        core = make_core(
            storage,
            models,
            team,
            Settings(
                _env_file=None, slack_bot_token=slack.bot_token, slack_app_token=slack.app_token
            ),
        )
        parts = slack_parts(core.chat_services(), slack.bot_token, slack.api_url, post_interval=0)
        parts.adapter.react_after = 0  # the reaction before any answer, as a slow model's
        workers = core.workers({"slack": parts.adapter})
        # Socket Mode: no signing secret, as `corral run` does with SLACK_APP_TOKEN.
        app = parts.attach(core.chat_services(), workers, None)
        workers.start()
        async with aiohttp.ClientSession() as http:
            rig = SocketRig(slack, model_server, storage, app, workers, http)
            yield rig
            if rig.socket is not None:
                await rig.socket.close()
            for runner in rig.runners:
                await runner.cleanup()
        await workers.stop()
        await parts.close()
        await models.aclose()


# ---------------------------------------------------------------------------------------
# Delivery


async def test_an_event_over_socket_mode_is_acked_and_answered(rig: SocketRig) -> None:
    await rig.connect()
    await rig.sessions(1)
    sent = time.monotonic()
    event, envelope_id = await rig.mention("beaver the login page throws a 500")
    ack = await rig.slack.wait_socket_ack(envelope_id)
    # Acked at once, with nothing in it (events take no response payload).
    assert ack.payload is None and ack.at - sent < 1.0
    post = await rig.answered(event)
    assert post["username"] == "Beaver" and post["icon_emoji"] == ":beaver:"
    assert "the login page throws a 500" in post["text"]
    assert [c.params["name"] for c in rig.slack.calls_to("reactions.add")] == ["eyes"]


async def test_a_slash_command_over_socket_mode_is_answered_in_the_ack(rig: SocketRig) -> None:
    await rig.connect()
    await rig.sessions(1)
    envelope_id = await rig.slack.socket_send(
        se.slash_command("/corral", "status", channel_id=GENERAL)
    )
    ack = await rig.slack.wait_socket_ack(envelope_id)
    assert ack.payload is not None
    assert ack.payload["response_type"] == "ephemeral" and "Team status" in ack.payload["text"]


async def test_an_approval_click_over_socket_mode_resumes_the_run(rig: SocketRig) -> None:
    await rig.connect()
    await rig.sessions(1)
    rig.models.script(
        "smart-a",
        CallTool("post_message", {"channel": DEV, "text": "v2 is out"}),
        Reply("Announced in #dev."),
    )
    event, _ = await rig.mention("beaver announce v2")
    ask = await rig.answered(event)
    approval_id = ask["blocks"][1]["elements"][0]["value"]
    message = rig.slack.thread(GENERAL, event["ts"])[-1]
    envelope_id = await rig.slack.socket_send(
        se.block_actions(
            "corral_approve",
            approval_id,
            user_id=ADMIN,
            channel=GENERAL,
            message_ts=message["ts"],
            thread_ts=message.get("thread_ts"),
            message=message,
        )
    )
    await rig.slack.wait_socket_ack(envelope_id)
    await rig.until(lambda: [p["text"] for p in rig.posts(DEV)] == ["v2 is out"])
    await rig.until(lambda: rig.posts(GENERAL)[-1]["text"] == "Announced in #dev.")


# ---------------------------------------------------------------------------------------
# Failures of the link


async def test_a_dropped_connection_is_reestablished_and_events_flow_again(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await rig.connect()
    await rig.sessions(1)
    assert await rig.slack.socket_drop() == 1
    await rig.sessions(2)
    assert rig.slack.open_sockets == [2]
    event, envelope_id = await rig.mention("beaver are you still there?")
    assert (await rig.slack.wait_socket_ack(envelope_id)).connection == 2
    await rig.answered(event)
    assert "Slack Socket Mode: disconnected (the connection was lost)" in _messages(
        caplog, logging.WARNING
    )
    assert any(
        m.startswith("Slack Socket Mode: reconnected") for m in _messages(caplog, logging.INFO)
    )


async def test_a_connection_slack_closes_is_reestablished(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await rig.connect()
    await rig.sessions(1)
    await rig.slack.socket_drop(close_code=1011)
    await rig.sessions(2)
    event, _ = await rig.mention("beaver hello again")
    await rig.answered(event)
    assert "Slack Socket Mode: disconnected (Slack closed the connection (code 1011))" in (
        _messages(caplog, logging.WARNING)
    )


async def test_a_wedged_connection_is_detected_and_rebuilt(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    socket = await rig.connect()
    await rig.sessions(1)
    # The link stays open, but nothing comes back: no pong, no envelope, no ack.
    rig.slack.socket_wedge()
    _, lost = await rig.mention("beaver this one goes nowhere")
    await rig.sessions(2)
    with pytest.raises(TimeoutError):
        await rig.slack.wait_socket_ack(lost, within=0.05)
    event, envelope_id = await rig.mention("beaver and this one?")
    assert (await rig.slack.wait_socket_ack(envelope_id)).connection == 2
    await rig.answered(event)
    (warning, *_) = _messages(caplog, logging.WARNING)
    assert warning.startswith("Slack Socket Mode: disconnected (")
    assert "pong" in warning.lower()
    assert socket.health() == {"slack": True}


async def test_slack_asking_for_a_new_connection_is_followed_quietly(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    await rig.connect()
    await rig.sessions(1)
    await rig.slack.socket_disconnect("refresh_requested")
    await rig.sessions(2)
    await rig.until(lambda: rig.slack.open_sockets == [2])
    event, _ = await rig.mention("beaver after the refresh")
    await rig.answered(event)
    infos = _messages(caplog, logging.INFO)
    assert any("disconnect from Slack (refresh_requested" in m for m in infos)
    assert any(m.startswith("Slack Socket Mode: reconnected") for m in infos)
    # A planned refresh is not a problem: nothing at warning level.
    assert _messages(caplog, logging.WARNING) == []


async def test_a_dead_sdk_task_gets_the_client_rebuilt(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    socket = await rig.connect()
    await rig.sessions(1)
    first = socket.client
    assert first is not None and first.message_receiver is not None
    # The receive loop ends and the WebSocket stays open. slack_sdk would never notice,
    # and events would go unread for good.
    first.message_receiver.cancel()
    await rig.sessions(2)
    assert socket.client is not first
    event, envelope_id = await rig.mention("beaver still with us?")
    assert (await rig.slack.wait_socket_ack(envelope_id)).connection == 2
    await rig.answered(event)
    assert any("message receiver stopped" in m for m in _messages(caplog, logging.WARNING))
    await rig.until(lambda: rig.slack.open_sockets == [2])


# ---------------------------------------------------------------------------------------
# Health and backoff


async def test_healthz_turns_503_after_the_configured_time_down_and_200_once_back(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    socket = await rig.connect(unhealthy_after=0.5)
    await rig.sessions(1)
    assert await rig.healthz() == (200, {"status": "ok", "connections": {"slack": True}})

    rig.slack.refuse_socket_mode(1.5)
    await rig.slack.socket_drop()
    await rig.until(lambda: not socket.status.connected)
    down_at = time.monotonic()
    # A short outage is not a reason to restart.
    assert (await rig.healthz())[0] == 200
    async with asyncio.timeout(5):
        while (await rig.healthz())[0] != 503:
            await asyncio.sleep(0.02)
    assert time.monotonic() - down_at >= 0.45
    assert await rig.healthz() == (503, {"status": "unhealthy", "connections": {"slack": False}})

    # Slack comes back: so does the connection, and the health.
    async with asyncio.timeout(5):
        while (await rig.healthz())[0] != 200:
            await asyncio.sleep(0.02)
    assert socket.status.connected and rig.slack.open_sockets
    event, _ = await rig.mention("beaver back?")
    await rig.answered(event)
    # slack_sdk retried on its own for rebuild_after, then Corral rebuilt the client.
    warnings = _messages(caplog, logging.WARNING)
    assert any("slack_sdk did not restore the connection" in m for m in warnings)
    assert any("apps.connections.open failed: internal_error" in m for m in warnings)
    assert any("reconnected after" in m for m in _messages(caplog, logging.INFO))


async def test_start_does_not_wait_for_slack_and_retries_with_growing_waits(
    rig: SocketRig,
) -> None:
    rig.slack.refuse_socket_mode(1.2)
    started = time.monotonic()
    socket = await rig.connect(
        backoff=Backoff(base=0.05, cap=0.4), rng=random.Random(7), unhealthy_after=5
    )
    assert time.monotonic() - started < 0.5
    assert not socket.status.connected
    assert (await rig.healthz())[0] == 200
    await rig.sessions(1)
    assert time.monotonic() - started >= 1.2
    attempts = [c.at for c in rig.slack.calls_to("apps.connections.open")]
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    # Exponential with "equal jitter" never shrinks until the cap: 0.025-0.05 s, then
    # 0.05-0.1 s, then 0.1-0.2 s… and never more than the cap (plus the call itself).
    growing = [g for g in gaps if g < 0.2]
    assert growing == sorted(growing)
    assert all(g < 0.4 + 0.1 for g in gaps)
    # Nothing like a tight loop: about eight attempts in 1.2 s.
    assert 4 <= len(attempts) <= 12


async def test_a_failing_auth_test_turns_health_bad_and_good_again(
    rig: SocketRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    socket = await rig.connect(probe_interval=0.05, unhealthy_after=0.3)
    await rig.sessions(1)
    rig.slack.fail("auth.test", "token_revoked", times=15)
    await rig.until(lambda: socket.status.web_api_down_since is not None)
    await rig.until(lambda: socket.health() == {"slack": False})
    assert (await rig.healthz())[0] == 503
    # The failures run out, as if the token had been put right.
    await rig.until(lambda: socket.health() == {"slack": True})
    assert (await rig.healthz())[0] == 200
    (error,) = _messages(caplog, logging.ERROR)
    assert "SLACK_BOT_TOKEN was refused (token_revoked)" in error
    assert any("auth.test works again" in m for m in _messages(caplog, logging.INFO))


async def test_a_watcher_that_dies_is_reported_at_once(
    rig: SocketRig, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: SocketModeConnection) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(SocketModeConnection, "_probe", broken)
    socket = await rig.connect()
    await rig.sessions(1)
    # Connected, but nothing would check the Web API any more: not healthy, and said so.
    assert socket.health() == {"slack": False}
    assert (await rig.healthz())[0] == 503
    (error,) = _messages(caplog, logging.ERROR)
    assert "corral-slack-auth-probe ended unexpectedly (RuntimeError('a bug'))" in error


def test_backoff_grows_exponentially_is_capped_and_jittered() -> None:
    backoff = Backoff(base=1.0, cap=60.0)
    rng = random.Random(1)
    for failures, ceiling in [(1, 1), (2, 2), (3, 4), (4, 8), (7, 60), (50, 60), (10**6, 60)]:
        delays = [backoff.delay(failures, rng) for _ in range(200)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        # Jittered: processes that lost Slack together do not all come back at once.
        assert len({round(d, 6) for d in delays}) > 100


def test_unhealthy_after_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(_env_file=None).corral_unhealthy_after == 120
    monkeypatch.setenv("CORRAL_UNHEALTHY_AFTER", "45")
    assert Settings(_env_file=None).corral_unhealthy_after == 45
    monkeypatch.setenv("CORRAL_UNHEALTHY_AFTER", "0")
    with pytest.raises(ValidationError, match="corral_unhealthy_after"):
        Settings(_env_file=None)


# ---------------------------------------------------------------------------------------
# The fake's Socket Mode endpoints, as slack_sdk sees them


async def test_the_fake_hands_out_single_use_urls_for_the_app_token_only() -> None:
    async with FakeSlackServer() as slack:
        bot = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        with pytest.raises(SlackApiError) as refused:
            await bot.apps_connections_open(app_token=slack.bot_token)
        assert refused.value.response["error"] == "not_allowed_token_type"
        url = (await bot.apps_connections_open(app_token=slack.app_token))["url"]
        async with aiohttp.ClientSession() as http:
            async with http.ws_connect(url) as ws:
                hello = await ws.receive_json()
                assert hello["type"] == "hello" and hello["num_connections"] == 1
            with pytest.raises(aiohttp.WSServerHandshakeError) as used:
                await http.ws_connect(url)
            assert used.value.status == 401
        assert [c.status for c in slack.calls_to("socket_mode")] == [101, 401]


# ---------------------------------------------------------------------------------------
# `corral run`


async def test_corral_run_serves_socket_mode_and_reports_it_on_healthz(
    storage: Storage, model_server: FakeModelServer
) -> None:
    from corral.bot.service import serve

    team = make_team()
    async with FakeSlackServer() as slack, aiohttp.ClientSession() as http:
        slack.add_channel(GENERAL, "general")
        slack.add_user(se.USER_ID, "alice", "Alice Liddell")
        port = free_port()
        models = fake_models(team, model_server, RetryPolicy())
        core = make_core(
            storage,
            models,
            team,
            Settings(
                _env_file=None,
                slack_bot_token=slack.bot_token,
                slack_app_token=slack.app_token,
                slack_api_url=slack.api_url,
                corral_http_port=port,
            ),
        )
        stop = asyncio.Event()
        service = asyncio.create_task(serve(core, stop))
        try:
            async with asyncio.timeout(10):
                while not slack.open_sockets:
                    await asyncio.sleep(0.01)
            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
                assert await response.json() == {"status": "ok", "connections": {"slack": True}}
            stored = slack.add_message(GENERAL, None, se.mention() + " owl hi", user=se.USER_ID)
            event = se.app_mention("owl hi", channel=GENERAL, ts=stored["ts"])
            await slack.wait_socket_ack(await slack.socket_send(se.event_callback(event)))
            async with asyncio.timeout(10):
                while not any(
                    c.params.get("thread_ts") == event["ts"]
                    for c in slack.calls_to("chat.postMessage")
                ):
                    await asyncio.sleep(0.01)
        finally:
            stop.set()
            await service
            await models.aclose()
        assert slack.open_sockets == []
