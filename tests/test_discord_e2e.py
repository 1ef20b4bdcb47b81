"""Discord end to end: discord.py's real client, connected over its gateway and REST to
the fake Discord server, parses every event and sends every post; models at the fake
model server. The platform-neutral scenarios (tests/scenarios.py) run here as on Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import discord
import pytest
from fakes.discord_server import FakeDiscordServer
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import TEAM, fake_models, make_core, make_team
from scenarios import SCENARIOS, Say, Scenario, inbox_settled, play

from corral.agents.conversation import Place
from corral.agents.conversation import Reply as AgentReply
from corral.agents.llm.retry import RetryPolicy
from corral.bot.app import Core
from corral.bot.discord.app import DiscordParts
from corral.bot.discord.approvals import request_view
from corral.bot.gateway import Workers
from corral.bot.settings import Settings
from corral.storage.store import Storage

GUILD = "1200000000000000001"
GENERAL, DEV, DM = "1200000000000000010", "1200000000000000011", "1200000000000000012"
PLACES = {"general": GENERAL, "dev": DEV, "dm": DM}
USER, ADMIN = "1200000000000000100", "1200000000000000101"


@dataclass
class DiscordRig:
    fake: FakeDiscordServer
    models: FakeModelServer
    storage: Storage
    core: Core
    parts: DiscordParts
    workers: Workers

    approver_mention = f"<@{ADMIN}>"

    @property
    def bot(self) -> str:
        return self.fake.bot_user_id

    async def post(self, channel: str, text: str, **kw: Any) -> dict[str, Any]:
        """A person posts ``text`` in ``channel`` (a channel, thread or DM)."""
        return await self.fake.post_message(
            channel, kw.pop("author", USER), text, guild=channel != DM, **kw
        )

    async def mention(self, text: str, channel: str = GENERAL, **kw: Any) -> dict[str, Any]:
        """A person mentions the bot, then says ``text``."""
        return await self.post(channel, f"<@{self.bot}> {text}", **kw)

    async def say(self, say: Say, conversation: Any) -> Any:
        """A scenario's message: a follow-up is posted in the conversation's thread (the
        rig opens a thread for every conversation) or DM."""
        channel = conversation or PLACES[say.place]
        if say.to_app and say.place != "dm":
            message = await self.mention(say.text, channel)
        else:
            message = await self.post(channel, say.text)
        return conversation or (DM if say.place == "dm" else message["id"])

    async def until(self, condition: Callable[[], Any]) -> None:
        await self.fake.wait_until(condition, within=10)

    async def settled(self) -> None:
        """Wait until every message delivered so far is stored and finished."""

        await inbox_settled(self.storage)

    def place_of(self, channel: str) -> str:
        places = {v: k for k, v in PLACES.items()}
        if channel in places:
            return places[channel]
        return places[str(self.fake.channel(channel)["parent_id"])]

    def answers(self) -> list[tuple[str, str, str]]:
        """The team's posts, in order: webhook executions under the agent's name, and
        bot messages led by the agent's name in bold."""
        posts: list[tuple[str, str, str]] = []
        for call in self.fake.calls:
            if call.status >= 300 or call.method != "POST":
                continue
            if call.route == "/webhooks/{webhook_id}/{webhook_token}":
                message = call.response
                where = str(call.query.get("thread_id") or message["channel_id"])
                posts.append((self.place_of(where), call.json["username"], call.json["content"]))
            elif call.route == "/channels/{channel_id}/messages":
                name, _, text = str(call.json["content"]).partition(": ")
                posts.append((self.place_of(call.path.split("/")[2]), name.strip("*"), text))
        return posts


async def start_rig(
    storage: Storage,
    model_server: FakeModelServer,
    fake: FakeDiscordServer,
    *,
    threads: str = "always",
    guild_ids: tuple[int, ...] = (int(GUILD),),
) -> DiscordRig:
    agents = dict(TEAM["agents"])
    agents["beaver"] = {**agents["beaver"], "channels": [DEV]}
    agents["owl"] = {**agents["owl"], "icon": "https://example.test/owl.png"}
    team = make_team(agents=agents, approvers=[ADMIN])
    models = fake_models(
        team, model_server, RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)
    )
    core = make_core(storage, models, team, Settings(_env_file=None, discord_token=fake.token))
    parts = DiscordParts(
        core.chat_services(),
        guild_ids=guild_ids,
        threads=threads,  # type: ignore[arg-type]
        guild_ready_timeout=0.05,
    )
    workers = core.workers({"discord": parts.adapter})
    parts.attach(workers)
    workers.start()
    await parts.start(fake.token)
    await asyncio.wait_for(parts.client.wait_until_ready(), 10)
    return DiscordRig(fake, model_server, storage, core, parts, workers)


