"""Permissions through the real Discord path: discord.py's client over the gateway and
REST of the fake Discord server (roles included), models at the fake model server.
What the person sees (the bot's own message addressed to them, never a persona's
webhook), and that nothing ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
from fakes.discord_server import FakeDiscordServer
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import TEAM, fake_models, make_core, make_team
from scenarios import inbox_settled

from corral.agents.llm.retry import RetryPolicy
from corral.agents.permissions import REFUSED
from corral.bot.app import Core
from corral.bot.discord.app import DiscordParts
from corral.bot.gateway import Workers
from corral.bot.inbound import Inbound
from corral.bot.settings import Settings
from corral.storage.audit import AuditEntry
from corral.storage.store import Storage

GUILD = "1300000000000000001"
GENERAL, SALES, DM = "1300000000000000010", "1300000000000000011", "1300000000000000012"
USER, ADMIN, SELLER = "1300000000000000100", "1300000000000000101", "1300000000000000102"
SALES_ROLE = "1300000000000000200"


@dataclass
class Rig:
    fake: FakeDiscordServer
    models: FakeModelServer
    storage: Storage
    core: Core
    parts: DiscordParts
    workers: Workers

    async def refusals(self) -> list[AuditEntry]:
        return [e for e in await self.storage.audit.recent() if e.action == REFUSED]


@pytest.fixture
async def rig(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Rig]:
    async with FakeDiscordServer() as fake:
        fake.add_user(USER, "alice", "Alice")
        fake.add_user(ADMIN, "ada", "Ada Admin")
        fake.add_user(SELLER, "sam", "Sam Seller")
        fake.add_guild(GUILD, "Agency")
        fake.add_channel(GUILD, GENERAL, "general")
        fake.add_channel(GUILD, SALES, "sales")
        fake.add_dm(DM, USER)
        fake.add_role(GUILD, SALES_ROLE, "sales-team", [SELLER])
        with fake.patch_discord():
            agents = dict(TEAM["agents"])
            agents["fox"] = {
                "display_name": "Fox",
                "role": "Sales; answers questions about prices and deals",
                "model": "fast",
                "tools": ["post_message"],
                "allowed_channels": ["#sales"],
                "allowed_users": [ADMIN, SALES_ROLE],
            }
            team = make_team(agents=agents, approvers=[ADMIN])
            models = fake_models(team, model_server, RetryPolicy(attempts=2, base_delay=0.001))
            settings = Settings(_env_file=None, discord_token=fake.token)
            core = make_core(storage, models, team, settings)
            parts = DiscordParts(
                core.chat_services(), guild_ids=(int(GUILD),), guild_ready_timeout=0.05
            )
            workers = core.workers({"discord": parts.adapter})
            parts.attach(workers)
            workers.start()
            await parts.start(fake.token)
            await asyncio.wait_for(parts.client.wait_until_ready(), 10)
            try:
                yield Rig(fake, model_server, storage, core, parts, workers)
            finally:
                await workers.stop()
                await parts.close()
                await models.aclose()


async def _handled(rig: Rig, channel: str, author: str, text: str) -> dict[str, Any]:
    message = await rig.fake.post_message(
        channel, author, f"<@{rig.fake.bot_user_id}> {text}", guild=channel != DM
    )
    # The gateway event reaches the client, is stored, and is handled.
    await rig.fake.wait_until(
        lambda: rig.fake.sent_messages or rig.fake.webhook_executions, within=10
    )
    await inbox_settled(rig.storage)
    return message


async def test_outside_its_channels_the_bot_itself_points_to_who_can_help(rig: Rig) -> None:
    message = await _handled(rig, GENERAL, ADMIN, "fox what does the pro plan cost?")
    assert rig.fake.webhook_executions == [] and rig.models.requests == []
    (told,) = rig.fake.sent_messages
    assert told["channel_id"] == GENERAL
    assert told["content"] == (
        f"<@{ADMIN}> Fox does not answer in #general. Roo can help here: write @roo and "
        "your question."
    )
    assert told["message_reference"]["message_id"] == message["id"]
    assert rig.fake.reactions(message["id"]) == []
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.agent, entry.subject) == (ADMIN, "fox", "answer fox")
    assert (entry.where.platform, entry.where.channel) == ("discord", GENERAL)


async def test_a_person_without_the_role_is_refused_and_nothing_runs(rig: Rig) -> None:
    await _handled(rig, SALES, USER, "fox give me a discount")
    assert rig.fake.webhook_executions == [] and rig.models.requests == []
    (told,) = rig.fake.sent_messages
    assert told["content"].startswith(f"<@{USER}> Sorry, Fox takes requests only from")
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.subject, entry.outcome) == (USER, "talk fox", "refused")


async def test_people_allowed_by_id_or_by_role_are_answered_under_the_persona(rig: Rig) -> None:
    await _handled(rig, SALES, ADMIN, "fox what does the pro plan cost?")
    await _handled(rig, SALES, SELLER, "fox and the team plan?")
    await rig.fake.wait_until(lambda: len(rig.fake.webhook_executions) == 2, within=10)
    assert [w.username for w in rig.fake.webhook_executions] == ["Fox", "Fox"]
    assert rig.fake.sent_messages == [] and await rig.refusals() == []


async def test_post_message_is_checked_by_the_channels_names_in_discord(rig: Rig) -> None:
    rig.models.script(
        "fast-a",
        CallTool("post_message", {"channel": "#general", "text": "50% off for everyone!"}),
        CallTool("post_message", {"channel": SALES, "text": "Pricing updated"}),
        Reply("Done."),
    )
    await _handled(rig, SALES, ADMIN, "fox announce the new prices")
    await rig.fake.wait_until(lambda: len(rig.fake.webhook_executions) == 2, within=10)
    texts = [w.content for w in rig.fake.webhook_executions]
    assert texts[0] == "Pricing updated" and "50% off" not in " ".join(texts)
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.subject) == ("agent:fox", "post_message #general")


async def test_notice_is_the_bots_own_message_addressed_to_the_person(rig: Rig) -> None:
    adapter = rig.parts.adapter
    inbound = Inbound(
        platform="discord",
        event_id="message-1",
        channel=GENERAL,
        message_id="1300000000000000900",
        thread="1300000000000000900",
        user=USER,
        text="hi",
    )
    rig.fake.add_message(GENERAL, USER, "hi", message_id=inbound.message_id)
    await adapter.notice(inbound, "Only a word from the app.")
    dm = Inbound("discord", "message-2", DM, "1300000000000000901", DM, USER, "hi")
    await adapter.notice(dm, "And in a DM.")
    first, second = rig.fake.sent_messages
    assert first["content"] == f"<@{USER}> Only a word from the app."
    assert first["message_reference"]["message_id"] == inbound.message_id
    assert (second["channel_id"], second["content"]) == (DM, f"<@{USER}> And in a DM.")
    assert rig.fake.webhook_executions == []
