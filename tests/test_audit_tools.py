"""Every tool call is audited through the real runtime, on SQLite and PostgreSQL: who
called what with which (redacted, cut) arguments, where, and how it ended — ok, error,
waiting for approval, refused by a wrapper."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from typing import Any

from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import TEAM, Harness, make_team

from corral.agents.builtin_tools import BUILTIN_TOOLS
from corral.agents.llm.registry import ModelRegistry
from corral.agents.seams import Seams
from corral.agents.tool import Tool, ToolContext, ToolOutcome
from corral.agents.tool_audit import ARGS_LIMIT, ToolAudit
from corral.agents.tool_calls import ToolCall, ToolInvoker
from corral.bot.limits import compose_limits, in_process_stores
from corral.storage.audit import AuditEntry, Where
from corral.storage.store import Storage


async def _tool_calls(storage: Storage) -> list[AuditEntry]:
    return list(reversed(await storage.audit.query(action_prefix="tool.", limit=100)))


async def test_a_tool_call_is_audited_with_agent_place_arguments_and_outcome(
    harness: Harness,
) -> None:
    harness.server.script(
        "smart-a",
        CallTool("remember", {"text": "Releases ship on Tuesdays", "scope": "team"}),
        Reply("Noted."),
    )
    await harness.say("@owl remember that releases ship on Tuesdays", channel="C0QA")
    (entry,) = await _tool_calls(harness.storage)
    assert (entry.actor, entry.action, entry.subject, entry.agent, entry.outcome) == (
        "agent:owl",
        "tool.call",
        "remember",
        "owl",
        "ok",
    )
    assert json.loads(entry.detail) == {"text": "Releases ship on Tuesdays", "scope": "team"}
    assert entry.where == Where("test", "C0QA", "m0")


async def test_a_tool_that_fails_is_audited_as_an_error(harness: Harness) -> None:
    harness.server.script(
        "smart-a", CallTool("handoff", {"agent": "roo", "task": "x"}), Reply("I'll do it myself.")
    )
    await harness.say("@owl please hand this over", channel="C0QA")
    (entry,) = await _tool_calls(harness.storage)
    assert (entry.subject, entry.outcome) == ("handoff", "error")


async def test_a_tool_the_agent_was_not_given_is_audited_too(harness: Harness) -> None:
    # Reaching past its grants is what an audit must show.
    harness.server.script(
        "smart-a",
        CallTool("schedule", {"cron_or_every": "1h", "prompt": "x", "channel": "#qa"}),
        Reply("I cannot schedule that."),
    )
    await harness.say("@owl schedule a check every hour", channel="C0QA")
    (entry,) = await _tool_calls(harness.storage)
    assert (entry.actor, entry.subject, entry.agent, entry.outcome) == (
        "agent:owl",
        "schedule",
        "owl",
        "error",
    )
    assert json.loads(entry.detail)["cron_or_every"] == "1h"


async def test_a_call_waiting_for_approval_is_audited_then_its_run_once_approved(
    harness: Harness,
) -> None:
    harness.server.script(
        "smart-a",
        CallTool("post_message", {"channel": "#releases", "text": "v2 is out"}),
        Reply("Announced in #releases."),
    )
    await harness.say("@beaver announce v2", channel="C0DEV", channel_name="#dev")
    ((_, ask),) = harness.adapter.posts
    (waiting,) = await _tool_calls(harness.storage)
    assert (waiting.subject, waiting.agent, waiting.outcome) == (
        "post_message",
        "beaver",
        "waiting",
    )

    assert await harness.decide(ask.approval_id, by="U0ADMIN") is not None
    waiting_again, ran = await _tool_calls(harness.storage)
    assert waiting_again == waiting
    assert (ran.subject, ran.outcome) == ("post_message", "ok")
    assert json.loads(ran.detail) == {"channel": "#releases", "text": "v2 is out"}
    assert ran.where == waiting.where == Where("test", "C0DEV", "m0")
    (decided,) = await harness.storage.audit.query(action_prefix="approval.")
    assert (decided.actor, decided.agent, decided.outcome) == ("U0ADMIN", "beaver", "approved")
    assert decided.where == waiting.where


def _team_with(tool: str) -> Any:
    agents = dict(TEAM["agents"])
    agents["owl"] = {**agents["owl"], "tools": ["memory", tool]}
    return make_team(agents=agents)


async def _explode(ctx: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    raise RuntimeError("the disk is on fire")


EXPLODE = Tool("explode", "Fails.", {"type": "object", "properties": {}}, _explode)


class RefuseAll:
    """A tool-call wrapper that lets nothing through (as a permission check would)."""

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        return ToolOutcome("You may not do that here.", is_error=True)


async def test_a_call_a_wrapper_refuses_is_audited_as_refused(
    storage: Storage, model_server: FakeModelServer
) -> None:
    def compose(models: ModelRegistry) -> Seams:
        audit = ToolAudit(storage.audit, lambda s: s)
        return Seams.compose(
            models.client_for,
            tool_wrappers=[RefuseAll(), audit.reached],
            tool_watchers=[audit],
        )

    harness = Harness.build(storage, model_server, compose=compose)
    harness.workers.start()
    try:
        harness.server.script(
            "smart-a", CallTool("remember", {"text": "x"}), Reply("I was not allowed.")
        )
        await harness.say("@owl remember x", channel="C0QA")
    finally:
        await harness.close()
    (entry,) = await _tool_calls(storage)
    assert (entry.subject, entry.outcome) == ("remember", "refused")
    assert await storage.memory.list(limit=None) == []


async def test_arguments_are_redacted_and_a_tool_that_raises_is_audited(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = _team_with("explode")

    def compose(models: ModelRegistry) -> Seams:
        run = compose_limits(
            team,
            storage,
            models.client_for,
            in_process_stores(),
            UTC,
            redact=lambda s: s.replace("hunter2", "[redacted: password]"),
        )
        return Seams(run.seams.model_call, run.seams.tool_call, BUILTIN_TOOLS.with_tools(EXPLODE))

    harness = Harness.build(storage, model_server, team=team, compose=compose)
    harness.workers.start()
    try:
        harness.server.script(
            "smart-a",
            CallTool("remember", {"text": "the vault password is hunter2"}),
            CallTool("explode", {"why": "hunter2"}),
        )
        await harness.say("@owl remember the vault password", channel="C0QA")
    finally:
        await harness.close()
    remembered, exploded = await _tool_calls(storage)
    assert json.loads(remembered.detail) == {"text": "the vault password is [redacted: password]"}
    assert (exploded.subject, exploded.outcome) == ("explode", "error")
    assert json.loads(exploded.detail) == {"why": "[redacted: password]"}
    rows = await storage.audit.query(limit=100)
    assert all("hunter2" not in e.detail for e in rows)


def test_long_arguments_are_cut_with_a_note_after_redaction() -> None:
    seen: list[str] = []

    def redact(text: str) -> str:
        seen.append(text)
        return text

    audit = ToolAudit(None, redact)  # type: ignore[arg-type]  # detail() writes nothing
    detail = audit.detail({"text": "x" * 5000, "n": 3})
    assert detail.startswith('{"text": "xxx') and len(detail) < ARGS_LIMIT + 60
    assert detail.endswith("… (cut: 5,020 characters in all)")
    # Every text on its own, then the whole JSON, uncut, went through the redactor.
    assert seen[0] == "x" * 5000 and len(seen[-1]) == 5020
    assert audit.detail({"text": "short"}) == '{"text": "short"}'