async def stop_rig(rig: DiscordRig) -> None:
    await rig.workers.stop()
    await rig.parts.close()
    await rig.core.models.aclose()


def seed(fake: FakeDiscordServer) -> None:
    fake.add_user(USER, "alice", "Alice")
    fake.add_user(ADMIN, "ada", "Ada Admin")
    fake.add_guild(GUILD, "Agency")
    fake.add_channel(GUILD, GENERAL, "general")
    fake.add_channel(GUILD, DEV, "dev")
    fake.add_dm(DM, USER)


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer() as server:
        seed(server)
        with server.patch_discord():
            yield server


@pytest.fixture
async def rig(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer
) -> AsyncIterator[DiscordRig]:
    rig = await start_rig(storage, model_server, fake)
    yield rig
    await stop_rig(rig)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_scenario(rig: DiscordRig, scenario: Scenario) -> None:
    await play(rig, scenario)


async def test_an_answer_goes_in_a_thread_under_the_persona_through_one_webhook(
    rig: DiscordRig,
) -> None:
    first = await rig.mention("owl is the release tested?")
    await rig.settled()
    await rig.mention("beaver and the build?")
    await rig.settled()
    owl, beaver = rig.fake.webhook_executions
    # A thread opened from the message: its id is the message's.
    assert owl.thread_id == first["id"] and rig.fake.channel(first["id"])["parent_id"] == GENERAL
    assert (owl.username, owl.avatar_url) == ("Owl", "https://example.test/owl.png")
    assert beaver.username == "Beaver" and beaver.avatar_url is None
    # One webhook for the channel, created once and reused.
    assert len(rig.fake.calls_to("POST", "/channels/{channel_id}/webhooks")) == 1
    assert owl.webhook_id == beaver.webhook_id
    # 👀 while working, gone with the answer.
    assert rig.fake.calls_to("PUT", "/channels/{channel_id}/messages/{message_id}/reactions/*")
    assert rig.fake.reactions(first["id"]) == []


async def test_without_manage_webhooks_the_bot_posts_with_the_name_in_bold(
    rig: DiscordRig,
) -> None:
    rig.fake.deny_webhooks(GENERAL)
    await rig.mention("beaver the build is red")
    await rig.settled()
    assert rig.fake.webhook_executions == []
    (sent,) = rig.fake.sent_messages
    assert sent["content"].startswith("**Beaver**: ") and "the build is red" in sent["content"]


async def test_a_dm_is_answered_as_the_bot_with_the_agents_name(rig: DiscordRig) -> None:
    await rig.post(DM, "beaver can you look at the logs?")
    await rig.settled()
    (sent,) = rig.fake.sent_messages
    assert sent["channel_id"] == DM and sent["content"].startswith("**Beaver**: ")


async def test_bots_and_webhooks_are_never_answered(rig: DiscordRig) -> None:
    await rig.post(GENERAL, f"<@{rig.bot}> @beaver loop?", author=rig.bot)
    other = "1200000000000000300"
    rig.fake.add_user(other, "otherbot", bot=True)
    await rig.post(GENERAL, "@beaver loop?", author=other, bot=True)
    await rig.post(GENERAL, "@beaver loop?", webhook_id="1200000000000000400", username="Owl")
    await rig.mention("owl ping")  # a person's message, so the others had their chance
    await rig.settled()
    assert [u for _, u, _ in rig.answers()] == ["Owl"]
    assert (await rig.storage.inbox.count_by_status()) == {"done": 1}


async def test_a_long_answer_is_split_without_breaking_code_blocks(rig: DiscordRig) -> None:
    code = "```python\n" + "\n".join(f"print({i})  # step {i}" for i in range(150)) + "\n```"
    rig.models.script("smart-a", Reply("Here is the script:\n\n" + code + "\n\nRun it."))
    await rig.mention("beaver write the script")
    await rig.settled()
    parts = [e.content or "" for e in rig.fake.webhook_executions]
    assert len(parts) > 1 and all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert parts[-1].endswith("Run it.")


