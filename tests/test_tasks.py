"""The team's workspace: handoffs recorded as tasks, their results, ``/corral tasks``,
and ``recall`` finding what teammates did — end to end through the fake model server."""

from __future__ import annotations

import json

from fakes.model_server import CallTool, Fail, Reply
from harness import Harness

from corral.bot.commands.registry import CommandContext
from corral.bot.commands.table import dispatch
from corral.storage.store import Storage


async def tasks_reply(harness: Harness) -> list[str]:
    ctx = CommandContext(harness.team, harness.storage, user="U1", platform="test")
    return (await dispatch(ctx, "/corral tasks")).text.splitlines()


async def test_task_store_closes_a_task_once_and_finds_it_by_its_result(storage: Storage) -> None:
    task = await storage.tasks.create(
        from_agent="roo",
        to_agent="owl",
        task="test the login fix",
        platform="test",
        channel="C1",
        thread="t1",
    )
    assert (task.status, task.result) == ("open", "")
    assert [t.id for t in await storage.tasks.open()] == [task.id]
    assert [t.id for t in await storage.tasks.search("login")] == [task.id]
    assert await storage.tasks.search("cypress") == []

    done = await storage.tasks.finish(task.id, outcome="done", result="All Cypress tests pass")
    assert done is not None and (done.status, done.result) == ("done", "All Cypress tests pass")
    assert done.updated_at >= done.created_at
    assert await storage.tasks.finish(task.id, outcome="failed", result="again") is None
    assert await storage.tasks.finish(9999, outcome="done", result="x") is None
    assert await storage.tasks.open() == []
    assert [t.id for t in await storage.tasks.recent()] == [task.id]
    # The result's words are searchable once the task is closed, and the agents' handles.
    assert [t.id for t in await storage.tasks.search("cypress")] == [task.id]
    assert [t.id for t in await storage.tasks.search("what did owl do")] == [task.id]
    assert await storage.tasks.get(task.id) == done


async def test_a_handoff_is_a_task_done_with_the_answer(harness: Harness) -> None:
    harness.server.script(
        "smart-a",
        CallTool("handoff", {"agent": "owl", "task": "test the login fix on staging"}),
        Reply("Login fix verified: 42 Cypress tests pass on staging."),
    )
    await harness.say("@beaver the login fix is merged", message_id="t1")
    (task,) = await harness.storage.tasks.recent()
    assert (task.from_agent, task.to_agent, task.task) == (
        "beaver",
        "owl",
        "test the login fix on staging",
    )
    assert (task.status, task.result) == (
        "done",
        "Login fix verified: 42 Cypress tests pass on staging.",
    )
    assert (task.platform, task.channel, task.thread) == ("test", "C0GEN", "t1")
    lines = await tasks_reply(harness)
    assert lines[:2] == ["*Open tasks* (0)", "• none"]
    assert lines[2] == "*Recently closed*"
    assert lines[3].startswith(f"• task `#{task.id}` Beaver → Owl, done ")
    assert lines[3].endswith(
        "ago: test the login fix on staging — Login fix verified: 42 Cypress tests pass on staging."
    )

    # Later, Roo looks up what the team did.
    harness.server.script(
        "fast-a", CallTool("recall", {"query": "cypress login"}), Reply("Owl verified it.")
    )
    await harness.say("@roo did anyone check the login fix?")
    result = json.dumps(harness.server.requests_for("fast-a")[-1].json["messages"][-1])
    assert f"[task #{task.id}, Beaver \\u2192 Owl, done " in result
    assert "test the login fix on staging \\u2014 result: Login fix verified" in result


async def test_a_failed_run_fails_its_task(harness: Harness) -> None:
    harness.server.script(
        "smart-a",
        CallTool("handoff", {"agent": "owl", "task": "run the release checks"}),
        Fail(500),
        Fail(500),
        Fail(500),
    )
    harness.server.fail_always("smart-b", 503)
    await harness.say("@beaver please get this released")
    (task,) = await harness.storage.tasks.recent()
    assert task.status == "failed" and task.result.startswith("every model failed")


async def test_a_task_passed_on_points_to_the_next(harness: Harness) -> None:
    harness.server.script(
        "smart-a",
        CallTool("handoff", {"agent": "owl", "task": "test signup"}),
        CallTool("handoff", {"agent": "beaver", "task": "signup 500s: fix the validator"}),
        Reply("Fixed the validator."),
    )
    await harness.say("@beaver check signup")
    second, first = await harness.storage.tasks.recent()
    assert (first.from_agent, first.to_agent, first.status) == ("beaver", "owl", "handed_off")
    assert first.result == (
        f"Handed to Beaver as task #{second.id}: signup 500s: fix the validator"
    )
    assert (second.from_agent, second.to_agent) == ("owl", "beaver")
    assert (second.status, second.result) == ("done", "Fixed the validator.")


async def test_a_task_waits_with_its_run_and_ends_after_the_approval(harness: Harness) -> None:
    harness.server.script(
        "fast-a", CallTool("handoff", {"agent": "beaver", "task": "announce v2 in #releases"})
    )
    harness.server.script(
        "smart-a",
        CallTool("post_message", {"channel": "#releases", "text": "v2 is out"}),
        Reply("Announced."),
    )
    await harness.say("@roo v2 is ready")
    (open_task,) = await harness.storage.tasks.open()
    assert (open_task.to_agent, open_task.status) == ("beaver", "open")
    assert (await tasks_reply(harness))[1].startswith(f"• task `#{open_task.id}` Roo → Beaver, ")

    approval = next(r.approval_id for _, r in harness.adapter.posts if r.kind == "approval")
    # As after a restart: a new runtime resumes the stored run, task and all.
    fresh = Harness.build(harness.storage, harness.server)
    fresh.workers.start()
    try:
        await fresh.decide(approval)
    finally:
        await fresh.close()
    done = await harness.storage.tasks.get(open_task.id)
    assert done is not None and (done.status, done.result) == ("done", "Announced.")


async def test_no_tasks_yet(harness: Harness) -> None:
    assert await tasks_reply(harness) == [
        "No tasks yet: agents create them when they hand work to each other."
    ]


async def test_a_cut_handoff_loop_fails_the_last_task(harness: Harness) -> None:
    ping = CallTool("handoff", {"agent": "owl", "task": "your turn"})
    pong = CallTool("handoff", {"agent": "beaver", "task": "no, yours"})
    harness.server.script("smart-a", ping, pong, ping, pong)
    await harness.say("@beaver sort this out")
    tasks = sorted(await harness.storage.tasks.recent(), key=lambda t: t.id)
    assert [t.status for t in tasks] == ["handed_off", "handed_off", "failed"]
    assert tasks[-1].result.startswith("handoff loop stopped")
    assert await harness.storage.tasks.open() == []
