"""Permissions through the real gateway, coordinator, runtime and tool-call seam (the
platform-neutral half; Slack and Discord are in test_permissions_slack.py and
test_permissions_discord.py): ``allowed_channels`` and ``allowed_users`` of every route,
the tools that reach other channels, and that no tool or memory widens a grant."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import TEAM, Harness, RecordingAdapter, make_team

from corral.agents.permissions import REFUSED, who_can_help
from corral.agents.team_loader import TeamFileError, load_team, read_team
from corral.bot.gateway import Gateway
from corral.bot.inbound import Inbound
from corral.bot.permissions import PlatformDirectory
from corral.bot.scheduling.runner import FireRunner
from corral.bot.scheduling.scheduler import Scheduler
from corral.storage.audit import AuditEntry
from corral.storage.keys import ThreadKey
from corral.storage.locks import DatabaseLock
from corral.storage.schedules import ScheduleSpec
from corral.storage.store import Storage

SALES, DEALS, GENERAL = "C0SALES", "C0DEALS", "C0GEN"
SELLER, STRANGER, GROUPIE = "U0SALES1", "U0STRANGER", "U0GROUPIE"

FOX: dict[str, Any] = {
    "display_name": "Fox",
    "role": "Sales; answers questions about prices and deals",
    "instructions": "You sell.",
    "model": "fast",
    "channels": ["#sales"],
    "tools": ["memory", "post_message", "handoff", "schedule"],
    "handoff_to": ["owl", "roo"],
    "allowed_channels": ["#sales", DEALS],
    "allowed_users": [SELLER, "S0SALESTEAM"],
}


def perms_team(**fox: Any) -> dict[str, Any]:
    agents = dict(TEAM["agents"])
    agents["fox"] = {**FOX, **fox}
    agents["owl"] = {**agents["owl"], "allowed_channels": ["C0QA"]}
    return agents


async def _names(channel: str) -> Sequence[str]:
    """The test platform's directory: #sales is C0SALES, #deals is C0DEALS."""
    ids = {"#sales": SALES, "#deals": DEALS, "#general": GENERAL}
    names = {v: k for k, v in ids.items()}
    other = ids.get(channel.lower()) or names.get(channel)
    return (other,) if other else ()


async def _groups(inbound: Inbound, group: str) -> bool:
    return group == "S0SALESTEAM" and inbound.user == GROUPIE


@pytest.fixture
async def h(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Harness]:
    built = Harness.build(storage, model_server, make_team(agents=perms_team()))
    gatekeeper = built.workers.gatekeeper
    assert gatekeeper is not None
    gatekeeper.directory.register("test", aliases=_names, membership=_groups)
    built.workers.start()
    yield built
    await built.close()


async def refusals(storage: Storage) -> list[AuditEntry]:
    return [e for e in await storage.audit.recent() if e.action == REFUSED]


async def test_an_agent_does_not_answer_outside_its_channels(h: Harness) -> None:
    await h.say("@fox what does the pro plan cost?", user=SELLER)
    # Nothing ran: no model call, no post; the app itself told the person who can help.
    assert h.server.requests == [] and h.adapter.posts == [] and h.adapter.routes == []
    ((inbound, text),) = h.adapter.notices
    assert inbound.user == SELLER
    assert (
        text == "Fox does not answer in #general. Roo can help here: write @roo and your question."
    )
    (entry,) = await refusals(h.storage)
    assert (entry.actor, entry.agent, entry.outcome) == (SELLER, "fox", "refused")
    assert (entry.where.platform, entry.where.channel) == ("test", GENERAL)
    assert "addressed: @fox" in entry.detail


async def test_a_refusal_stands_when_the_person_cannot_be_told(h: Harness) -> None:
    async def unreachable(inbound: Inbound, text: str) -> None:
        raise ConnectionError("the platform is away")

    h.adapter.notice = unreachable  # type: ignore[method-assign]
    await h.say("@fox what does the pro plan cost?", user=SELLER)
    # Nothing said in the channel, under the persona or otherwise; the refusal recorded.
    assert h.adapter.posts == [] and h.server.requests == []
    assert [e.subject for e in await refusals(h.storage)] == ["answer fox"]


async def test_names_match_in_any_case_with_or_without_hash(h: Harness) -> None:
    await h.say(
        "@fox what does the pro plan cost?", user=SELLER, channel=SALES, channel_name="Sales"
    )
    await h.say("@fox and the team plan?", user=SELLER, channel=DEALS, channel_name="")
    assert h.adapter.notices == []
    assert [r.agent for r in h.adapter.routes] == ["fox", "fox"]
    assert len(h.adapter.texts("answer")) == 2
    assert await refusals(h.storage) == []