async def test_in_a_quiet_channel_a_reply_to_the_answer_continues_it(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer
) -> None:
    rig = await start_rig(storage, model_server, fake, threads="busy")
    try:
        await rig.mention("owl is the release tested?")
        await rig.settled()
        (answer,) = rig.fake.webhook_executions
        assert answer.thread_id is None  # nobody else wrote lately: no thread
        await rig.post(GENERAL, "and the hotfix?", message_reference=answer.message["id"])
        await rig.settled()
        assert [u for _, u, _ in rig.answers()] == ["Owl", "Owl"]
        (last, *_) = await storage.runs.recent(limit=1)
        assert last.route_reason == "thread owner"
        # Someone else writes; the next new conversation gets a thread.
        await rig.post(GENERAL, "lunch?", author=ADMIN)
        second = await rig.mention("beaver is the build green?")
        await rig.settled()
        assert rig.fake.webhook_executions[-1].thread_id == second["id"]
    finally:
        await stop_rig(rig)


async def test_a_thread_started_without_corral_is_read_back(rig: DiscordRig) -> None:
    thread = "1200000000000000500"
    rig.fake.add_thread(GENERAL, thread, "prod is slow", owner_id=ADMIN)
    rig.fake.add_message(thread, ADMIN, "prod is slow since 10:00")
    await rig.parts.client.fetch_channel(int(thread))
    await rig.post(thread, "@beaver what now?")
    await rig.settled()
    sent = str(rig.models.requests_for("smart-a")[-1].json["messages"])
    assert "[Ada Admin]: prod is slow since 10:00" in sent
    assert sent.index("prod is slow") < sent.index("what now")
    assert rig.fake.webhook_executions[-1].thread_id == thread


async def test_commands_are_synced_to_the_configured_server(rig: DiscordRig) -> None:
    names = sorted(c["name"] for c in rig.fake.synced_commands[GUILD])
    assert names == ["corral", "memory"]
    memory = next(c for c in rig.fake.synced_commands[GUILD] if c["name"] == "memory")
    assert {o["name"] for o in memory["options"]} >= {"add", "search", "list", "forget", "export"}


async def _command(rig: DiscordRig, name: str, sub: str, **options: Any) -> Any:
    before = len(rig.fake.interaction_responses)
    await rig.fake.dispatch(
        "INTERACTION_CREATE",
        rig.fake.interaction_create_command(
            name, sub, options or None, user_id=USER, channel_id=GENERAL
        ),
    )
    await rig.until(lambda: len(rig.fake.interaction_responses) > before)
    return rig.fake.interaction_responses[-1]


async def test_each_command_answers(rig: DiscordRig) -> None:
    status = await _command(rig, "corral", "status")
    assert status.type == 4 and status.ephemeral and "Team status" in status.data["content"]
    agents = await _command(rig, "corral", "agents")
    assert "Beaver" in agents.data["content"]
    helped = await _command(rig, "corral", "help")
    assert "/memory add" in helped.data["content"]
    added = await _command(rig, "memory", "add", text="The deploy window is Friday 3pm")
    assert not added.ephemeral
    assert added.data["content"] == "Remembered `#1` (team): The deploy window is Friday 3pm"
    found = await _command(rig, "memory", "search", query="deploy window")
    assert "The deploy window is Friday 3pm" in found.data["content"]
    listed = await _command(rig, "memory", "list")
    assert "The deploy window is Friday 3pm" in listed.data["content"]
    exported = await _command(rig, "memory", "export")
    (upload,) = exported.files
    assert upload.filename == "MEMORY.md" and b"Friday 3pm" in upload.content
    forgot = await _command(rig, "memory", "forget", id="1")  # its author may
    assert forgot.data["content"].startswith("Forgot `#1`")
    scheduled = await _command(rig, "corral", "schedule", args="list")
    assert scheduled.type == 4 and scheduled.data["content"]


async def test_command_options_are_taken_as_given(rig: DiscordRig) -> None:
    added = await _command(rig, "memory", "add", text="Mind the --agent flag", channel=DEV)
    assert added.data["content"] == "Remembered `#1` (channel): Mind the --agent flag"
    refused = await _command(rig, "memory", "forget", id="soon")
    assert refused.data["content"] == ("Give the memory's number. Usage: `/memory forget ID`")


