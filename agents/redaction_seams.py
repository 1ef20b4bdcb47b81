"""Redaction in the run's seams: what goes to a model, and what a tool is given and
gives back, with every secret replaced (:mod:`corral.agents.redaction`). Composed in
the composition root (``bot/limits.py``), outermost, so that no other wrapper (a
tracer, an audit) ever sees a secret either."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from corral.agents.llm.types import (
    Block,
    ChatMessage,
    Completion,
    Request,
    TextBlock,
    ToolResult,
    ToolSpec,
    ToolUse,
)
from corral.agents.model_calls import CallContext, ModelCall
from corral.agents.tool import ToolContext, ToolOutcome
from corral.agents.tool_calls import ToolCall, ToolInvoker

Redact = Callable[[str], str]


def redact_value(value: Any, redact: Redact) -> Any:
    """``value`` (a tool's arguments: text, or lists and mappings of it) with every text
    in it redacted; numbers and the like as they are."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_value(v, redact) for k, v in value.items()}
    if isinstance(value, Sequence):
        return [redact_value(v, redact) for v in value]
    return value


def redact_request(request: Request, redact: Redact) -> Request:
    """``request`` with every text a model would read redacted: the system prompt (with
    its memories), each message of the thread, tool calls' inputs and tool results, and
    the tools' descriptions."""
    return replace(
        request,
        system=redact(request.system),
        messages=tuple(
            ChatMessage(m.role, tuple(_block(b, redact) for b in m.content))
            for m in request.messages
        ),
        tools=tuple(ToolSpec(t.name, redact(t.description), t.parameters) for t in request.tools),
    )


def _block(block: Block, redact: Redact) -> Block:
    match block:
        case TextBlock(text=text):
            return TextBlock(redact(text))
        case ToolUse():
            return replace(block, input=redact_value(block.input, redact))
        case ToolResult(content=content):
            return replace(block, content=redact(content))


def _answered(block: TextBlock | ToolUse, redact: Redact) -> TextBlock | ToolUse:
    if isinstance(block, TextBlock):
        return TextBlock(redact(block.text))
    return replace(block, input=redact_value(block.input, redact))


class RedactingModelWrapper:
    """Nothing reaches a model before it is redacted: every text of the request, for an
    agent's turn, the router's pick and the classifier's alike. What the model answers
    is redacted too (a team pattern it wrote, a secret it made up), before the run
    keeps, stores or acts on it."""

    def __init__(self, redact: Redact) -> None:
        self.redact = redact

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion:
        """Call on with the request redacted; redact the completion."""
        completion = await call_next(ctx, redact_request(request, self.redact))
        blocks = tuple(_answered(b, self.redact) for b in completion.blocks)
        return replace(completion, blocks=blocks)


class RedactingToolWrapper:
    """A tool is given its arguments redacted (what ``remember`` stores, what
    ``schedule`` keeps as its prompt) and gives back its result redacted (an MCP
    server's answer, a recalled memory), a handoff's task too."""

    def __init__(self, redact: Redact) -> None:
        self.redact = redact

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """Call on with the arguments redacted; redact the result."""
        args = redact_value(call.args, self.redact)
        outcome = await call_next(ctx, replace(call, args=args))
        handoff = outcome.handoff
        if handoff is not None:
            handoff = replace(handoff, task=self.redact(handoff.task))
        return replace(outcome, content=self.redact(outcome.content), handoff=handoff)
