"""The run's seams: a tool and wrappers added in a composition root of the test's own,
without touching agents/runtime.py; paused runs of an earlier format; plain failures."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fakes.model_server import CallTool, Fail, FakeModelServer, Reply
from harness import TEAM, Harness, make_team

from corral.agents.builtin_tools import BUILTIN_TOOLS
from corral.agents.llm.registry import ModelRegistry
from corral.agents.llm.types import Completion, Request, TextBlock
from corral.agents.model_calls import CallContext, ModelCall
from corral.agents.run_state import FORMAT, RunState, UnknownRunFormat
from corral.agents.seams import Seams
from corral.agents.team_loader import TeamFileError, load_team
from corral.agents.tool import Tool, ToolContext, ToolOutcome
from corral.agents.tool_calls import ToolCall, ToolInvoker
from corral.storage.store import RunStart, Storage


async def _weather(ctx: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
    return ToolOutcome(f"Sunny in {args['city']} (asked by {ctx.handle}, run {ctx.run_id})")


WEATHER = Tool(
    "weather",
    "Today's weather in a city.",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    _weather,
)


class ModelLog:
    """A model-call wrapper: sees every call's context, request and completion."""

    def __init__(self) -> None:
        self.calls: list[tuple[CallContext, Request, Completion]] = []

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion:
        completion = await call_next(ctx, request)
        self.calls.append((ctx, request, completion))
        return completion


class ToolLog:
    """A tool-call wrapper: sees the tool, its arguments and its result."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Mapping[str, Any], str]] = []

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        outcome = await call_next(ctx, call)
        self.calls.append((call.tool.name, call.args, outcome.content))
        return outcome


def _team_with_weather() -> dict[str, Any]:
    agents = dict(TEAM["agents"])
    agents["owl"] = {**agents["owl"], "tools": ["memory", "handoff", "weather"]}
    return {**TEAM, "agents": agents}


@pytest.fixture
async def seamed(
    storage: Storage, model_server: FakeModelServer
) -> AsyncIterator[tuple[Harness, ModelLog, ToolLog]]:
    models_log, tools_log = ModelLog(), ToolLog()

    def compose(models: ModelRegistry) -> Seams:
        return Seams.compose(
            models.client_for,
            model_wrappers=[models_log],
            tool_wrappers=[tools_log],
            tools=BUILTIN_TOOLS.with_tools(WEATHER),
        )

    team = make_team(agents=_team_with_weather()["agents"])
    built = Harness.build(storage, model_server, team=team, compose=compose)
    built.workers.start()
    yield built, models_log, tools_log
    await built.close()


async def test_a_tool_and_wrappers_join_in_the_composition_root(
    seamed: tuple[Harness, ModelLog, ToolLog],
) -> None:
    harness, models_log, tools_log = seamed
    harness.server.script("smart-a", CallTool("weather", {"city": "Oslo"}), Reply("It is sunny."))
    await harness.say("@owl what's the weather in Oslo?", channel="C0QA")

    assert harness.adapter.texts() == ["It is sunny."]
    (run,) = await harness.storage.runs.recent()
    # The model was offered the new tool, and the wrapper saw both calls of the run.
    first_request = harness.server.requests_for("smart-a")[0].json
    assert "weather" in json.dumps(first_request["tools"])
    assert [(c.agent, c.purpose, c.run_id, c.model) for c, _, _ in models_log.calls] == [
        ("owl", "answer", run.id, "smart"),
        ("owl", "answer", run.id, "smart"),
    ]
    assert models_log.calls[-1][2].text == "It is sunny."
    ((name, args, result),) = tools_log.calls
    assert (name, dict(args)) == ("weather", {"city": "Oslo"})
    assert result == f"Sunny in Oslo (asked by owl, run {run.id})"


async def test_a_model_wrapper_sees_the_router_and_may_answer_instead(
    storage: Storage, model_server: FakeModelServer
) -> None:
    """A wrapper may answer without calling the model (a cache, a budget's refusal)."""
    seen: list[str] = []

    async def canned(ctx: CallContext, request: Request, call_next: ModelCall) -> Completion:
        seen.append(ctx.purpose)
        if ctx.purpose == "route":
            return await call_next(ctx, request)
        return Completion((TextBlock("From the wrapper."),), model="wrapper/none")

    def compose(models: ModelRegistry) -> Seams:
        return Seams.compose(models.client_for, model_wrappers=[canned])

    harness = Harness.build(storage, model_server, compose=compose)
    harness.workers.start()
    try:
        model_server.script("fast-a", CallTool("route", {"agent": "roo", "reason": "general"}))
        await harness.say("hello team", channel="C0OTHER", channel_name="#random")
    finally:
        await harness.close()
    assert seen == ["route", "answer"]
    assert harness.adapter.texts() == ["From the wrapper."]
    (run,) = await harness.storage.runs.recent()
    assert run.model == "wrapper/none"


def test_the_loader_checks_tools_against_the_registry_it_is_given(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(json.dumps(_team_with_weather()))  # JSON is YAML
    with pytest.raises(TeamFileError) as refused:
        load_team(path)
    assert "unknown tool `weather`" in str(refused.value)
    team = load_team(path, BUILTIN_TOOLS.with_tools(WEATHER))
    assert "weather" in BUILTIN_TOOLS.with_tools(WEATHER).toolset(team.agent("owl")).tools


#: A paused run exactly as the Corral before format stamps stored it (approvals.state).
UNSTAMPED_STATE: dict[str, Any] = {
    "run_id": "",  # set by the test to a run it started
    "agent": "beaver",
    "place": ["test", "C0GEN", "m1", "#general"],
    "route_reason": "addressed: @beaver",
    "query": "@beaver announce v2",
    "messages": [
        {"role": "user", "content": [{"type": "text", "text": "[U1]: @beaver announce v2"}]},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "post_message",
                    "input": {"channel": "#releases", "text": "v2 is out"},
                }
            ],
        },
    ],
    "step": 1,
    "depth": 0,
    "chain": ["beaver"],
    "inbox_id": None,
    "tokens_in": 10,
    "tokens_out": 5,
    "model": "smart-a",
    "pending": [
        {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "post_message",
            "input": {"channel": "#releases", "text": "v2 is out"},
        }
    ],
    "results": [],
}


