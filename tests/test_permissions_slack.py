"""Permissions through the real Slack path: signed events into slack-bolt's request
handling, the Web API client against the fake Slack server (user groups included),
models at the fake model server. What the person sees, and that nothing ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from fakes import slack_events as se
from fakes.model_server import CallTool, FakeModelServer, Reply
from fakes.slack_server import FakeSlackServer
from harness import TEAM, fake_models, make_core, make_team
from scenarios import inbox_settled

from corral.agents.llm.retry import RetryPolicy
from corral.agents.permissions import REFUSED
from corral.bot.http_server import build_http_app
from corral.bot.settings import Settings
from corral.bot.slack.app import SlackParts, slack_parts
from corral.storage.audit import AuditEntry
from corral.storage.store import Storage

GENERAL, SALES = "C0GENERAL1", "C0SALES001"
ADMIN, SELLER = "U0ADMIN", "U0SELLER01"
GROUP = "S0SALESTEAM"


def team_agents() -> dict[str, Any]:
    agents = dict(TEAM["agents"])
    agents["fox"] = {
        "display_name": "Fox",
        "icon": ":fox_face:",
        "role": "Sales; answers questions about prices and deals",
        "model": "fast",
        "channels": ["#sales"],
        "tools": ["post_message"],
        "allowed_channels": ["#sales"],
        "allowed_users": [ADMIN, GROUP],
    }
    return agents


@dataclass
class Rig:
    slack: FakeSlackServer
    models: FakeModelServer
    storage: Storage
    parts: SlackParts
    base: str
    http: aiohttp.ClientSession

    async def send(self, request: se.SignedRequest) -> aiohttp.ClientResponse:
        response = await self.http.post(
            f"{self.base}/slack/events", data=request.body, headers=request.headers
        )
        await response.read()
        return response

    async def mention(self, text: str, channel: str, user: str) -> str:
        """``user`` mentions the app in ``channel``; the message's ts once it is handled."""
        stored = self.slack.add_message(channel, None, se.mention() + " " + text, user=user)
        event = se.app_mention(text, channel=channel, ts=stored["ts"], user=user)
        assert (await self.send(se.event_callback(event))).status == 200
        await inbox_settled(self.storage)
        return str(stored["ts"])

    def posts(self) -> list[dict[str, Any]]:
        return [c.params for c in self.slack.calls_to("chat.postMessage") if c.ok]

    async def refusals(self) -> list[AuditEntry]:
        return [e for e in await self.storage.audit.recent() if e.action == REFUSED]


@asynccontextmanager
async def slack_rig(
    storage: Storage, models: FakeModelServer, slack: FakeSlackServer
) -> AsyncIterator[Rig]:
    team = make_team(agents=team_agents(), approvers=[ADMIN], roles={"admins": [ADMIN]})
    registry = fake_models(team, models, RetryPolicy(attempts=2, base_delay=0.001))
    core = make_core(
        storage, registry, team, Settings(_env_file=None, slack_bot_token=slack.bot_token)
    )
    parts = slack_parts(core.chat_services(), slack.bot_token, slack.api_url, post_interval=0)
    # The reaction would come at once: a refusal must take it back.
    parts.adapter.react_after = 0.0
    workers = core.workers({"slack": parts.adapter})
    parts.attach(core.chat_services(), workers, se.SIGNING_SECRET)
    runner = web.AppRunner(build_http_app(storage, slack=parts.handle_http), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    workers.start()
    try:
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{runner.addresses[0][1]}"
            yield Rig(slack, models, storage, parts, base, http)
    finally:
        await workers.stop()
        await runner.cleanup()
        await parts.close()
        await registry.aclose()


@pytest.fixture
async def rig(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Rig]:
    async with FakeSlackServer() as slack:
        slack.add_channel(GENERAL, "general")
        slack.add_channel(SALES, "sales")
        slack.add_user(se.USER_ID, "alice", "Alice Liddell")
        slack.add_user(ADMIN, "admin", "Ada Admin")
        slack.add_user(SELLER, "sam", "Sam Seller")
        slack.add_usergroup(GROUP, [SELLER])
        async with slack_rig(storage, model_server, slack) as built:
            yield built


async def _no_eyes(rig: Rig, channel: str, ts: str) -> None:
    # Any reaction task still running has had its chance to misbehave.
    await asyncio.sleep(0.05)
    assert rig.slack.reactions(channel, ts) == []


async def test_outside_its_channels_the_app_points_to_who_can_help(rig: Rig) -> None:
    ts = await rig.mention("fox what does the pro plan cost?", GENERAL, ADMIN)
    assert rig.posts() == [] and rig.models.requests == []
    (told,) = rig.slack.calls_to("chat.postEphemeral")
    assert (told.params["channel"], told.params["user"]) == (GENERAL, ADMIN)
    assert told.params["text"] == (
        "Fox does not answer in #general. Roo can help here: write @roo and your question."
    )
    # The app's own word: no persona.
    assert "username" not in told.params and "icon_emoji" not in told.params
    await _no_eyes(rig, GENERAL, ts)
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.agent, entry.subject) == (ADMIN, "fox", "answer fox")
    assert (entry.where.platform, entry.where.channel, entry.where.thread) == ("slack", GENERAL, ts)


