"""The model-call seam: every call a run makes to a model passes through a chain of
wrappers composed once in the composition root. A wrapper sees the run's context and the
request, and the completion on its way back: the place for rate limits, cooldowns,
budgets and cost, redaction of what goes out, tracing and metrics.

The wrappers go around each *attempt*, one call of one model: a tier's fallback chain
tries its models through them, so a limit, a cooldown or a price applies to the model
actually called (``CallContext.target``), and a wrapper that refuses a model (it is
cooling down) lets the chain move on to the next one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol

from corral.agents.conversation import Place
from corral.agents.llm.types import Attempt, Completion, ModelClient, Provider, Request
from corral.storage.approvals import ApprovalKind
from corral.storage.runs import RunOutcome

#: Why a model is called: an agent's turn, the router picking who answers, or picking
#: the tier of a ``model: auto`` agent.
Purpose = Literal["answer", "route", "classify"]

#: Who waits for a call, most urgent first: a person in a thread, then background work
#: (a schedule's fire). Waiters for a limit are served in this order.
PERSON = 0
BACKGROUND = 1


@dataclass(frozen=True)
class CallContext:
    """Who calls a model, where, in which run, why, and with which model (a tier or a
    ``provider/model``, as the agent's ``model:`` says). ``target`` is the
    ``provider/model`` of the attempt a wrapper sees (empty around the whole call)."""

    agent: str
    place: Place
    run_id: str
    purpose: Purpose
    model: str
    priority: int = PERSON
    target: str = ""


ModelCall = Callable[[CallContext, Request], Awaitable[Completion]]


class ModelWrapper(Protocol):
    """One link of the chain: do something around ``call_next`` (or instead of it)."""

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion: ...


@dataclass
class CallRefused(Exception):
    """A wrapper did not let the call be made, and no other model would be allowed it
    either (a budget is spent): the run ends with ``outcome``, the thread is told
    ``notice`` in plain words, and with ``ask`` a human is asked to decide."""

    notice: str
    outcome: RunOutcome
    ask: ApprovalAsk | None = None

    def __str__(self) -> str:
        return self.notice


@dataclass(frozen=True)
class ApprovalAsk:
    """A decision a refused call asks of the approvers: an approval of ``kind`` with
    ``summary``, whose ``payload`` the decision reads."""

    kind: ApprovalKind
    summary: str
    payload: Mapping[str, Any] = field(default_factory=dict)


def model_call_chain(
    client_for: Callable[[str], ModelClient], wrappers: Sequence[ModelWrapper] = ()
) -> ModelCall:
    """The model call with ``wrappers`` around each attempt, the first outermost; the
    client of the context's model retries and falls back through them."""

    async def call_model(ctx: CallContext, request: Request) -> Completion:
        async def attempt(provider: Provider, model: str, request: Request) -> Completion:
            async def call_provider(_: CallContext, request: Request) -> Completion:
                return await provider.complete(model, request)

            call: ModelCall = call_provider
            for wrapper in reversed(wrappers):
                call = _link(wrapper, call)
            return await call(replace(ctx, target=f"{provider.name}/{model}"), request)

        return await client_for(ctx.model).complete(request, attempt)

    return call_model


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

    async def complete(self, request: Request, attempt: Attempt | None = None) -> Completion:
        """The chain's completion of ``request``, its models tried through the chain's
        wrappers (``attempt`` is not used: the chain has its own)."""
        return await self._call(self._ctx, request)
