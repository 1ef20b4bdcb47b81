"""The tool-call seam: every call of a tool passes through a chain of wrappers composed
once in the composition root. A wrapper sees the tool, its arguments and its result: the
place for approval, permissions, audit, redaction of results and size limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.agents.tool import Tool, ToolContext, ToolError, ToolOutcome


@dataclass(frozen=True)
class ToolCall:
    """One call of ``tool`` with ``args``; ``approved_by`` names the human who approved
    this very call (empty when nobody was asked)."""

    tool: Tool
    args: Mapping[str, Any]
    approved_by: str = ""


ToolInvoker = Callable[[ToolContext, ToolCall], Awaitable[ToolOutcome]]


class ToolWrapper(Protocol):
    """One link of the chain: do something around ``call_next`` (or instead of it)."""

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome: ...


async def invoke_tool(ctx: ToolContext, call: ToolCall) -> ToolOutcome:
    """The innermost link: run the tool; a :class:`ToolError` becomes a result the model
    can act on."""
    try:
        return await call.tool.invoke(ctx, call.args)
    except ToolError as exc:
        return ToolOutcome(f"{call.tool.name} failed: {exc}", is_error=True)


class ApprovalGate:
    """A call of a tool on the agent's ``approval:`` list does not run until a human
    has approved that very call: the run waits for the decision instead."""

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """Wait for approval, or go on."""
        if ctx.toolset.needs_approval(call.tool.name) and not call.approved_by:
            return ToolOutcome("", waits_for_approval=True)
        return await call_next(ctx, call)


def tool_call_chain(
    wrappers: Sequence[ToolWrapper] = (),
    watchers: Sequence[ToolWrapper] = (),
    *,
    checks: Sequence[ToolWrapper] = (),
) -> ToolInvoker:
    """The tool call with ``wrappers`` around it, the first outermost, inside the
    :class:`ApprovalGate`: approvals are a promise of ``team.yaml``, not an option, and a
    call that waits for one has not happened for any wrapper to see. ``checks`` go
    around the gate: a call they refuse is never put to a human. ``watchers`` go around
    those: they see every call the model asked for, one that waits or is refused
    included (the audit), and must pass each on."""
    call: ToolInvoker = invoke_tool
    for wrapper in reversed((*watchers, *checks, ApprovalGate(), *wrappers)):
        call = _link(wrapper, call)
    return call


def _link(wrapper: ToolWrapper, call_next: ToolInvoker) -> ToolInvoker:
    async def call(ctx: ToolContext, tool_call: ToolCall) -> ToolOutcome:
        return await wrapper(ctx, tool_call, call_next)

    return call
