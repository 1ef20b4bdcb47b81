"""What must hold when things go sideways: decisions that come late or twice, workers
that stop or die, messages that arrive out of step, and input that is off."""

from __future__ import annotations

import asyncio
import json

from fakes.model_server import CallTool, CallTools, FakeModelServer, Reply
from harness import TEAM, Harness, make_team

from corral.agents.team import Team
from corral.bot.commands.registry import CommandContext
from corral.bot.commands.table import dispatch
from corral.bot.gateway import Workers
from corral.storage.inbox import NewInbound
from corral.storage.keys import ThreadKey
from corral.storage.store import Storage


async def test_calls_after_a_handoff_are_not_run(harness: Harness) -> None:
    """A model may call several tools at once; a handoff ends the agent's turn, so a call
    after it neither runs nor asks for approval."""
    harness.server.script(
        "smart-a",
        CallTools(
            (
                CallTool("handoff", {"agent": "owl", "task": "test v2"}),
                CallTool("post_message", {"channel": "#releases", "text": "v2"}),
            )
        ),
        Reply("Owl here, testing."),
    )
    await harness.say("@beaver ship v2")
    assert [(r.kind, r.text) for _, r in harness.adapter.posts] == [
        ("handoff", "Beaver → Owl: test v2"),
        ("answer", "Owl here, testing."),
    ]
    assert await harness.storage.approvals.pending() == []


async def test_a_truncated_answer_says_so(harness: Harness) -> None:
    harness.server.script("smart-a", Reply("def main():\n    pass", truncated=True))
    await harness.say("@beaver write it")
    (answer,) = harness.adapter.texts("answer")
    assert answer.endswith("_(This answer was cut off at the model's length limit.)_")


async def test_deciding_an_escalation_as_an_approval_does_nothing(harness: Harness) -> None:
    harness.server.fail_always("smart-a", 500)
    harness.server.fail_always("smart-b", 500)
    await harness.say("@beaver fix it")
    (escalation,) = await harness.storage.approvals.pending()
    assert await harness.workers.decide(escalation.id, True, "U0ADMIN") is None
    (still,) = await harness.storage.approvals.pending()
    assert still.id == escalation.id and still.status == "open"


async def test_a_rejection_skips_the_rest_of_the_answer(harness: Harness) -> None:
    # Beaver asks to post (needs approval) and, in the same answer, to hand off.
    harness.server.script(
        "smart-a",
        CallTools(
            (
                CallTool("post_message", {"channel": "#releases", "text": "v2"}),
                CallTool("handoff", {"agent": "owl", "task": "test v2"}),
            )
        ),
        Reply("Understood."),
    )
    await harness.say("@beaver announce and hand over", message_id="t9")
    approval_id = harness.adapter.posts[-1][1].approval_id
    assert await harness.decide(approval_id, False) is not None
    (run,) = await harness.storage.runs.recent()
    assert run.agent == "beaver" and run.outcome == "ok"
    assert harness.adapter.texts("handoff") == []
    assert await harness.storage.threads.owner(ThreadKey("test", "C0GEN", "t9")) == "beaver"
    results = harness.server.requests_for("smart-a")[-1].json["messages"][-1]["content"]
    assert [r["is_error"] for r in results] == [True, True]
    assert "rejected this call" in json.dumps(results[0])
    assert "Not run: an earlier call of this answer was rejected." in json.dumps(results[1])


async def test_a_paused_run_owns_its_thread(harness: Harness) -> None:
    harness.server.script("smart-a", CallTool("post_message", {"channel": "#x", "text": "hi"}))
    await harness.say("@beaver announce it", message_id="t2")
    await harness.say("any news?", thread="t2")
    assert [(r.agent, r.reason) for r in harness.adapter.routes][-1] == ("beaver", "thread owner")


async def test_resume_after_the_agent_left_the_team_fails_visibly(harness: Harness) -> None:
    harness.server.script("smart-a", CallTool("post_message", {"channel": "#x", "text": "hi"}))
    await harness.say("@beaver announce it")
    approval_id = harness.adapter.posts[-1][1].approval_id
    agents = {h: a for h, a in TEAM["agents"].items() if h != "beaver"}
    agents["owl"] = {**agents["owl"], "handoff_to": []}
    smaller = Team.model_validate({**TEAM, "agents": agents})
    h = Harness.build(harness.storage, harness.server, smaller)
    h.workers.start()
    try:
        assert await h.decide(approval_id) is not None
        (reply,) = h.adapter.texts("escalation")
        assert reply.startswith("beaver could not finish: internal error")
    finally:
        await h.close()
    run = (await harness.storage.runs.recent(limit=1))[0]
    assert run.outcome == "failed"


