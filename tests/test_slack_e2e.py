"""Slack end to end: signed HTTP requests (events, slash commands, button clicks) into
Corral's HTTP server and slack-bolt's real request handling, the Web API client pointed
at the fake Slack server, models at the fake model server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
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
from scenarios import SCENARIOS, Say, Scenario, inbox_settled, play

from corral.agents.llm.retry import RetryPolicy
from corral.bot.gateway import Workers
from corral.bot.http_server import build_http_app
from corral.bot.inbound import Inbound
from corral.bot.settings import Settings
from corral.bot.slack.app import SlackParts, slack_parts
from corral.storage.store import Storage

GENERAL, DEV, DM = "C0GENERAL1", "C0DEV00001", "D0DM000001"
OPS = "C0OPS00001"
PLACES = {"general": GENERAL, "dev": DEV, "dm": DM}
ADMIN = "U0ADMIN"


@dataclass
class SlackRig:
    slack: FakeSlackServer
    models: FakeModelServer
    storage: Storage
    parts: SlackParts
    workers: Workers
    base: str
    http: aiohttp.ClientSession

    async def send(self, request: se.SignedRequest) -> aiohttp.ClientResponse:
        response = await self.http.post(
            f"{self.base}/slack/events", data=request.body, headers=request.headers
        )
        await response.read()
        return response

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        return [
            c.params
            for c in self.slack.calls_to("chat.postMessage")
            if c.ok and (channel is None or c.params.get("channel") == channel)
        ]

    async def until(self, condition: Callable[[], bool]) -> None:
        """Wait (up to 10 s) until ``condition`` holds."""
        async with asyncio.timeout(10):
            while not condition():
                await asyncio.sleep(0.02)

    async def settled(self) -> None:
        """Wait until every stored message is finished."""

        await inbox_settled(self.storage)

    approver_mention = f"<@{ADMIN}>"

    async def say(self, say: Say, conversation: Any) -> Any:
        """A scenario's message, delivered as Slack does: ``app_mention`` when the app is
        mentioned in a channel, ``message`` otherwise; a follow-up in the root's thread."""
        channel = PLACES[say.place]
        if say.to_app and say.place != "dm":
            event = await self.mention(say.text, channel, thread_ts=conversation)
            return conversation or event["ts"]
        stored = self.slack.add_message(
            channel, None, say.text, user=se.USER_ID, thread_ts=conversation
        )
        extra = {"channel_type": "im"} if say.place == "dm" else {}
        await self.send(
            se.event_callback(
                se.message(
                    say.text, channel=channel, ts=stored["ts"], thread_ts=conversation, **extra
                )
            )
        )
        return conversation or stored["ts"]

    def answers(self) -> list[tuple[str, str, str]]:
        """Every answer in a channel is in the thread of the message it answers."""
        places = {v: k for k, v in PLACES.items()}
        posts = self.posts()
        assert all(p.get("thread_ts") for p in posts if p["channel"] != DM), posts
        return [(places[p["channel"]], p["username"], p["text"]) for p in posts]

    async def mention(
        self, text: str, channel: str = GENERAL, thread_ts: str | None = None
    ) -> dict[str, Any]:
        """A person mentions the app: the message is in the channel, and Slack sends it."""
        stored = self.slack.add_message(
            channel, None, se.mention() + " " + text, user=se.USER_ID, thread_ts=thread_ts
        )
        event = se.app_mention(text, channel=channel, ts=stored["ts"], thread_ts=thread_ts)
        response = await self.send(se.event_callback(event))
        assert response.status == 200
        return event


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer() as slack:
        slack.add_channel(GENERAL, "general")
        slack.add_channel(DEV, "dev")
        slack.add_channel(DM, is_im=True, user=se.USER_ID)
        slack.add_user(se.USER_ID, "alice", "Alice Liddell")
        slack.add_user(ADMIN, "admin", "Ada Admin")
        yield slack