async def test_a_run_paused_by_the_previous_version_resumes(harness: Harness) -> None:
    run_id, _ = await harness.storage.start_run(
        RunStart("beaver", "addressed: @beaver", "test", "C0GEN", "m1"), 10
    )
    state = {**UNSTAMPED_STATE, "run_id": run_id}
    record = await harness.storage.approvals.create(
        kind="tool",
        agent="beaver",
        summary="Beaver wants to run `post_message`",
        run_id=run_id,
        platform="test",
        channel="C0GEN",
        thread="m1",
        state=state,
    )
    harness.server.script("smart-a", Reply("Announced."))
    decided = await harness.storage.approvals.decide(
        record.id, status="approved", by="U0ADMIN", kind="tool"
    )
    assert decided is not None
    outcome = await harness.runtime.resume(decided, harness.adapter.say)
    assert outcome.outcome == "ok"
    posted = [(p.channel, r.text) for p, r in harness.adapter.posts]
    assert posted == [("#releases", "v2 is out"), ("C0GEN", "Announced.")]
    run = await harness.storage.runs.get(run_id)
    assert run is not None and run.outcome == "ok" and run.tokens_in >= 10


def test_run_state_round_trips_with_its_format_and_refuses_a_newer_one() -> None:
    state = RunState.from_json({**UNSTAMPED_STATE, "run_id": "r-1"})
    assert state.task_id is None and state.pending[0].name == "post_message"
    stored = state.to_json()
    assert stored["format"] == FORMAT
    assert RunState.from_json(stored) == state
    with pytest.raises(UnknownRunFormat):
        RunState.from_json({**stored, "format": FORMAT + 1})


async def test_a_provider_error_reaches_the_thread_in_plain_words(harness: Harness) -> None:
    leak = "invalid key at https://api.example/v1?api_key=sk-secret-123"
    harness.server.script("smart-a", Fail(401, message=leak))
    harness.server.script("smart-b", Fail(401, message=leak))
    await harness.say("@beaver hi")
    (text,) = harness.adapter.texts()
    assert text.startswith("Beaver could not finish: every model failed")
    assert "the API key was refused" in text
    (run,) = await harness.storage.runs.recent()
    assert f"run {run.id}" in text
    assert "sk-secret" not in text and "api_key" not in text and "sk-secret" not in run.error


async def test_an_internal_error_shows_no_exception_text(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> list[object]:
        raise RuntimeError("(OperationalError) no such table [SQL: SELECT memories.id]")

    monkeypatch.setattr(harness.storage.memory, "list", broken)
    await harness.say("@beaver hi")
    (text,) = harness.adapter.texts()
    (run,) = await harness.storage.runs.recent()
    assert text.startswith("Beaver could not finish: internal error")
    assert f"run {run.id}" in text
    assert "SELECT" not in text and "OperationalError" not in text


async def test_every_post_of_a_run_is_in_the_thread_and_the_owner_is_set_once(
    harness: Harness,
) -> None:
    harness.server.script("smart-a", CallTool("handoff", {"agent": "owl", "task": "test v2"}))
    harness.server.script("smart-a", Reply("v2 passes."))
    await harness.say("@beaver get v2 tested")
    (place, _), *_ = harness.adapter.posts
    history = await harness.storage.transcript.history(place.key)
    said = [(e.agent, e.text) for e in history if e.agent]
    assert said == [("beaver", "Beaver → Owl: test v2"), ("owl", "v2 passes.")]
    assert await harness.storage.threads.owner(place.key) == "owl"