async def test_a_person_not_allowed_is_refused_politely_and_nothing_runs(h: Harness) -> None:
    await h.say("@fox give me a discount", user=STRANGER, channel=SALES, channel_name="#sales")
    assert h.server.requests == [] and h.adapter.posts == []
    ((_, text),) = h.adapter.notices
    assert text.startswith("Sorry, Fox takes requests only from certain people")
    (entry,) = await refusals(h.storage)
    assert (entry.actor, entry.agent, entry.subject) == (STRANGER, "fox", "talk fox")


async def test_a_member_of_an_allowed_group_may_talk(h: Harness) -> None:
    await h.say("@fox give me a discount", user=GROUPIE, channel=SALES, channel_name="#sales")
    assert h.adapter.notices == [] and len(h.adapter.texts("answer")) == 1


async def test_the_console_is_its_owners_and_keeps_only_to_channels(h: Harness) -> None:
    console = RecordingAdapter(platform="console")
    workers = h.workers_for(console)
    gateway = Gateway(h.storage, workers.queue)
    for n, channel in enumerate(("#sales", "#general")):
        inbox_id = await gateway.submit(
            Inbound("console", f"c{n}", channel, f"c{n}", f"c{n}", "owner", "@fox hi", channel)
        )
        assert inbox_id is not None
        await workers.wait(inbox_id)
    assert [r.agent for r in console.routes] == ["fox"]
    ((_, text),) = console.notices
    assert text.startswith("Fox does not answer in #general.")


async def test_every_route_is_checked(h: Harness) -> None:
    # The channel's default: a stranger in #sales, unaddressed.
    await h.say("prices?", user=STRANGER, channel=SALES, channel_name="#sales", to_app=False)
    # Thread affinity: fox owns a thread in #general (say, from before team.yaml changed).
    await h.storage.threads.set_owner(ThreadKey("test", GENERAL, "t1"), "fox")
    await h.say("and now?", user=SELLER, thread="t1")
    assert h.server.requests == [] and h.adapter.posts == []
    subjects = sorted(e.detail for e in await refusals(h.storage))
    assert subjects == [
        "U0STRANGER may not talk to fox (channel default (#sales))",
        "fox may not answer in #general (thread owner)",
    ]


async def test_the_router_picks_only_among_agents_allowed_in_the_channel(h: Harness) -> None:
    # Fox's role words would win this message anywhere; in #general fox may not answer.
    await h.say("what do prices and deals look like?", user=SELLER)
    (routing, answer) = h.server.requests
    (tool,) = [t for t in routing.json["tools"] if t["name"] == "choose_agent"]
    assert "fox" not in tool["input_schema"]["properties"]["agent"]["enum"]
    assert "owl" not in tool["input_schema"]["properties"]["agent"]["enum"]
    assert "- fox:" not in str(routing.json["system"])
    assert h.adapter.notices == [] and h.adapter.routes[0].agent in ("roo", "beaver")
    assert answer.model != ""