async def test_a_slow_command_is_deferred_then_followed_up(
    rig: DiscordRig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from corral.bot.discord import commands

    monkeypatch.setattr(commands, "ANSWER_WITHIN_S", 0.0)
    deferred = await _command(rig, "corral", "status")
    assert deferred.type == 5
    await rig.until(lambda: rig.fake.followups)
    assert "Team status" in rig.fake.followups[0].payload["content"]


async def _approval_request(rig: DiscordRig) -> tuple[dict[str, Any], str]:
    rig.models.script(
        "smart-a",
        CallTool("post_message", {"channel": DEV, "text": "v2 is out"}),
        Reply("Announced in #dev."),
    )
    await rig.mention("beaver announce v2")
    await rig.settled()
    ask = rig.fake.webhook_executions[-1]
    buttons = ask.components[0]["components"]  # type: ignore[index]
    custom_ids = [b["custom_id"] for b in buttons]
    assert [c.split(":")[0] for c in custom_ids] == ["corral_approve", "corral_reject"]
    return ask.message, custom_ids[0].split(":", 1)[1]


async def _click(rig: DiscordRig, action: str, approval_id: str, user: str, message: Any) -> Any:
    before = len(rig.fake.interaction_responses)
    await rig.fake.dispatch(
        "INTERACTION_CREATE",
        rig.fake.interaction_create_component(
            f"{action}:{approval_id}",
            user_id=user,
            channel_id=message["channel_id"],
            message=message["id"],
        ),
    )
    await rig.until(lambda: len(rig.fake.interaction_responses) > before)
    return rig.fake.interaction_responses[-1]


def _in(rig: DiscordRig, place: str) -> list[str]:
    return [text for where, _, text in rig.answers() if where == place]


async def test_approval_by_an_approver_resumes_the_run(rig: DiscordRig) -> None:
    message, approval_id = await _approval_request(rig)
    response = await _click(rig, "corral_approve", approval_id, ADMIN, message)
    assert response.type == 7 and response.data["components"] == []
    assert response.data["content"].endswith(f"Approved by <@{ADMIN}>")
    await rig.until(lambda: "Announced in #dev." in _in(rig, "general"))
    assert _in(rig, "dev") == ["v2 is out"]


async def test_a_non_approver_is_refused_and_nothing_happens(rig: DiscordRig) -> None:
    message, approval_id = await _approval_request(rig)
    response = await _click(rig, "corral_approve", approval_id, USER, message)
    assert response.type == 4 and response.ephemeral
    assert response.data["content"] == "Only the team's approvers can decide this."
    assert _in(rig, "dev") == []
    (pending,) = await rig.storage.approvals.pending()
    assert pending.id == approval_id


async def test_a_rejection_is_told_to_the_agent(rig: DiscordRig) -> None:
    message, approval_id = await _approval_request(rig)
    rig.models.script("smart-a", Reply("Understood, not announcing."))
    response = await _click(rig, "corral_reject", approval_id, ADMIN, message)
    assert response.data["content"].endswith(f"Rejected by <@{ADMIN}>")
    await rig.until(lambda: len(_in(rig, "general")) == 2)
    assert _in(rig, "dev") == []


async def test_resolve_from_the_escalation_button(rig: DiscordRig) -> None:
    rig.models.script(
        "smart-a", CallTool("escalate", {"reason": "the deploy key expired"}), Reply("Asked.")
    )
    await rig.mention("beaver deploy v2")
    await rig.settled()
    (ask,) = [e for e in rig.fake.webhook_executions if e.components]
    (button,) = ask.components[0]["components"]  # type: ignore[index]
    assert button["label"] == "Resolve"
    action, escalation_id = button["custom_id"].split(":", 1)
    assert action == "corral_resolve" and f"escalation {escalation_id}" in str(ask.content)
    refused = await _click(rig, action, escalation_id, USER, ask.message)
    assert (
        refused.ephemeral
        and refused.data["content"] == "Only the team's approvers can decide this."
    )
    response = await _click(rig, action, escalation_id, ADMIN, ask.message)
    assert response.type == 7 and response.data["components"] == []
    assert response.data["content"].endswith(f"Resolved by <@{ADMIN}>")
    resolved = await rig.storage.approvals.get(escalation_id)
    assert resolved is not None and (resolved.status, resolved.decided_by) == ("resolved", ADMIN)


async def test_a_button_acts_only_on_its_own_message(rig: DiscordRig) -> None:
    """Another message carrying the request's buttons (a copy, as a crafted click would
    need) decides nothing and stamps nothing."""
    message, approval_id = await _approval_request(rig)
    channel = rig.parts.client.get_channel(int(GENERAL))
    assert isinstance(channel, discord.TextChannel)
    view = request_view("approval", approval_id)
    assert view is not None
    copied = await channel.send("A copy of the request", view=view)
    elsewhere = rig.fake.message(copied.id)
    response = await _click(rig, "corral_approve", approval_id, ADMIN, elsewhere)
    assert response.type == 4 and response.ephemeral
    assert response.data["content"] == (
        f"This button does not belong to {approval_id}'s request; nothing was decided."
    )
    assert _in(rig, "dev") == []
    (pending,) = await rig.storage.approvals.pending()
    assert pending.id == approval_id
    # On its own message the same click counts.
    response = await _click(rig, "corral_approve", approval_id, ADMIN, message)
    assert response.type == 7 and response.data["content"].endswith(f"Approved by <@{ADMIN}>")
    await rig.until(lambda: _in(rig, "dev") == ["v2 is out"])


async def test_approval_buttons_work_after_a_restart(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer
) -> None:
    first = await start_rig(storage, model_server, fake)
    message, approval_id = await _approval_request(first)
    await stop_rig(first)
    # A new process: no view in memory, only the dynamic items registered at start.
    second = await start_rig(storage, model_server, fake)
    try:
        await _click(second, "corral_approve", approval_id, ADMIN, message)
        await second.until(lambda: "Announced in #dev." in _in(second, "general"))
        assert _in(second, "dev") == ["v2 is out"]
    finally:
        await stop_rig(second)


async def test_a_scheduled_post_by_channel_name_goes_top_level(rig: DiscordRig) -> None:
    await rig.parts.adapter.post(
        Place("discord", "#general", "schedule-f-1", "#general"),
        AgentReply("beaver", "Standup notes"),
    )
    (execution,) = rig.fake.webhook_executions
    assert execution.channel_id == GENERAL and execution.thread_id is None
    assert execution.content == "Standup notes"


async def test_rate_limits_are_waited_out_by_discord_py(rig: DiscordRig) -> None:
    rig.fake.rate_limit("POST", "/webhooks/{webhook_id}/{webhook_token}", times=1)
    await rig.mention("beaver hi")
    await rig.settled()
    assert [u for _, u, _ in rig.answers()] == ["Beaver"]
    statuses = [
        c.status for c in rig.fake.calls_to("POST", "/webhooks/{webhook_id}/{webhook_token}")
    ]
    assert statuses == [429, 200]


async def test_a_message_delivered_twice_is_answered_once(rig: DiscordRig) -> None:
    message = await rig.mention("owl status?")
    # A replay (after a resume, or a second process) of the same MESSAGE_CREATE.
    await rig.fake.dispatch("MESSAGE_CREATE", message)
    await rig.settled()
    assert [u for _, u, _ in rig.answers()] == ["Owl"]
    assert (await rig.storage.inbox.count_by_status()) == {"done": 1}


async def test_without_configured_servers_commands_are_registered_globally(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer
) -> None:
    rig = await start_rig(storage, model_server, fake, guild_ids=())
    try:
        assert sorted(c["name"] for c in rig.fake.synced_commands[None]) == ["corral", "memory"]
        assert GUILD not in rig.fake.synced_commands
    finally:
        await stop_rig(rig)


async def test_a_reply_to_an_answer_posted_before_a_restart_goes_to_its_agent(
    storage: Storage, model_server: FakeModelServer, fake: FakeDiscordServer
) -> None:
    first = await start_rig(storage, model_server, fake, threads="never")
    await first.mention("owl is the release tested?")
    await first.settled()
    (answer,) = fake.webhook_executions
    await stop_rig(first)
    # Another process (or this one, restarted) knows the post only by its persona.
    second = await start_rig(storage, model_server, fake, threads="never")
    try:
        await second.post(GENERAL, "and the hotfix?", message_reference=answer.message["id"])
        await second.settled()
        assert [u for _, u, _ in second.answers()] == ["Owl", "Owl"]
        (last,) = await storage.runs.recent(limit=1)
        assert last.route_reason == "addressed: @owl"
    finally:
        await stop_rig(second)
