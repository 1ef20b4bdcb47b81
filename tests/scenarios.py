"""Platform-neutral conversations that Slack and Discord must both get right.

Each scenario is what people say (where, whether they address the app, whether they
reply in the conversation so far) and who answers, where, with what. Every platform's
end-to-end suite plays the whole table through its own rig (tests/test_slack_e2e.py,
tests/test_discord_e2e.py), so the two cannot drift apart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from fakes.model_server import CallTool, FakeModelServer, Reply

from corral.storage.store import Storage

#: The places every rig has: a plain channel, one bound to Beaver (team.yaml `channels`),
#: and a direct message with the app.
PLACES = ("general", "dev", "dm")


@dataclass(frozen=True)
class Say:
    """A person's message. ``to_app``: the app is mentioned (a DM always is);
    ``follow_up``: a reply in the conversation the place's previous message started."""

    text: str
    place: str = "general"
    to_app: bool = True
    follow_up: bool = False


@dataclass(frozen=True)
class Answer:
    """A post of the team: where, under which agent's name, containing what."""

    place: str
    agent: str
    contains: str = ""
    #: The post calls the team's approver by the platform's mention.
    calls_approver: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    says: tuple[Say, ...]
    answers: tuple[Answer, ...]
    #: How the last message was routed (the start of the recorded reason); "" = no run.
    reason: str = ""
    script: Callable[[FakeModelServer], None] | None = None


class ChatRig(Protocol):
    """A platform's end-to-end rig, as the scenarios drive it."""

    models: FakeModelServer
    storage: Storage
    #: How the platform writes a mention of the team's approver.
    approver_mention: str

    async def say(self, say: Say, conversation: Any) -> Any:
        """Deliver ``say`` the way the platform does; ``conversation`` is what an earlier
        ``say`` in the same place returned (for follow-ups). Returns this message's."""
        ...

    async def settled(self) -> None:
        """Wait until every delivered message has been handled."""
        ...

    def answers(self) -> list[tuple[str, str, str]]:
        """The team's posts so far, in order: (place, agent display name, text)."""
        ...


def _handoff(models: FakeModelServer) -> None:
    models.script(
        "smart-a",
        CallTool("handoff", {"agent": "owl", "task": "test the fix"}),
        Reply("Owl here: tested, all green."),
    )


def _outage(models: FakeModelServer) -> None:
    models.fail_always("smart-a", 500)
    models.fail_always("smart-b", 503)


SCENARIOS = (
    Scenario(
        "the app mentioned, then an agent's name",
        (Say("beaver the login page throws a 500"),),
        (Answer("general", "Beaver", "the login page throws a 500"),),
        reason="addressed: @beaver",
    ),
    Scenario(
        "a plain @name without mentioning the app",
        (Say("@owl can you re-test?", to_app=False),),
        (Answer("general", "Owl", "can you re-test?"),),
        reason="addressed: @owl",
    ),
    Scenario(
        "the app mentioned in a channel bound to an agent",
        (Say("the build is red", place="dev"),),
        (Answer("dev", "Beaver", "the build is red"),),
        reason="channel default",
    ),
    Scenario(
        "a follow-up without a mention stays with the conversation's agent",
        (
            Say("@owl is the release tested?", to_app=False),
            Say("and the hotfix?", to_app=False, follow_up=True),
        ),
        (Answer("general", "Owl"), Answer("general", "Owl", "and the hotfix?")),
        reason="thread owner",
    ),
    Scenario(
        "a direct message reaches the router, which picks the agent",
        (Say("are the releases tested?", place="dm"),),
        (Answer("dm", "Owl", "are the releases tested?"),),
        reason="router",
    ),
    Scenario(
        "a message not for the team gets no answer",
        (Say("lunch at noon?", to_app=False),),
        (),
    ),
    Scenario(
        "a handoff shows in the conversation, then the other agent answers",
        (Say("beaver the login fix is merged"),),
        (
            Answer("general", "Beaver", "Beaver → Owl: test the fix"),
            Answer("general", "Owl", "tested, all green"),
        ),
        reason="handoff from beaver",
        script=_handoff,
    ),
    Scenario(
        "a model outage ends in a visible message that calls a human",
        (Say("beaver fix the build"),),
        (Answer("general", "Beaver", "could not finish: every model failed", calls_approver=True),),
        reason="addressed: @beaver",
        script=_outage,
    ),
)


async def inbox_settled(storage: Storage) -> None:
    """Wait (up to 10 s) until every message stored in the inbox is finished."""

    async def busy() -> int:
        counts = await storage.inbox.count_by_status()
        return counts.get("pending", 0) + counts.get("working", 0)

    await asyncio.sleep(0.05)
    for _ in range(500):
        if not await busy():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("messages still in progress")


async def play(rig: ChatRig, scenario: Scenario) -> None:
    """Play ``scenario`` through ``rig`` and check who answered, where, and why."""
    if scenario.script is not None:
        scenario.script(rig.models)
    last: dict[str, Any] = {}
    for say in scenario.says:
        last[say.place] = await rig.say(say, last.get(say.place) if say.follow_up else None)
        await rig.settled()
    answers = rig.answers()
    assert [(place, agent) for place, agent, _ in answers] == [
        (a.place, a.agent) for a in scenario.answers
    ], answers
    for want, (_, _, text) in zip(scenario.answers, answers, strict=True):
        assert want.contains in text, (want, text)
        assert (rig.approver_mention in text) == want.calls_approver, (want, text)
    runs = await rig.storage.runs.recent(limit=1)
    if scenario.reason:
        assert runs and runs[0].route_reason.startswith(scenario.reason), runs
    else:
        assert runs == []
