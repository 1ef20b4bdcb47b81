"""The model-call seam: every call a run makes to a model passes through a chain of
wrappers composed once in the composition root. A wrapper sees the run's context and the
request, and the completion on its way back: the place for rate limits, cooldowns,
budgets and cost, redaction of what goes out, tracing and metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from corral.agents.conversation import Place
from corral.agents.llm.types import Completion, ModelClient, Request

#: Why a model is called: an agent's turn, or the router picking who answers.
Purpose = Literal["answer", "route"]


@dataclass(frozen=True)
class CallContext:
    """Who calls a model, where, in which run, why, and with which model (a tier or a
    ``provider/model``, as the agent's ``model:`` says)."""

    agent: str
    place: Place
    run_id: str
    purpose: Purpose
    model: str


ModelCall = Callable[[CallContext, Request], Awaitable[Completion]]


class ModelWrapper(Protocol):
    """One link of the chain: do something around ``call_next`` (or instead of it)."""

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion: ...


def model_call_chain(
    client_for: Callable[[str], ModelClient], wrappers: Sequence[ModelWrapper] = ()
) -> ModelCall:
    """The model call with ``wrappers`` around it, the first outermost; the innermost
    link asks the client of the context's model (which retries and falls back)."""

    async def call_model(ctx: CallContext, request: Request) -> Completion:
        return await client_for(ctx.model).complete(request)

    call: ModelCall = call_model
    for wrapper in reversed(wrappers):
        call = _link(wrapper, call)
    return call


def _link(wrapper: ModelWrapper, call_next: ModelCall) -> ModelCall:
    async def call(ctx: CallContext, request: Request) -> Completion:
        return await wrapper(ctx, request, call_next)

    return call


class BoundModel:
    """A :class:`ModelClient` for code that takes one (the router): each ``complete``
    goes through the chain with a fixed context."""

    def __init__(self, call: ModelCall, ctx: CallContext) -> None:
        self._call = call
        self._ctx = ctx

    async def complete(self, request: Request) -> Completion:
        """The chain's completion of ``request``."""
        return await self._call(self._ctx, request)
