"""Cheap models for routine work: ``model: auto`` picks the tier per message (the router's
rating when it routed, else one classification call on the cheap tier), records the
choice and its reason on the run; schedules and handoffs may name a tier."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from fakes.model_server import CallTool, FakeModelServer, Reply
from harness import TEAM, Harness, RecordingAdapter, make_team

from corral.agents.conversation import Place
from corral.agents.model_calls import BACKGROUND
from corral.agents.model_choice import RATE_TOOL
from corral.agents.runtime import Turn
from corral.storage.store import Storage


def _rated(server: FakeModelServer) -> int:
    """How many classification calls the fake received."""
    return sum(
        1 for r in server.requests for t in r.json.get("tools", []) if t.get("name") == RATE_TOOL
    )


@pytest.fixture
async def auto(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Harness]:
    agents = dict(TEAM["agents"])
    agents["owl"] = {**agents["owl"], "model": "auto", "channels": []}
    team = make_team(agents=agents, auto={"simple": "fast", "complex": "smart"})
    built = Harness.build(storage, model_server, team=team)
    built.workers.start()
    yield built
    await built.close()


async def test_a_routine_message_goes_to_the_cheap_tier_after_one_small_rating(
    auto: Harness,
) -> None:
    await auto.say("@owl is the build green?")
    (answer,) = auto.adapter.texts()
    assert answer.startswith("[fast-a]")
    assert _rated(auto.server) == 1
    (run,) = await auto.storage.runs.recent()
    assert run.model == "anthropic/fast-a"
    assert run.model_choice.startswith("auto: simple — rated by anthropic/fast-a")


async def test_a_hard_message_goes_to_the_strong_tier(auto: Harness) -> None:
    await auto.say("@owl please design the test plan for the payments migration")
    (answer,) = auto.adapter.texts()
    assert answer.startswith("[smart-a]")
    (run,) = await auto.storage.runs.recent()
    assert run.model == "anthropic/smart-a"
    assert run.model_choice.startswith("auto: complex — ")
    assert "'design' asks for real work" in run.model_choice


async def test_the_routers_rating_saves_the_classification_call(auto: Harness) -> None:
    # Not addressed, no channel default: the router picks owl, and rates the message.
    await auto.say("please run the tests again", channel="C0RANDOM", channel_name="#random")
    answers = auto.adapter.texts()
    assert answers[-1].startswith("[fast-a]")
    assert _rated(auto.server) == 0
    owl_run = next(r for r in await auto.storage.runs.recent() if r.agent == "owl")
    assert owl_run.model_choice.startswith("auto: simple — router: ")


async def test_a_failed_rating_uses_the_strong_tier_and_says_why(auto: Harness) -> None:
    auto.server.fail_always("fast-a", 400)
    auto.server.fail_always("fast-b", 400)
    await auto.say("@owl is the build green?")
    assert auto.adapter.texts()[-1].startswith("[smart-a]")
    (run,) = await auto.storage.runs.recent()
    assert run.model_choice == "auto: complex — the difficulty could not be rated"


async def test_a_scheduled_fire_may_name_a_tier(harness: Harness) -> None:
    adapter = RecordingAdapter()
    place = Place("test", "C0GEN", "schedule-f1", "#general")
    turn = Turn(
        place, "beaver", "schedule `digest`", "Sum up the day.", priority=BACKGROUND, tier="fast"
    )
    await harness.runtime.handle(turn, adapter.say)
    assert adapter.texts()[-1].startswith("[fast-a]")  # beaver's own model is smart
    (run,) = await harness.storage.runs.recent()
    assert run.model == "anthropic/fast-a" and run.model_choice == "tier fast named"


async def test_a_handoff_may_name_a_tier(harness: Harness) -> None:
    harness.server.script(
        "fast-a",
        CallTool("handoff", {"agent": "beaver", "task": "rename the button", "tier": "fast"}),
        Reply("Renamed."),
    )
    await harness.say("@roo rename the button")
    assert harness.adapter.texts()[-1] == "Renamed."
    beaver = next(r for r in await harness.storage.runs.recent() if r.agent == "beaver")
    assert beaver.model == "anthropic/fast-a" and beaver.model_choice == "tier fast named"


async def test_a_handoff_to_an_unknown_tier_is_refused_to_the_model(harness: Harness) -> None:
    harness.server.script(
        "fast-a",
        CallTool("handoff", {"agent": "beaver", "task": "x", "tier": "turbo"}),
        Reply("I'll do it myself."),
    )
    await harness.say("@roo do x")
    assert harness.adapter.texts()[-1] == "I'll do it myself."
    second = harness.server.requests_for("fast-a")[1].json
    assert "there is no model tier `turbo`" in str(second["messages"])
