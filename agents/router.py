"""The router agent's choice: one cheap model call that names who should answer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from corral.agents.llm.types import ChatMessage, ModelClient, Request, ToolSpec
from corral.agents.model_choice import AUTO, Difficulty, difficulty_property, parse_difficulty
from corral.agents.team import Team

CHOOSE_TOOL = "choose_agent"


@dataclass(frozen=True)
class Choice:
    agent: str
    reason: str
    #: How hard the message is, when the team has ``model: auto`` agents to pick for.
    difficulty: Difficulty | None = None


class RouterError(Exception):
    """The router's model answered, but not with a usable choice."""


def rates_difficulty(team: Team) -> bool:
    """Whether the router's choice carries the message's difficulty: when some agent
    picks its tier by it (``model: auto``)."""
    return team.auto is not None and any(a.model == AUTO for a in team.agents.values())


def _choose_spec(team: Team, among: Sequence[str]) -> ToolSpec:
    properties: dict[str, object] = {
        "agent": {"type": "string", "enum": list(among)},
        "reason": {"type": "string", "description": "One short line."},
    }
    required = ["agent", "reason"]
    if rates_difficulty(team):
        properties["difficulty"] = difficulty_property()
        required.append("difficulty")
    return ToolSpec(
        CHOOSE_TOOL,
        "Name the one teammate who should answer the message, with a one-line reason.",
        {"type": "object", "properties": properties, "required": required},
    )


def _router_system(team: Team, among: Sequence[str]) -> str:
    roster = "\n".join(f"- {h}: {team.agents[h].role}" for h in among)
    return (
        "You route chat messages to the teammate best placed to answer. "
        "Choose from this team (handle: role):\n"
        f"{roster}\n"
        "Answer only by calling the choose_agent tool."
    )


async def choose(
    team: Team, client: ModelClient, text: str, among: Sequence[str] | None = None
) -> Choice:
    """Ask the router's model who of ``among`` (default: the whole team) should answer
    ``text``.

    Raises the model layer's errors, or :class:`RouterError` for an unusable answer.
    """
    among = list(team.agents) if among is None else list(among)
    request = Request(
        system=_router_system(team, among),
        messages=(ChatMessage.user(text),),
        tools=(_choose_spec(team, among),),
        force_tool=CHOOSE_TOOL,
        max_tokens=200,
    )
    completion = await client.complete(request)
    for use in completion.tool_uses:
        if use.name != CHOOSE_TOOL:
            continue
        agent = str(use.input.get("agent", "")).lstrip("@").lower()
        if agent not in among:
            raise RouterError(f"the router chose `{agent}`, which is not an agent it may pick")
        reason = " ".join(str(use.input.get("reason", "")).split())[:120]
        return Choice(agent, reason or "best fit", parse_difficulty(use.input.get("difficulty")))
    raise RouterError("the router's model did not call choose_agent")
