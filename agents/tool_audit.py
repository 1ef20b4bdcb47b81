"""The audit of tool calls: one row for every call a model asks for, with what it was
given (redacted) and how it ended."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

from corral.agents.tool import ToolContext, ToolOutcome
from corral.agents.tool_calls import ToolCall, ToolInvoker
from corral.storage.audit import AuditLog, Where

#: The most of a call's arguments a row keeps, in characters; the rest is cut, with a note.
ARGS_LIMIT = 2_000

#: Set by the audit around one call, marked by :meth:`ToolAudit.reached` when the call
#: got through every wrapper to the tool. A list, not a flag: a wrapper that runs the
#: rest of the chain in a task of its own works on a copy of the context, and the copy
#: holds the same list.
_REACHED: ContextVar[list[bool] | None] = ContextVar("corral_tool_reached", default=None)


class ToolAudit:
    """Records every tool call in the audit: actor ``agent:<handle>``, action
    ``tool.call``, subject the tool's name, detail its arguments as JSON (passed through
    ``redact``, cut to ``limit`` characters), the agent, the thread, and the outcome:
    ``ok``, ``error``, ``waiting`` (for a human's approval: the call runs, and is
    recorded again, once approved) or ``refused`` (a wrapper did not let it run).

    It is two links of the tool-call chain: this object, a watcher around the approval
    gate (it must see a call that waits), and :meth:`reached`, the innermost wrapper,
    which tells it that no wrapper refused the call."""

    def __init__(
        self, audit: AuditLog, redact: Callable[[str], str], *, limit: int = ARGS_LIMIT
    ) -> None:
        self.audit = audit
        self.redact = redact
        self.limit = limit

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """Pass the call on and record how it ended (also when it raised)."""
        reached: list[bool] = []
        token = _REACHED.set(reached)
        try:
            outcome = await call_next(ctx, call)
        except Exception:
            await self._record(ctx, call, "error")
            raise
        finally:
            _REACHED.reset(token)
        await self._record(ctx, call, _outcome(outcome, bool(reached)))
        return outcome

    async def reached(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """The innermost wrapper: mark the call as let through to the tool."""
        mark = _REACHED.get()
        if mark is not None:
            mark.append(True)
        return await call_next(ctx, call)

    def detail(self, args: Any) -> str:
        """``args`` as JSON, each text in it and then the whole redacted, cut to the
        limit with a note saying how long it was."""
        text = self.redact(json.dumps(_redacted(args, self.redact), ensure_ascii=False))
        if len(text) <= self.limit:
            return text
        return f"{text[: self.limit]}… (cut: {len(text):,} characters in all)"

    async def _record(self, ctx: ToolContext, call: ToolCall, outcome: str) -> None:
        place = ctx.place
        await self.audit.record(
            f"agent:{ctx.handle}",
            "tool.call",
            call.tool.name,
            self.detail(call.args),
            agent=ctx.handle,
            where=Where(place.platform, place.channel, place.thread),
            outcome=outcome,
        )


def _outcome(outcome: ToolOutcome, reached: bool) -> str:
    if outcome.waits_for_approval:
        return "waiting"
    if not reached:
        return "refused"
    return "error" if outcome.is_error else "ok"


def _redacted(value: Any, redact: Callable[[str], str]) -> Any:
    """``value`` with every text in it redacted on its own: a secret that is a whole
    argument is found even where the JSON around it would hide its shape (a PEM key's
    line breaks become ``\\n`` in JSON)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {str(k): _redacted(v, redact) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, redact) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))