async def test_stopping_mid_turn_puts_the_message_back(
    storage: Storage, model_server: FakeModelServer
) -> None:
    model_server.latency = 5.0
    h = Harness.build(storage, model_server)
    h.workers.start()
    inbox_id = await h.gateway.submit(_inbound("@beaver slow one", "s1"))
    assert inbox_id is not None
    for _ in range(100):
        if model_server.requests:
            break
        await asyncio.sleep(0.02)
    await h.close()
    record = await storage.inbox.get(inbox_id)
    assert record is not None and record.status == "pending"
    (run,) = await storage.runs.recent()
    assert run.outcome == "interrupted"
    # The next start takes it up again and answers it.
    model_server.latency = 0.0
    again = Harness.build(storage, model_server)
    again.workers.start()
    try:
        await again.workers.wait(inbox_id)
        assert again.adapter.texts("answer") == [
            '[smart-a] <message from="person" name="U1">@beaver slow one</message>'
        ]
    finally:
        await again.close()


async def test_a_message_held_by_a_dead_worker_is_taken_up_by_the_sweep(
    storage: Storage, model_server: FakeModelServer
) -> None:
    inbox_id = await storage.inbox.add(_new("@owl are you there?", "d1"))
    assert inbox_id is not None
    assert await storage.inbox.claim(inbox_id) is not None  # a worker that then died
    h = Harness.build(storage, model_server)
    h.workers = Workers(
        storage,
        h.workers.queue,
        h.coordinator,
        h.runtime,
        {"test": h.adapter},
        stale_after=0.3,
        sweep_every=0.1,
    )
    h.workers.start()
    try:
        await asyncio.wait_for(h.workers.wait(inbox_id), timeout=5)
        (answer,) = h.adapter.texts("answer")
        assert answer.startswith("[smart-a]") and answer.endswith("@owl are you there?")
    finally:
        await h.close()


async def test_workers_leave_other_platforms_messages_alone(harness: Harness) -> None:
    other = await harness.storage.inbox.add(
        NewInbound("slack", "ev-s", "C1", "1.1", "1.1", "U1", "@beaver hi", {"to_app": True})
    )
    assert other is not None
    await harness.workers.recover()
    await harness.workers.process(other)
    record = await harness.storage.inbox.get(other)
    assert record is not None and record.status == "pending"
    assert harness.adapter.posts == []


async def test_a_threads_messages_are_handled_in_arrival_order(harness: Harness) -> None:
    first = await harness.storage.inbox.add(_new("@beaver the build is red", "o1"))
    second = await harness.storage.inbox.add(_new("any idea why?", "o2", thread="o1"))
    assert first is not None and second is not None
    # The follow-up reaches a worker first; the thread's first message is still handled first.
    await harness.workers.process(second)
    assert [(r.agent, r.reason) for r in harness.adapter.routes] == [
        ("beaver", "addressed: @beaver"),
        ("beaver", "thread owner"),
    ]
    history = await harness.storage.transcript.history(ThreadKey("test", "C0GEN", "o1"))
    assert [e.text for e in history if not e.agent] == ["@beaver the build is red", "any idea why?"]


async def test_approval_of_memory_covers_remember(
    storage: Storage, model_server: FakeModelServer
) -> None:
    agents = dict(TEAM["agents"])
    agents["owl"] = {**agents["owl"], "approval": ["memory"]}
    h = Harness.build(storage, model_server, make_team(agents=agents))
    h.workers.start()
    try:
        model_server.script("smart-a", CallTool("remember", {"text": "x", "scope": "team"}))
        await h.say("@owl remember x")
        ((_, reply),) = h.adapter.posts
        assert reply.kind == "approval"
        assert await storage.memory.list() == []
    finally:
        await h.close()


async def test_forget_with_an_impossible_id_is_a_clear_answer(storage: Storage) -> None:
    ctx = CommandContext(make_team(), storage, "U1", "test")
    reply = await dispatch(ctx, "/memory forget 99999999999999999999")
    assert reply.text == "There is no memory `#99999999999999999999`."
    reply = await dispatch(ctx, "/memory forget soon")
    assert reply.text.startswith("Give the memory's number. Usage: `/memory forget ID`")


def _new(text: str, message_id: str, thread: str | None = None) -> NewInbound:
    return NewInbound(
        "test",
        f"e-{message_id}",
        "C0GEN",
        message_id,
        thread or message_id,
        "U1",
        text,
        {"to_app": True, "channel_name": "#general"},
    )


def _inbound(text: str, message_id: str):  # type: ignore[no-untyped-def]
    from corral.bot.inbound import Inbound

    return Inbound(
        "test",
        f"e-{message_id}",
        "C0GEN",
        message_id,
        message_id,
        "U1",
        text,
        channel_name="#general",
        to_app=True,
    )
