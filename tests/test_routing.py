"""Routing through the real gateway, coordinator and runtime: every rung of DESIGN.md's
order, with the reason shown to people and recorded on the run."""

from __future__ import annotations

from fakes.model_server import Fail, Reply
from harness import Harness, make_team

from corral.storage.keys import ThreadKey
from corral.storage.store import Storage


async def _last_run_reason(storage: Storage) -> tuple[str, str]:
    run = (await storage.runs.recent(limit=1))[0]
    return run.agent, run.route_reason


async def test_explicit_at_name_wins_over_channel_default(harness: Harness) -> None:
    await harness.say("@owl can you re-test the login page?", channel="C0DEV", channel_name="#dev")
    assert [r.agent for r in harness.adapter.routes] == ["owl"]
    assert harness.adapter.routes[0].reason == "addressed: @owl"
    assert await _last_run_reason(harness.storage) == ("owl", "addressed: @owl")
    # Owl's model (smart tier, first model) answered and the answer was posted as Owl.
    ((place, reply),) = harness.adapter.posts
    assert reply.agent == "owl" and reply.text.startswith("[smart-a]")
    assert place.channel == "C0DEV"


async def test_app_mention_followed_by_an_agents_name(harness: Harness) -> None:
    await harness.say("beaver the login page throws a 500")
    assert harness.adapter.routes[0].agent == "beaver"
    # Without the app being addressed, a leading name is just a word.
    await harness.say("beaver dams are impressive", to_app=False, channel_name="#random")
    assert len(harness.adapter.routes) == 1


async def test_platform_mention_of_an_agent(harness: Harness) -> None:
    await harness.say("please look at this", mentions=("owl",))
    assert harness.adapter.routes[0].agent == "owl"


async def test_follow_up_in_a_thread_goes_to_the_thread_owner(harness: Harness) -> None:
    await harness.say("@beaver the build is red", message_id="t1")
    await harness.say("any idea why?", thread="t1")
    assert [(r.agent, r.reason) for r in harness.adapter.routes] == [
        ("beaver", "addressed: @beaver"),
        ("beaver", "thread owner"),
    ]
    # The follow-up's model call saw the whole thread, not only the last message.
    last = harness.server.requests_for("smart-a")[-1].json["messages"]
    text = str(last)
    assert "the build is red" in text and "any idea why?" in text


async def test_channel_default_by_name_and_by_id(harness: Harness) -> None:
    await harness.say("the deploy failed", channel="C0DEV", channel_name="#dev")
    await harness.say("release candidate ready", channel="C0QA", channel_name="")
    assert [(r.agent, r.reason) for r in harness.adapter.routes] == [
        ("beaver", "channel default (#dev)"),
        ("owl", "channel default (C0QA)"),
    ]


async def test_router_picks_with_one_structured_model_call(harness: Harness) -> None:
    await harness.say("are the releases tested yet?")
    route = harness.adapter.routes[0]
    assert route.agent == "owl"
    assert route.reason.startswith("router: ")
    router_call = harness.server.requests_for("fast-a")[0].json
    assert router_call["tool_choice"] == {"type": "tool", "name": "choose_agent"}
    assert await _last_run_reason(harness.storage) == ("owl", route.reason)


async def test_router_failure_falls_back_to_the_router_agent(harness: Harness) -> None:
    # Both models of the router's tier refuse the routing call (400: not retried) ...
    harness.server.script("fast-a", Fail(400, message="bad request"))
    harness.server.script("fast-b", Fail(400, message="bad request"))
    await harness.say("what is our deploy process?")
    route = harness.adapter.routes[0]
    assert route.agent == "roo"
    assert route.reason.startswith("router failed")
    # ... and Roo answers itself: the message is never lost.
    assert harness.adapter.texts("answer") == [
        '[fast-a] <message from="person" name="U1">what is our deploy process?</message>'
    ]
    agent, reason = await _last_run_reason(harness.storage)
    assert agent == "roo" and "router failed" in reason