async def test_in_its_channel_it_answers_the_people_it_may(rig: Rig) -> None:
    await rig.mention("fox what does the pro plan cost?", SALES, ADMIN)
    await rig.mention("fox and the team plan?", SALES, SELLER)  # a member of S0SALESTEAM
    assert [p["username"] for p in rig.posts()] == ["Fox", "Fox"]
    assert rig.slack.calls_to("chat.postEphemeral") == [] and await rig.refusals() == []
    # Slack was asked about the group once: its members are cached.
    assert len(rig.slack.calls_to("usergroups.users.list")) == 1


async def test_a_person_not_allowed_is_refused_privately_and_nothing_runs(rig: Rig) -> None:
    ts = await rig.mention("fox give me a discount", SALES, se.USER_ID)
    assert rig.posts() == [] and rig.models.requests == []
    (told,) = rig.slack.calls_to("chat.postEphemeral")
    assert told.params["user"] == se.USER_ID
    assert told.params["text"].startswith("Sorry, Fox takes requests only from certain people")
    await _no_eyes(rig, SALES, ts)
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.subject, entry.outcome) == (se.USER_ID, "talk fox", "refused")


async def test_without_usergroups_read_a_group_lets_no_one_in(rig: Rig) -> None:
    rig.slack.scopes.discard("usergroups:read")
    await rig.mention("fox and the team plan?", SALES, SELLER)
    (asked,) = rig.slack.calls_to("usergroups.users.list")
    assert asked.error == "missing_scope"
    assert rig.posts() == [] and rig.models.requests == []
    assert len(rig.slack.calls_to("chat.postEphemeral")) == 1


async def test_post_message_is_checked_by_the_channels_names_in_slack(rig: Rig) -> None:
    # Fox may post in #sales; the model names channels by id, which Slack resolves.
    rig.models.script(
        "fast-a",
        CallTool("post_message", {"channel": GENERAL, "text": "50% off for everyone!"}),
        CallTool("post_message", {"channel": SALES, "text": "Pricing updated"}),
        Reply("Done."),
    )
    await rig.mention("fox announce the new prices", SALES, ADMIN)
    top_level = [p for p in rig.posts() if not p.get("thread_ts")]
    assert [(p["channel"], p["text"]) for p in top_level] == [(SALES, "Pricing updated")]
    assert all(p["channel"] != GENERAL for p in rig.posts())
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.subject) == ("agent:fox", f"post_message {GENERAL}")
    assert "you may post only in #sales" in entry.detail


async def test_schedule_add_refuses_a_channel_its_agent_may_not_post_in(rig: Rig) -> None:
    refused = await rig.send(
        se.slash_command(
            "/corral",
            f"schedule add every 1h @fox <#{GENERAL}|general> Pitch the pro plan",
            user_id=ADMIN,
            channel_id=GENERAL,
        )
    )
    body = await refused.json()
    assert "@fox may not post in C0GENERAL1; it may post only in #sales" in body["text"]
    (entry,) = await rig.refusals()
    assert (entry.actor, entry.agent, entry.subject) == (ADMIN, "fox", f"schedule {GENERAL}")
    added = await rig.send(
        se.slash_command(
            "/corral",
            f"schedule add every 1h @fox <#{SALES}|sales> Pitch the pro plan",
            user_id=ADMIN,
            channel_id=SALES,
        )
    )
    assert "Added `fox" in (await added.json())["text"]
    assert [r.spec.channel for r in await rig.storage.schedules.all()] == [SALES]
