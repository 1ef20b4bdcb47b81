"""Cheap models for routine work: which tier a ``model: auto`` agent's run uses.

The team names two tiers (``auto: {simple: fast, complex: smart}``). A message's
difficulty comes from the router when the router routed it (its structured choice carries
it); otherwise one small classification call on the ``simple`` tier decides. A schedule's
fire or a handoff may name a tier outright. The choice and its reason are recorded on the
run."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

from corral.agents.llm.types import (
    AllModelsFailed,
    ChatMessage,
    NoModelConfigured,
    Request,
    ToolSpec,
)
from corral.agents.model_calls import CallContext, CallRefused, ModelCall
from corral.agents.prompt import HISTORY_TOKENS, cut_to
from corral.agents.team import Team

log = logging.getLogger("corral.runtime")

AUTO = "auto"
RATE_TOOL = "rate_difficulty"
Difficulty = Literal["simple", "complex"]
DIFFICULTIES: tuple[Difficulty, ...] = ("simple", "complex")

#: What the router and the classifier are told the two levels mean.
DIFFICULTY_HELP = (
    "simple: a short factual answer, a greeting, a lookup or a routine step; complex: "
    "anything that needs reasoning over several steps, writing more than a paragraph, "
    "code, planning or judgement."
)


@dataclass(frozen=True)
class ModelChoice:
    """The model spec a run calls, and why (empty: the agent's own ``model:``)."""

    spec: str = ""
    why: str = ""


def difficulty_property() -> dict[str, object]:
    """The JSON schema of a ``difficulty`` field, for the router's structured choice."""
    return {"type": "string", "enum": list(DIFFICULTIES), "description": DIFFICULTY_HELP}


def parse_difficulty(value: object) -> Difficulty | None:
    """``simple`` or ``complex`` from a model's answer; None for anything else."""
    text = str(value or "").strip().lower()
    return "simple" if text == "simple" else "complex" if text == "complex" else None


async def choose_model(
    team: Team,
    model_call: ModelCall,
    ctx: CallContext,
    text: str,
    *,
    tier: str = "",
    difficulty: Difficulty | None = None,
    why: str = "",
) -> ModelChoice:
    """The spec a run of ``ctx.agent`` on ``text`` calls: ``tier`` when a fire or a
    handoff named one, else for a ``model: auto`` agent the ``auto:`` tier of the
    message's ``difficulty`` (from the router, with ``why``) or, without one, of a
    classification call; else the agent's own model."""
    if tier:
        return ModelChoice(tier, why or f"tier {tier} named")
    agent = team.agent(ctx.agent)
    if agent.model != AUTO or team.auto is None:
        return ModelChoice()
    auto = team.auto
    if difficulty is None:
        difficulty, why = await _classify(model_call, ctx, auto.simple, text)
    spec = auto.simple if difficulty == "simple" else auto.complex
    return ModelChoice(spec, f"auto: {difficulty} — {why}")


async def _classify(
    model_call: ModelCall, ctx: CallContext, cheapest: str, text: str
) -> tuple[Difficulty, str]:
    """One small call on the cheapest tier; a failure picks the complex tier, since a
    routine message answered well costs less than a hard one answered badly."""
    request = Request(
        system=(
            "Rate how hard the message is to answer well. " + DIFFICULTY_HELP + " Answer "
            f"only by calling {RATE_TOOL}."
        ),
        messages=(ChatMessage.user(cut_to(text, HISTORY_TOKENS)),),
        tools=(
            ToolSpec(
                RATE_TOOL,
                "Say how hard the message is, with a one-line reason.",
                {
                    "type": "object",
                    "properties": {
                        "difficulty": difficulty_property(),
                        "reason": {"type": "string", "description": "One short line."},
                    },
                    "required": ["difficulty", "reason"],
                },
            ),
        ),
        force_tool=RATE_TOOL,
        max_tokens=100,
    )
    classify = CallContext(
        ctx.agent, ctx.place, ctx.run_id, "classify", cheapest, priority=ctx.priority
    )
    try:
        completion = await model_call(classify, request)
    except (AllModelsFailed, CallRefused, NoModelConfigured) as exc:
        log.warning("could not rate the message's difficulty: %s", exc)
        return "complex", "the difficulty could not be rated"
    for use in completion.tool_uses:
        level = parse_difficulty(use.input.get("difficulty"))
        if use.name == RATE_TOOL and level is not None:
            reason = " ".join(str(use.input.get("reason", "")).split())[:120]
            return level, f"rated by {completion.model}: {reason or 'no reason given'}"
    return "complex", "the rating was not usable"