async def test_router_answering_with_an_unknown_agent_is_a_routing_failure(
    harness: Harness,
) -> None:
    harness.server.router_rule = lambda body: {"agent": "hawk", "reason": "made up"}
    await harness.say("who knows about invoices?")
    assert harness.adapter.routes[0].agent == "roo"
    assert "hawk" in harness.adapter.routes[0].reason


async def test_not_for_the_team_posts_nothing(storage: Storage, model_server: object) -> None:
    from fakes.model_server import FakeModelServer

    assert isinstance(model_server, FakeModelServer)
    team = make_team()
    without_router = {h: {**a.model_dump(), "router": False} for h, a in team.agents.items()}
    h = Harness.build(storage, model_server, make_team(agents=without_router))
    h.workers.start()
    try:
        inbox_id = await h.say("lunch anyone?")
        assert inbox_id is not None
        assert h.adapter.posts == [] and h.adapter.routes == []
        record = await storage.inbox.get(inbox_id)
        assert record is not None and record.status == "ignored"
        assert model_server.requests == []
        # Chatter in a channel nobody owns is not for the team either, router or not.
        await h.say("@nobody hello", to_app=False)
        assert h.adapter.posts == []
    finally:
        await h.close()


async def test_duplicate_delivery_is_answered_once(harness: Harness) -> None:
    first = await harness.say("@beaver hi", event_id="ev1", message_id="100.1")
    again = await harness.say("@beaver hi", event_id="ev1", message_id="100.1")
    # The same message under another event id (Slack's app_mention + message pair).
    twin = await harness.say("@beaver hi", event_id="ev2", message_id="100.1")
    assert first is not None and again is None and twin is None
    assert len(harness.adapter.texts("answer")) == 1


async def test_unfinished_messages_are_taken_up_again(
    storage: Storage, model_server: object
) -> None:
    """A message stored by a process that died before handling it is handled on restart."""
    from fakes.model_server import FakeModelServer

    from corral.storage.inbox import NewInbound

    assert isinstance(model_server, FakeModelServer)
    await storage.inbox.add(
        NewInbound(
            "test",
            "e-lost",
            "C0DEV",
            "lost.1",
            "lost.1",
            "U1",
            "@beaver still there?",
            {"to_app": True},
        )
    )
    h = Harness.build(storage, model_server)
    assert await h.workers.recover() == 1
    h.workers.start()
    try:
        model_server.script("smart-a", Reply("Yes, on it."))
        for _ in range(200):
            if h.adapter.posts:
                break
            import asyncio

            await asyncio.sleep(0.02)
        assert h.adapter.texts("answer") == ["Yes, on it."]
    finally:
        await h.close()


async def test_a_reply_in_an_unseen_thread_brings_the_platforms_history(
    harness: Harness,
) -> None:
    from corral.bot.adapter import ThreadLine

    harness.adapter.history["old.1"] = [
        ThreadLine("the nightly job failed", user="ada"),
        ThreadLine("looking into it", agent="owl"),
    ]
    await harness.say("@beaver can you help owl?", thread="old.1")
    sent = str(harness.server.requests_for("smart-a")[-1].json["messages"])
    assert 'name="ada">the nightly job failed</message>' in sent
    assert 'from="agent:owl" name="Owl">looking into it</message>' in sent
    # The history is brought in once; the next reply reads Corral's own transcript.
    await harness.say("and?", thread="old.1")
    history = await harness.storage.transcript.history(ThreadKey("test", "C0GEN", "old.1"))
    assert [e.text for e in history].count("the nightly job failed") == 1


async def test_unknown_handles_are_only_those_of_a_message_that_names_no_agent(
    harness: Harness,
) -> None:
    unknown = harness.coordinator.unknown_handles
    assert unknown("@nobody hi") == ["nobody"]
    assert unknown("@Nobody and @ghost, then @nobody again") == ["nobody", "ghost"]
    # A real handle anywhere routes as before; e-mail addresses and Slack's own
    # mentions are no handles; no @ at all is nothing.
    assert unknown("@beaver ask @nobody") == []
    assert unknown("@Owl hi") == []
    assert unknown("mail bob@example.com") == []
    assert unknown("<@U0ADMIN> look") == []
    assert unknown("the build is red") == []
