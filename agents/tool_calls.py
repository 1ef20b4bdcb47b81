"""The tool-call seam: every call of a tool passes through a chain of wrappers composed
once in the composition root. A wrapper sees the tool, its arguments and its result: the
place for approval, permissions, audit, redaction of results and size limits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.agents.tool import Tool, ToolContext, ToolError, ToolOutcome
from corral.agents.untrusted import quoted_result


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
        waits = ctx.toolset.needs_approval(call.tool.name, untrusted=ctx.untrusted)
        if waits and not call.approved_by:
            return ToolOutcome("", waits_for_approval=True)
        return await call_next(ctx, call)


class QuoteResults:
    """A result that carries outside content reaches the model quoted as data and marks
    the run as having read untrusted content (:func:`~corral.agents.untrusted.quoted_result`)."""

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """Quote what the call gave back."""
        return quoted_result(call.tool, await call_next(ctx, call))


def tool_call_chain(
    wrappers: Sequence[ToolWrapper] = (),
    watchers: Sequence[ToolWrapper] = (),
    *,
    checks: Sequence[ToolWrapper] = (),
) -> ToolInvoker:
    """The tool call with ``wrappers`` around it, the first outermost, inside the
    :class:`ApprovalGate` and :class:`QuoteResults`: approvals and quoting are promises,
    not options; a call that waits for approval has not happened for any wrapper to see,
    and every wrapper sees a result as the tool gave it. ``checks`` go around the gate: a
    call they refuse is never put to a human. ``watchers`` go around those: they see
    every call the model asked for, one that waits or is refused included (the audit),
    and must pass each on."""
    call: ToolInvoker = invoke_tool
    chain: tuple[ToolWrapper, ...] = (
        *watchers,
        *checks,
        ApprovalGate(),
        QuoteResults(),
        *wrappers,
    )
    for wrapper in reversed(chain):
        call = _link(wrapper, call)
    return call


def _link(wrapper: ToolWrapper, call_next: ToolInvoker) -> ToolInvoker:
    async def call(ctx: ToolContext, tool_call: ToolCall) -> ToolOutcome:
        return await wrapper(ctx, tool_call, call_next)

    return call
