"""A schedule fires every minute at the most (``MIN_SCHEDULE_INTERVAL``): in team.yaml
(the error names file and line), and for an agent's ``schedule`` tool (a tool error the
model sees); commands are covered in tests/test_roles_commands.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import Harness, make_team

from corral.agents.team_loader import (
    MIN_SCHEDULE_INTERVAL,
    TeamFileError,
    load_team,
    schedule_interval,
)
from corral.storage.store import Storage

TEAM_FILE = """\
models:
  fast: [anthropic/claude-haiku-4-5]
agents:
  roo:
    display_name: Roo
    role: Operations lead
schedules:
  tick:
    every: {every}
    agent: roo
    channel: "#ops"
    prompt: Tick.
"""


def test_the_minimum_is_a_minute() -> None:
    assert MIN_SCHEDULE_INTERVAL.total_seconds() == 60
    assert schedule_interval("1m") == MIN_SCHEDULE_INTERVAL
    with pytest.raises(ValueError, match="at most every 1m"):
        schedule_interval("59s")


@pytest.mark.parametrize("every", ["2s", "30s", "59s"])
def test_team_yaml_refuses_a_schedule_more_often_than_a_minute(tmp_path: Path, every: str) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(TEAM_FILE.format(every=every), encoding="utf-8")
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line) == (str(path), 9)
    assert problem.message == (
        f"schedule `tick`: `{every}` is too often: a schedule fires at most every 1m (each "
        "fire is an agent's run)"
    )
    assert "1m at the least" in problem.fix
    assert f"{path}:9: schedule `tick`" in str(caught.value)


@pytest.mark.parametrize("every", ["1m", "90s", "1h"])
def test_team_yaml_takes_a_minute_or_more(tmp_path: Path, every: str) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(TEAM_FILE.format(every=every), encoding="utf-8")
    assert load_team(path).schedules["tick"].every == every


async def test_the_schedule_tool_tells_the_model_the_minimum(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team()
    roo = team.agents["roo"].model_copy(update={"tools": ["schedule", "escalate"]})
    team = team.model_copy(update={"agents": {**team.agents, "roo": roo}})
    h = Harness.build(storage, model_server, team)
    h.workers.start()
    too_often = {"cron_or_every": "every 10s", "prompt": "Ping.", "channel": "#ops"}
    try:
        model_server.script(
            "fast-a", CallTool("schedule", too_often), Reply("I cannot go below a minute.")
        )
        await h.say("@roo ping #ops every ten seconds")
    finally:
        await h.close()
    assert await storage.schedules.all() == []
    refusal = model_server.requests_for("fast-a")[-1].json["messages"][-1]["content"][0]
    assert refusal["is_error"] is True
    assert "`10s` is too often: a schedule fires at most every 1m" in str(refusal["content"])
