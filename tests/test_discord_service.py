"""Discord in ``corral run`` and ``corral check``: the service connects, answers, survives
a dropped connection, reports its health; the check names what is missing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fakes.discord_server import BOT_PERMISSIONS, PERMISSIONS, FakeDiscordServer
from fakes.model_server import FakeModelServer
from harness import fake_models, free_port, make_core, make_team
from test_cli import ROOT, _corral

from corral.agents.llm.retry import RetryPolicy
from corral.bot.app import Core, StartupError
from corral.bot.discord.app import parse_guild_ids
from corral.bot.settings import Settings
from corral.storage.store import Storage

GUILD, GENERAL, USER = "1300000000000000001", "1300000000000000010", "1300000000000000100"


def _core(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer, **settings: Any
) -> Core:
    team = make_team()
    return make_core(
        storage,
        fake_models(team, model_server, RetryPolicy()),
        team,
        Settings(
            _env_file=None,
            discord_token=fake.token,
            discord_api_url=fake.api_url,
            corral_http_port=free_port(),
            **settings,
        ),
    )


def _seed(fake: FakeDiscordServer) -> None:
    fake.add_user(USER, "alice", "Alice")
    fake.add_guild(GUILD, "Agency")
    fake.add_channel(GUILD, GENERAL, "general")


async def test_corral_run_answers_on_discord_reconnects_and_reports_health(
    storage: Storage, model_server: FakeModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.bot.service import serve

    # Frozen once, when the service is ready: recorded here, since a real freeze would
    # keep this test process's objects for the rest of the run.
    frozen: list[bool] = []
    monkeypatch.setattr("corral.bot.service.freeze_startup_heap", lambda: frozen.append(True))

    async with FakeDiscordServer() as fake, aiohttp.ClientSession() as http:
        _seed(fake)
        core = _core(storage, model_server, fake, discord_guild_ids=GUILD)
        port = core.settings.corral_http_port
        stop = asyncio.Event()
        with fake.patch_discord():
            service = asyncio.create_task(serve(core, stop))
            try:
                await fake.wait_connected(within=10)
                health = f"http://127.0.0.1:{port}/healthz"

                async def healthy() -> bool:
                    async with http.get(health) as response:
                        body = await response.json()
                        return response.status == 200 and body["connections"] == {"discord": True}

                async with asyncio.timeout(10):
                    while not await healthy():
                        await asyncio.sleep(0.05)
                assert {c["name"] for c in fake.synced_commands[GUILD]} == {"corral", "memory"}

                await fake.post_message(GENERAL, USER, f"<@{fake.bot_user_id}> beaver hi")
                await fake.wait_until(lambda: len(fake.webhook_executions) == 1, within=10)
                assert frozen == [True]  # before the workers started
                # The connection drops: discord.py resumes, and messages flow again.
                await fake.disconnect()
                await fake.wait_until(lambda: fake.resumes, within=10)
                await fake.post_message(GENERAL, USER, "@owl still there?")
                await fake.wait_until(lambda: len(fake.webhook_executions) == 2, within=10)
                assert [e.username for e in fake.webhook_executions] == ["Beaver", "Owl"]
                async with asyncio.timeout(10):
                    while not await healthy():
                        await asyncio.sleep(0.05)
            finally:
                stop.set()
                await asyncio.wait_for(service, 10)
        await core.models.aclose()


async def test_a_refused_token_stops_the_start_with_what_to_do(
    storage: Storage, model_server: FakeModelServer
) -> None:
    from corral.bot.service import serve

    async with FakeDiscordServer() as fake:
        core = _core(storage, model_server, fake)
        core.settings.discord_token = "not-the-token"
        with fake.patch_discord(), pytest.raises(StartupError, match="DISCORD_TOKEN was refused"):
            await serve(core, asyncio.Event())
        await core.models.aclose()


async def test_without_the_message_content_intent_healthz_says_unhealthy(
    storage: Storage, model_server: FakeModelServer
) -> None:
    from corral.bot.service import serve

    async with FakeDiscordServer(application_flags=0) as fake, aiohttp.ClientSession() as http:
        _seed(fake)
        core = _core(storage, model_server, fake)
        port = core.settings.corral_http_port
        stop = asyncio.Event()
        with fake.patch_discord():
            service = asyncio.create_task(serve(core, stop))
            try:
                async with asyncio.timeout(10):
                    while True:
                        try:
                            async with http.get(f"http://127.0.0.1:{port}/healthz") as response:
                                if response.status == 503:
                                    body = await response.json()
                                    break
                        except aiohttp.ClientConnectionError:
                            pass
                        await asyncio.sleep(0.05)
                assert body["connections"] == {"discord": False}
            finally:
                stop.set()
                await asyncio.wait_for(service, 10)
        await core.models.aclose()


def test_guild_ids_must_be_numbers() -> None:
    assert parse_guild_ids(" 12, 34 ") == (12, 34)
    assert parse_guild_ids("") == ()
    with pytest.raises(StartupError, match="DISCORD_GUILD_IDS holds #general"):
        parse_guild_ids("12,#general")


def test_check_asks_discord_for_the_intent_and_permissions(tmp_path: Path) -> None:
    team = str(ROOT / "team.yaml")
    with FakeDiscordServer.in_thread() as fake:
        _seed(fake)
        env = {
            "DISCORD_TOKEN": fake.token,
            "DISCORD_API_URL": fake.api_url,
        }
        ok = _corral("check", "--team", team, cwd=tmp_path, **env)
        fake.set_permissions(
            GUILD, BOT_PERMISSIONS & ~PERMISSIONS["ADD_REACTIONS"] & ~PERMISSIONS["SEND_MESSAGES"]
        )
        fake.application_flags = 0
        lacking = _corral("check", "--team", team, cwd=tmp_path, **env)
        refused = _corral("check", "--team", team, cwd=tmp_path, **{**env, "DISCORD_TOKEN": "x"})
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert lacking.returncode == 1
    assert "the Message Content intent is off" in lacking.stdout
    assert "in Discord server 'Agency' the bot lacks: add_reactions, send_messages" in (
        lacking.stdout
    )
    assert refused.returncode == 1 and "Discord refused DISCORD_TOKEN" in refused.stdout
    assert "Traceback" not in ok.stderr + lacking.stderr + refused.stderr
