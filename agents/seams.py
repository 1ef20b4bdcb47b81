"""The run's seams as one value: the model-call chain, the tool-call chain, the tools
that exist and the redaction of what a run says. The composition root builds it once
(:meth:`Seams.compose`); the runtime only calls through it, so a limit, a check or a
tracer is added there, not in the run's loop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from corral.agents.builtin_tools import BUILTIN_TOOLS
from corral.agents.llm.types import ModelClient
from corral.agents.model_calls import ModelCall, ModelWrapper, model_call_chain
from corral.agents.redaction import BUILTIN, Redact
from corral.agents.tool import ToolRegistry
from corral.agents.tool_calls import ToolInvoker, ToolWrapper, tool_call_chain


@dataclass(frozen=True)
class Seams:
    """How a run calls models and tools, and which tools exist."""

    model_call: ModelCall
    tool_call: ToolInvoker
    tools: ToolRegistry = BUILTIN_TOOLS
    #: What every post of a run goes through before it is posted and recorded.
    redact: Redact = field(default=BUILTIN.redact)

    @classmethod
    def compose(
        cls,
        client_for: Callable[[str], ModelClient],
        *,
        model_wrappers: Sequence[ModelWrapper] = (),
        tool_wrappers: Sequence[ToolWrapper] = (),
        tool_watchers: Sequence[ToolWrapper] = (),
        tool_checks: Sequence[ToolWrapper] = (),
        tools: ToolRegistry = BUILTIN_TOOLS,
        redact: Redact = BUILTIN.redact,
    ) -> Seams:
        """The seams with ``model_wrappers`` around every model call and ``tool_wrappers``
        around every tool call (the first of each outermost); ``tool_checks`` around
        those and the approval gate, refusing a call before anyone is asked, and
        ``tool_watchers`` around all of them (:func:`tool_call_chain`); posts redacted
        by ``redact``."""
        return cls(
            model_call_chain(client_for, model_wrappers),
            tool_call_chain(tool_wrappers, tool_watchers, checks=tool_checks),
            tools,
            redact,
        )