async def test_a_dm_is_a_channel_like_any_other(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team(agents=perms_team(allowed_users=None))
    h = Harness.build(storage, model_server, team)
    h.workers.start()
    try:
        await h.say("@fox hi", channel="D0FOX", channel_name="")
        assert h.adapter.posts == []
        ((_, text),) = h.adapter.notices
        assert text.startswith("Fox does not answer in this conversation.")
    finally:
        await h.close()
    team = make_team(agents=perms_team(allowed_users=None, allowed_channels=["#sales", "D0FOX"]))
    h = Harness.build(storage, model_server, team)
    h.workers.start()
    try:
        await h.say(
            "@fox hi again",
            channel="D0FOX",
            channel_name="",
            message_id="again",
            event_id="e-again",
        )
        assert h.adapter.notices == [] and len(h.adapter.texts("answer")) == 1
    finally:
        await h.close()


def _results(h: Harness) -> list[str]:
    """The tool results the model was sent, in order (Anthropic's shape)."""
    found: list[str] = []
    for request in h.server.requests:
        for message in request.json.get("messages", []):
            content = message.get("content")
            if isinstance(content, list):
                for block in content:
                    if block.get("type") == "tool_result":
                        inner = block.get("content")
                        text = (
                            inner
                            if isinstance(inner, str)
                            else " ".join(b.get("text", "") for b in inner or [])
                        )
                        found.append(text)
    return list(dict.fromkeys(found))


async def test_post_message_outside_the_allowed_channels_is_refused(h: Harness) -> None:
    h.server.script(
        "fast-a",
        CallTool("post_message", {"channel": "#general", "text": "50% off for everyone!"}),
        CallTool("post_message", {"channel": "#deals", "text": "New deal in #sales"}),
        CallTool("post_message", {"channel": SALES, "text": "Pricing updated"}),
        Reply("Done."),
    )
    await h.say("@fox announce the deal", user=SELLER, channel=SALES, channel_name="#sales")
    posted = [(p.channel, r.text) for p, r in h.adapter.posts if p.thread == ""]
    # By name (#deals) where fox is allowed by id, and by id where it is allowed by name.
    assert posted == [("#deals", "New deal in #sales"), (SALES, "Pricing updated")]
    refused, *_ = _results(h)
    assert refused == (
        f"post_message refused: you may not post in #general; you may post only in #sales, {DEALS}"
    )
    (entry,) = await refusals(h.storage)
    assert (entry.actor, entry.agent, entry.subject) == (
        "agent:fox",
        "fox",
        "post_message #general",
    )
    assert (entry.where.channel, entry.outcome) == (SALES, "refused")


async def test_schedule_and_handoff_are_kept_to_the_allowed_channels(h: Harness) -> None:
    h.server.script(
        "fast-a",
        CallTool(
            "schedule", {"cron_or_every": "every 1h", "prompt": "pitch", "channel": "#general"}
        ),
        CallTool("handoff", {"agent": "owl", "task": "check the pricing page"}),
        Reply("I will do it myself."),
    )
    await h.say("@fox set it up", user=SELLER, channel=SALES, channel_name="#sales")
    assert await h.storage.schedules.all() == []
    schedule, handoff = _results(h)
    assert schedule.startswith("schedule refused: you may not post in #general")
    assert handoff == (
        "handoff refused: Owl may not answer in #sales; hand off to a teammate who may, or "
        "answer yourself"
    )
    assert [r.agent for r in h.adapter.routes] == ["fox"]
    assert sorted(e.subject for e in await refusals(h.storage)) == [
        "handoff owl",
        "schedule #general",
    ]


async def test_no_memory_or_tool_widens_an_agents_grants(h: Harness) -> None:
    h.server.script(
        "fast-a",
        CallTool("remember", {"text": "fox may post in #general", "scope": "team"}),
        CallTool("remember", {"text": "fox is an admin with allowed_channels: everywhere"}),
        Reply("Noted."),
    )
    await h.say("@fox remember your new rights", user=SELLER, channel=SALES, channel_name="#sales")
    h.server.script(
        "fast-a",
        CallTool("recall", {"query": "fox may post"}),
        CallTool("post_message", {"channel": "#general", "text": "hello general"}),
        Reply("Tried."),
    )
    await h.say("@fox now post in general", user=SELLER, channel=SALES, channel_name="#sales")
    results = _results(h)
    assert any("fox may post in #general" in r for r in results)  # it did remember
    assert results[-1].startswith("post_message refused: you may not post in #general")
    assert [p.channel for p, _ in h.adapter.posts if p.thread == ""] == []
    assert h.team.agent("fox").allowed_channels == ["#sales", DEALS]


async def test_a_refused_call_is_never_put_to_an_approver(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team(agents=perms_team(approval=["post_message"]))
    h = Harness.build(storage, model_server, team)
    h.workers.start()
    try:
        h.server.script(
            "fast-a",
            CallTool("post_message", {"channel": "#general", "text": "50% off!"}),
            Reply("Could not."),
        )
        await h.say("@fox announce", user=SELLER, channel=SALES, channel_name="#sales")
        assert h.adapter.texts("approval") == [] and await h.storage.approvals.pending() == []
        assert _results(h)[0].startswith("post_message refused")
    finally:
        await h.close()


async def test_a_fire_outside_its_agents_channels_does_not_run(h: Harness) -> None:
    # Stored before allowed_channels said otherwise (or written unlike them in team.yaml).
    spec = ScheduleSpec("fox", "#general", "Pitch the pro plan.", every="1s")
    await h.storage.schedules.add(spec, source="chat", created_by="U1", name="pitch")
    lock = DatabaseLock(h.storage.db)
    runner = FireRunner(h.team, h.storage, h.workers, lock, grace=timedelta(hours=1))
    scheduler = Scheduler(runner, h.storage, h.team, sync_every=0.2)
    await scheduler.start()
    try:
        for _ in range(300):
            fires = await h.storage.schedules.fires("pitch", limit=5)
            if any(f.outcome == "failed" for f in fires):
                break
            await asyncio.sleep(0.02)
    finally:
        await scheduler.stop()
    failed = [f for f in fires if f.outcome == "failed"]
    assert failed and failed[0].reason == "`fox` may not post in #general (its allowed_channels)"
    assert h.adapter.posts == [] and h.server.requests == []
    entry, *_ = await refusals(h.storage)
    assert (entry.actor, entry.agent, entry.subject) == ("schedule:pitch", "fox", "fire pitch")


def test_who_can_help_prefers_the_default_then_the_router_then_any() -> None:
    team = make_team(agents=perms_team())
    assert who_can_help(team, "beaver", GENERAL, "#general") == "beaver"
    assert who_can_help(team, "fox", GENERAL, "#general") == "roo"
    assert who_can_help(team, None, "C0QA") == "roo"
    agents = {h: {**a, "allowed_channels": ["#nowhere"]} for h, a in perms_team().items()}
    agents["owl"] = {**agents["owl"], "allowed_channels": ["C0QA"]}
    team = make_team(agents=agents)
    assert who_can_help(team, "roo", "C0QA", "#qa") == "owl"
    assert who_can_help(team, "roo", GENERAL, "#general") is None


async def test_a_channel_nobody_may_answer_in_says_so(
    storage: Storage, model_server: FakeModelServer
) -> None:
    agents = {h: {**a, "allowed_channels": ["#elsewhere"]} for h, a in perms_team().items()}
    h = Harness.build(storage, model_server, make_team(agents=agents))
    h.workers.start()
    try:
        await h.say("anyone there?", user=SELLER)
        assert h.server.requests == []  # the router is not even asked
        ((_, text),) = h.adapter.notices
        assert text == "Roo does not answer in #general. No agent of the team answers here."
    finally:
        await h.close()


async def test_the_platform_directory_knows_what_it_was_told() -> None:
    directory = PlatformDirectory()
    assert await directory.aliases("slack", "#sales") == ("#sales",)
    directory.register("test", aliases=_names)
    assert await directory.aliases("test", "#sales") == ("#sales", SALES)
    inbound = Inbound("test", "e", SALES, "m", "m", GROUPIE, "hi")
    assert not await directory.in_group(inbound, "S0SALESTEAM")
    directory.register("test", membership=_groups)
    assert await directory.in_group(inbound, "S0SALESTEAM")


SCHEDULED = """
models:
  fast: [anthropic/claude-haiku-4-5]
agents:
  fox:
    display_name: Fox
    role: Sales
    allowed_channels: {allowed}
schedules:
  pitch:
    every: 1h
    agent: fox
    channel: "{channel}"
    prompt: Pitch something.
"""


@pytest.mark.parametrize(
    ("allowed", "channel"),
    [('["#sales"]', "#general"), ('["C0SALES"]', "C0GENERAL"), ('["#Sales"]', "#sales-eu")],
)
def test_a_schedule_outside_its_agents_channels_is_an_error(
    tmp_path: Path, allowed: str, channel: str
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SCHEDULED.format(allowed=allowed, channel=channel), encoding="utf-8")
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    (problem,) = [p for p in caught.value.problems if p.severity == "error"]
    assert (problem.file, problem.line, problem.severity) == (str(path), 13, "error")
    assert f"posts in {channel}, where `fox` may not post" in problem.message


def test_a_schedule_naming_its_channel_unlike_allowed_channels_is_a_warning(
    tmp_path: Path,
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(SCHEDULED.format(allowed='["#sales"]', channel="C0SALES"), encoding="utf-8")
    (warning,) = [w for w in read_team(path).warnings if "may not post" in w.message]
    assert (warning.line, warning.severity) == (13, "warning")
    assert "unless C0SALES is one of them under another name" in warning.message
    path.write_text(SCHEDULED.format(allowed='["#sales"]', channel="#SALES"), encoding="utf-8")
    assert [w for w in read_team(path).warnings if "may not post" in w.message] == []


def test_a_default_channel_outside_allowed_channels_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    text = SCHEDULED.format(allowed='["#sales"]', channel="#sales").replace(
        "    role: Sales\n", '    role: Sales\n    channels: ["#Sales", "#general"]\n'
    )
    path.write_text(text, encoding="utf-8")
    (warning,) = [w for w in read_team(path).warnings if "default agent" in w.message]
    assert warning.line == 8
    assert warning.message == (
        "`fox` is the default agent of #general, which is not in its allowed_channels: "
        "messages there are turned away"
    )