@asynccontextmanager
async def slack_rig(
    storage: Storage,
    model_server: FakeModelServer,
    slack: FakeSlackServer,
    post_interval: float = 0.0,
    messages_per_minute: dict[str, int | None] | None = None,
) -> AsyncIterator[SlackRig]:
    """One Corral process with Slack over HTTP, until the block ends; each channel takes
    a post per ``post_interval`` (0: no pace); ``messages_per_minute``: the team's flood
    limits, when not the defaults."""
    agents = dict(TEAM["agents"])
    agents["beaver"] = {**agents["beaver"], "icon": ":beaver:", "channels": [DEV]}
    agents["owl"] = {**agents["owl"], "icon": "https://example.test/owl.png"}
    limits = dict(TEAM["limits"])
    if messages_per_minute is not None:
        limits["messages_per_minute"] = messages_per_minute
    team = make_team(agents=agents, approvers=[ADMIN], limits=limits)
    models = fake_models(
        team, model_server, RetryPolicy(attempts=2, base_delay=0.001, max_delay=0.01)
    )
    core = make_core(
        storage, models, team, Settings(_env_file=None, slack_bot_token=slack.bot_token)
    )
    parts = slack_parts(
        core.chat_services(), slack.bot_token, slack.api_url, post_interval=post_interval
    )
    workers = core.workers({"slack": parts.adapter})
    parts.attach(core.chat_services(), workers, se.SIGNING_SECRET)
    runner = web.AppRunner(build_http_app(storage, slack=parts.handle_http), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    workers.start()
    try:
        async with aiohttp.ClientSession() as http:
            yield SlackRig(
                slack, model_server, storage, parts, workers, f"http://127.0.0.1:{port}", http
            )
    finally:
        await workers.stop()
        await runner.cleanup()
        await parts.close()
        await models.aclose()


@pytest.fixture
async def rig(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> AsyncIterator[SlackRig]:
    async with slack_rig(storage, model_server, fake_slack) as rig:
        yield rig


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.name)
async def test_scenario(rig: SlackRig, scenario: Scenario) -> None:
    await play(rig, scenario)


async def test_mention_is_answered_in_the_thread_under_the_agents_persona(rig: SlackRig) -> None:
    rig.models.latency = 0.3  # slower than the reaction's wait: :eyes: shows meanwhile
    rig.parts.adapter.react_after = 0.05
    event = await rig.mention("beaver the login page throws a 500")
    await rig.settled()
    (post,) = rig.posts(GENERAL)
    assert post["thread_ts"] == event["ts"]
    assert post["username"] == "Beaver" and post["icon_emoji"] == ":beaver:"
    assert post["text"].startswith("[smart-a]") and "the login page throws a 500" in post["text"]
    # Picked up with :eyes:, cleared when the answer came.
    added = rig.slack.calls_to("reactions.add")
    assert [c.params["name"] for c in added] == ["eyes"]
    assert rig.slack.reactions(GENERAL, event["ts"]) == []


async def test_eyes_come_within_the_wait_even_while_every_worker_is_busy(rig: SlackRig) -> None:
    # Four workers, six mentions, each answer a second away: the last two wait a second
    # for a worker, and still show they were taken as soon as the others.
    rig.models.latency = 1.0
    rig.parts.adapter.react_after = 0.1
    sent: dict[str, float] = {}
    for n in range(6):
        at = time.monotonic()
        event = await rig.mention(f"owl check build {n}")
        sent[event["ts"]] = at
    await rig.settled()

    added = {c.params["timestamp"]: c.at for c in rig.slack.calls_to("reactions.add")}
    answered = {c.params["thread_ts"]: c.at for c in rig.slack.calls_to("chat.postMessage")}
    assert set(added) == set(answered) == set(sent)
    waits = sorted(answered[ts] - at for ts, at in sent.items())
    assert waits[-1] > 1.8  # the last waited for a worker, then for its answer
    assert all(added[ts] - at < 0.8 for ts, at in sent.items()), (added, sent)
    assert all(rig.slack.reactions(GENERAL, ts) == [] for ts in sent)


async def test_an_answer_does_not_wait_for_a_rate_limited_reaction(rig: SlackRig) -> None:
    rig.models.latency = 0.3
    rig.parts.adapter.react_after = 0.05
    rig.slack.rate_limit("reactions.add", times=2, retry_after=1)
    event = await rig.mention("owl how are the tests?")
    await rig.settled()  # answered, and the worker free for the next message
    settled = time.monotonic()
    assert len(rig.posts(GENERAL)) == 1
    # Slack let the reaction on only two seconds in; then it was taken back at once.
    await rig.until(lambda: bool(rig.slack.calls_to("reactions.remove")))
    added = [c for c in rig.slack.calls_to("reactions.add") if c.status == 200]
    assert len(added) == 1 and settled < added[0].at
    assert rig.slack.reactions(GENERAL, event["ts"]) == []


async def test_eyes_are_taken_back_from_a_message_no_one_answers(rig: SlackRig) -> None:
    adapter = rig.parts.adapter
    adapter.react_after = 0.01
    event = await rig.mention("just thinking out loud")
    await rig.settled()
    before = len(rig.slack.calls)
    inbound = Inbound(
        platform="slack",
        event_id="Ev-unanswered",
        channel=GENERAL,
        channel_name="#general",
        message_id=event["ts"],
        thread=event["ts"],
        user=se.USER_ID,
        text="just thinking out loud",
        to_app=True,
    )
    adapter.received(inbound)
    await rig.until(lambda: rig.slack.reactions(GENERAL, event["ts"]) == ["eyes"])
    await adapter.unanswered(inbound)
    assert rig.slack.reactions(GENERAL, event["ts"]) == []
    assert [c.method for c in rig.slack.calls[before:]] == ["reactions.add", "reactions.remove"]


async def test_an_answer_sooner_than_the_reaction_gets_none(rig: SlackRig) -> None:
    rig.parts.adapter.react_after = 5.0
    await rig.mention("owl ping")
    await rig.settled()
    assert len(rig.posts(GENERAL)) == 1
    assert rig.slack.calls_to("reactions.add") == []
    assert rig.slack.calls_to("reactions.remove") == []


async def test_plain_at_name_in_a_message_event_reaches_that_agent(rig: SlackRig) -> None:
    stored = rig.slack.add_message(GENERAL, None, "@owl can you re-test?", user=se.USER_ID)
    await rig.send(
        se.event_callback(se.message("@owl can you re-test?", channel=GENERAL, ts=stored["ts"]))
    )
    await rig.settled()
    (post,) = rig.posts(GENERAL)
    assert post["username"] == "Owl" and post["icon_url"] == "https://example.test/owl.png"


async def test_a_message_delivered_twice_is_answered_once(rig: SlackRig) -> None:
    stored = rig.slack.add_message(GENERAL, None, se.mention() + " owl status?", user=se.USER_ID)
    mention = se.event_callback(se.app_mention("owl status?", channel=GENERAL, ts=stored["ts"]))
    await rig.send(mention)
    await rig.send(mention.with_retry(1, "http_timeout"))
    # The same message again as a `message` event, with its own event id.
    await rig.send(
        se.event_callback(
            se.message(se.mention() + " owl status?", channel=GENERAL, ts=stored["ts"])
        )
    )
    await rig.settled()
    assert len(rig.posts(GENERAL)) == 1
    assert (await rig.storage.inbox.count_by_status()) == {"done": 1}


async def test_a_bad_signature_is_refused_and_leaves_no_trace(rig: SlackRig) -> None:
    request = se.event_callback(se.app_mention("beaver hi", channel=GENERAL))
    forged = request.with_headers(**{"X-Slack-Signature": "v0=" + "0" * 64})
    assert (await rig.send(forged)).status == 401
    stale = se.event_callback(
        se.app_mention("beaver hi", channel=GENERAL),
        timestamp=int(asyncio.get_running_loop().time()) - 3600,
    )
    assert (await rig.send(stale)).status == 401
    await asyncio.sleep(0.1)
    assert await rig.storage.inbox.count_by_status() == {}
    assert rig.posts() == []


async def test_bot_messages_are_ignored(rig: SlackRig) -> None:
    await rig.send(se.event_callback(se.bot_message("@beaver loop?", channel=GENERAL)))
    await rig.send(
        se.event_callback(se.bot_message("@beaver loop?", channel=GENERAL, bot_id="B0OTHERBOT"))
    )
    await asyncio.sleep(0.2)
    assert await rig.storage.inbox.count_by_status() == {}


async def test_a_long_answer_is_split_into_messages_slack_accepts(rig: SlackRig) -> None:
    long = "\n\n".join(f"Step {i}: " + "do the thing carefully " * 20 for i in range(40))
    rig.models.script("smart-a", Reply(long))
    await rig.mention("beaver write the runbook")
    await rig.settled()
    posts = rig.posts(GENERAL)
    assert len(posts) > 3 and all(len(p["text"]) <= 3900 for p in posts)
    assert all(c.ok for c in rig.slack.calls_to("chat.postMessage"))
    assert "Step 39:" in posts[-1]["text"]


async def test_slash_commands_answer_in_the_ack(rig: SlackRig) -> None:
    status = await rig.send(se.slash_command("/corral", "status", channel_id=GENERAL))
    body = await status.json()
    assert body["response_type"] == "ephemeral" and "Team status" in body["text"]
    added = await rig.send(
        se.slash_command("/memory", "add The deploy window is Friday 3pm", channel_id=GENERAL)
    )
    body = await added.json()
    assert body["response_type"] == "in_channel"
    assert body["text"] == "Remembered `#1` (team): The deploy window is Friday 3pm"
    found = await (
        await rig.send(se.slash_command("/memory", "search deploy window", channel_id=GENERAL))
    ).json()
    assert "The deploy window is Friday 3pm" in found["text"]


async def _approval_request(rig: SlackRig) -> tuple[dict[str, Any], str]:
    rig.models.script(
        "smart-a",
        CallTool("post_message", {"channel": DEV, "text": "v2 is out"}),
        Reply("Announced in #dev."),
    )
    event = await rig.mention("beaver announce v2")
    await rig.settled()
    (ask,) = rig.posts(GENERAL)
    actions = ask["blocks"][1]
    assert [e["action_id"] for e in actions["elements"]] == ["corral_approve", "corral_reject"]
    stored = rig.slack.thread(GENERAL, event["ts"])[-1]
    return stored, actions["elements"][0]["value"]


async def test_approval_by_an_approver_resumes_the_run(rig: SlackRig) -> None:
    message, approval_id = await _approval_request(rig)
    await rig.send(
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
    await rig.until(lambda: len(rig.posts(GENERAL)) == 2)
    (update,) = rig.slack.calls_to("chat.update")
    assert update.params["text"] == f"Approved by <@{ADMIN}>"
    assert [p["text"] for p in rig.posts(DEV)] == ["v2 is out"]
    assert rig.posts(GENERAL)[-1]["text"] == "Announced in #dev."


async def test_a_non_approver_is_refused_and_nothing_happens(rig: SlackRig) -> None:
    message, approval_id = await _approval_request(rig)
    await rig.send(
        se.block_actions(
            "corral_approve",
            approval_id,
            user_id=se.USER_ID,
            channel=GENERAL,
            message_ts=message["ts"],
            message=message,
        )
    )
    await rig.until(lambda: bool(rig.slack.ephemerals))
    assert rig.slack.ephemerals[0]["text"] == "Only the team's approvers can decide this."
    assert rig.slack.calls_to("chat.update") == [] and rig.posts(DEV) == []
    (pending,) = await rig.storage.approvals.pending()
    assert pending.id == approval_id


async def test_a_rejection_is_told_to_the_agent(rig: SlackRig) -> None:
    message, approval_id = await _approval_request(rig)
    rig.models.script("smart-a", Reply("Understood, not announcing."))
    await rig.send(
        se.block_actions(
            "corral_reject",
            approval_id,
            user_id=ADMIN,
            channel=GENERAL,
            message_ts=message["ts"],
            message=message,
        )
    )
    await rig.until(lambda: len(rig.posts(GENERAL)) == 2)
    assert rig.slack.calls_to("chat.update")[0].params["text"] == f"Rejected by <@{ADMIN}>"
    assert rig.posts(DEV) == []


def _click(action: str, request_id: str, user: str, message: dict[str, Any]) -> se.SignedRequest:
    return se.block_actions(
        action,
        request_id,
        user_id=user,
        channel=GENERAL,
        message_ts=message["ts"],
        thread_ts=message.get("thread_ts"),
        message=message,
    )


async def _escalation(rig: SlackRig) -> tuple[dict[str, Any], str]:
    """Beaver asks a human; the escalation is one message with a Resolve button."""
    rig.models.script(
        "smart-a", CallTool("escalate", {"reason": "the deploy key expired"}), Reply("Asked.")
    )
    event = await rig.mention("beaver deploy v2")
    await rig.settled()
    (stored,) = [m for m in rig.slack.thread(GENERAL, event["ts"]) if m.get("blocks")]
    (button,) = stored["blocks"][1]["elements"]
    assert (button["action_id"], button["text"]["text"]) == ("corral_resolve", "Resolve")
    return stored, button["value"]


async def test_resolve_from_the_escalation_button(rig: SlackRig) -> None:
    message, escalation_id = await _escalation(rig)
    assert f"escalation {escalation_id}" in message["text"]
    await rig.send(_click("corral_resolve", escalation_id, se.USER_ID, message))
    await rig.until(lambda: bool(rig.slack.ephemerals))
    assert rig.slack.ephemerals[0]["text"] == "Only the team's approvers can decide this."
    await rig.send(_click("corral_resolve", escalation_id, ADMIN, message))
    await rig.until(lambda: bool(rig.slack.calls_to("chat.update")))
    (update,) = rig.slack.calls_to("chat.update")
    assert (update.params["ts"], update.params["text"]) == (
        message["ts"],
        f"Resolved by <@{ADMIN}>",
    )
    # The button is gone: the message keeps what it said, and says who resolved it.
    shown = rig.slack.message(GENERAL, message["ts"])
    assert shown is not None
    assert [b["type"] for b in shown["blocks"]] == ["section", "context"]
    resolved = await rig.storage.approvals.get(escalation_id)
    assert resolved is not None and (resolved.status, resolved.decided_by) == ("resolved", ADMIN)


async def test_a_button_acts_only_on_its_own_message(rig: SlackRig) -> None:
    """Message B's button carrying A's id (as a crafted click would) decides nothing and
    stamps nothing."""
    rig.models.script(
        "smart-a",
        CallTool("post_message", {"channel": DEV, "text": "v2 is out"}),
        CallTool("post_message", {"channel": DEV, "text": "v3 is out"}),
    )
    # One after the other: two runs at once could take the scripted replies in either order.
    roots = []
    for version in ("v2", "v3"):
        roots.append((await rig.mention(f"beaver announce {version}"))["ts"])
        await rig.settled()
    first, second = (rig.slack.thread(GENERAL, root)[-1] for root in roots)
    first_id = first["blocks"][1]["elements"][0]["value"]
    await rig.send(_click("corral_approve", first_id, ADMIN, second))
    await rig.until(lambda: bool(rig.slack.ephemerals))
    assert rig.slack.ephemerals[0]["text"] == (
        f"This button does not belong to {first_id}'s request; nothing was decided."
    )
    assert rig.slack.calls_to("chat.update") == [] and rig.posts(DEV) == []
    assert [a.status for a in await rig.storage.approvals.pending()] == ["pending", "pending"]
    # On its own message the same click counts.
    rig.models.script("smart-a", Reply("Announced."))
    await rig.send(_click("corral_approve", first_id, ADMIN, first))
    await rig.until(lambda: [p["text"] for p in rig.posts(DEV)] == ["v2 is out"])
    (update,) = rig.slack.calls_to("chat.update")
    assert update.params["ts"] == first["ts"]


async def test_an_ack_never_waits_on_a_name_look_up(rig: SlackRig) -> None:
    """The channel's and sender's names are asked of Slack by the worker: Slack holding
    those calls back (429, retry after a second) does not hold back the ack."""
    rig.slack.add_channel(OPS, "ops")
    rig.slack.rate_limit("conversations.info", retry_after=1)
    rig.slack.rate_limit("users.info", retry_after=1)
    rig.models.script("fast-a", Reply("Looking at the queue."))
    stored = rig.slack.add_message(OPS, None, "the queue is stuck", user=se.USER_ID)
    started = time.monotonic()
    response = await rig.send(
        se.event_callback(se.message("the queue is stuck", channel=OPS, ts=stored["ts"]))
    )
    assert response.status == 200 and time.monotonic() - started < 1.0
    await rig.settled()
    # Both names were asked for, and used: the channel's default agent (by #name)
    # answered, and the model read the message under the sender's name.
    assert {c.method for c in rig.slack.calls if c.method.endswith(".info")} == {
        "conversations.info",
        "users.info",
    }
    assert [(p["username"], p["text"]) for p in rig.posts(OPS)] == [
        ("Roo", "Looking at the queue.")
    ]
    sent = str(rig.models.requests_for("fast-a")[-1].json["messages"])
    assert 'name="alice">the queue is stuck</message>' in sent


async def test_healthz_and_metrics(rig: SlackRig) -> None:
    health = await rig.http.get(f"{rig.base}/healthz")
    assert health.status == 200 and (await health.json())["status"] == "ok"
    await rig.mention("owl ping")
    await rig.settled()
    metrics = await (await rig.http.get(f"{rig.base}/metrics")).text()
    assert 'corral_inbox_messages{status="done"} 1' in metrics


async def test_a_thread_started_without_corral_is_read_from_slack(rig: SlackRig) -> None:
    root = rig.slack.add_message(GENERAL, None, "prod is slow since 10:00", user=ADMIN)
    rig.slack.add_message(
        GENERAL,
        None,
        "I restarted the cache",
        username="Owl",
        bot_id=se.BOT_ID,
        thread_ts=root["ts"],
    )
    stored = rig.slack.add_message(
        GENERAL, None, "@beaver what now?", user=se.USER_ID, thread_ts=root["ts"]
    )
    await rig.send(
        se.event_callback(
            se.message("@beaver what now?", channel=GENERAL, ts=stored["ts"], thread_ts=root["ts"])
        )
    )
    await rig.settled()
    sent = str(rig.models.requests_for("smart-a")[-1].json["messages"])
    assert 'name="admin">prod is slow since 10:00</message>' in sent
    assert 'from="agent:owl" name="Owl">I restarted the cache</message>' in sent
    assert 'name="alice">@beaver what now?</message>' in sent
    assert sent.index("prod is slow") < sent.index("restarted the cache") < sent.index("what now")


async def test_approval_after_a_restart_resumes_the_run(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> None:
    async with slack_rig(storage, model_server, fake_slack) as first:
        message, approval_id = await _approval_request(first)
    # A new process: the paused run is only in the database.
    async with slack_rig(storage, model_server, fake_slack) as second:
        await second.send(
            se.block_actions(
                "corral_approve",
                approval_id,
                user_id=ADMIN,
                channel=GENERAL,
                message_ts=message["ts"],
                message=message,
            )
        )
        await second.until(lambda: len(second.posts(GENERAL)) == 2)
        assert [p["text"] for p in second.posts(DEV)] == ["v2 is out"]
        assert second.posts(GENERAL)[-1]["text"] == "Announced in #dev."


async def test_memory_export_is_uploaded_as_a_file(rig: SlackRig) -> None:
    await rig.send(se.slash_command("/memory", "add Invoices go out monthly", channel_id=GENERAL))
    await rig.send(se.slash_command("/memory", "export", channel_id=GENERAL))
    await rig.until(lambda: bool(rig.slack.files))
    (uploaded,) = rig.slack.files.values()
    assert "Invoices go out monthly" in uploaded.content.decode()


async def test_a_post_for_a_thread_slack_does_not_know_goes_top_level(rig: SlackRig) -> None:
    from corral.agents.conversation import Place, Reply

    await rig.parts.adapter.post(
        Place("slack", GENERAL, "schedule-f-123", "#general"), Reply("beaver", "Standup notes")
    )
    (post,) = rig.posts(GENERAL)
    assert post.get("thread_ts") is None and post["text"] == "Standup notes"
