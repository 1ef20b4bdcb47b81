"""Rate limits, a model-call wrapper: before each attempt the call takes what it needs
from its model's and its provider's limits (one request; its input tokens, estimated;
its output tokens up to ``max_tokens``), waiting as long as it must, and afterwards
settles them with the real usage. The windows live in a shared :class:`Limiter`, so
every process counts against the same limit.

The provider's own headers are obeyed on top: a limit the provider reports is kept
like a configured one (so with no ``limits:`` at all Corral stays under the provider's),
and a response saying nothing remains holds the model back until the provider's reset.

Waiters of this process are served fairly (:class:`FairQueue`): a person before
background work, then agents in turn, so that no agent starves another.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

from corral.agents.llm.retry import Sleep
from corral.agents.llm.types import Completion, ModelError, Request, TextBlock, ToolUse
from corral.agents.llm.usage import RateInfo
from corral.agents.model_calls import CallContext, ModelCall
from corral.agents.team import ModelLimits
from corral.agents.waiting import waiting
from corral.storage.limiter import Grant, Limiter, Need

log = logging.getLogger("corral.limits")

#: The window of every ``…_per_minute`` limit.
MINUTE_S = 60.0
#: Characters per token when a request's input is estimated before it is sent; real
#: usage settles the difference afterwards.
CHARS_PER_TOKEN = 4

#: ``(provider, model)`` → the configured limits that apply, each under its key.
LimitsFor = Callable[[str, str], Sequence[tuple[str, ModelLimits]]]

_FIELDS = {
    "requests": "requests_per_minute",
    "tokens": "tokens_per_minute",
    "input_tokens": "input_tokens_per_minute",
    "output_tokens": "output_tokens_per_minute",
}


def estimate_input(request: Request) -> int:
    """The request's input tokens, estimated from its text (system, messages, tools)."""
    chars = len(request.system)
    for message in request.messages:
        for block in message.content:
            if isinstance(block, TextBlock):
                chars += len(block.text)
            elif isinstance(block, ToolUse):
                chars += len(block.name) + len(json.dumps(block.input, ensure_ascii=False))
            else:
                chars += len(block.content)
    for tool in request.tools:
        chars += len(tool.name) + len(tool.description) + len(json.dumps(tool.parameters))
    return chars // CHARS_PER_TOKEN + 1


def _costs(request: Request) -> dict[str, int]:
    estimated = estimate_input(request)
    return {
        "requests": 1,
        "input_tokens": estimated,
        "output_tokens": request.max_tokens,
        "tokens": estimated + request.max_tokens,
    }


#: What a call that failed after it was sent used: the request, and no tokens.
_FAILED = {"requests": 1, "input_tokens": 0, "output_tokens": 0, "tokens": 0}


def _used(completion: Completion) -> dict[str, int]:
    usage = completion.usage
    return {
        "requests": 1,
        "input_tokens": usage.input_total,
        "output_tokens": usage.output,
        "tokens": usage.input_total + usage.output,
    }


@dataclass(eq=False)
class _Waiter:
    agent: str
    priority: int
    turn: asyncio.Event = field(default_factory=asyncio.Event)


class FairQueue:
    """The order this process's waiters for one model take its limits in: by priority (a
    person before background work), then agent by agent in turn (round robin: an agent
    with many calls waiting gets no more turns than one with a few), each agent's own
    calls in their order of arrival. Only the head asks the limiter; the others wait
    their turn without asking."""

    def __init__(self) -> None:
        #: priority → agent → its waiters; an agent's place in the dict is its turn.
        self._lines: dict[int, dict[str, deque[_Waiter]]] = {}

    async def take(
        self,
        agent: str,
        priority: int,
        acquire: Callable[[], Awaitable[Grant | float]],
        sleep: Sleep,
    ) -> Grant:
        """A grant from ``acquire`` when it is this waiter's turn and the limits allow."""
        waiter = _Waiter(agent, priority)
        self._lines.setdefault(priority, {}).setdefault(agent, deque()).append(waiter)
        served = False
        try:
            while True:
                if self._head() is not waiter:
                    waiter.turn.clear()
                    async with waiting():
                        await waiter.turn.wait()
                    continue
                result = await acquire()
                if isinstance(result, Grant):
                    served = True
                    return result
                async with waiting():
                    await sleep(result)
        finally:
            self._leave(waiter, served)

    def _head(self) -> _Waiter | None:
        if not self._lines:
            return None
        agents = self._lines[min(self._lines)]
        return agents[next(iter(agents))][0]

    def _leave(self, waiter: _Waiter, served: bool) -> None:
        """Take ``waiter`` out. A served agent with more waiters goes to the back of the
        line of agents; one whose waiter gave up (cancelled) keeps its place."""
        agents = self._lines[waiter.priority]
        line = agents[waiter.agent]
        line.remove(waiter)
        if served or not line:
            del agents[waiter.agent]
            if line:
                agents[waiter.agent] = line
        if not agents:
            del self._lines[waiter.priority]
        head = self._head()
        if head is not None:
            head.turn.set()


class RateLimitWrapper:
    """Takes each attempt's share of its limits before the call, settles after."""

    def __init__(
        self,
        limiter: Limiter,
        limits_for: LimitsFor,
        *,
        window_s: float = MINUTE_S,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limiter = limiter
        self.limits_for = limits_for
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        self._queues: dict[str, FairQueue] = {}
        #: target → what its provider's headers said its limits are, per dimension.
        self._learned: dict[str, dict[str, int]] = {}
        #: target → when the provider said it has capacity again.
        self._held_until: dict[str, float] = {}

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion:
        """The call, once its limits allow it."""
        needs = self.needs(ctx.target, request)
        grant: Grant | None = None
        if needs or ctx.target in self._held_until:
            queue = self._queues.setdefault(ctx.target, FairQueue())
            grant = await queue.take(
                ctx.agent, ctx.priority, lambda: self._acquire(ctx.target, needs), self.sleep
            )
        # Cancelled mid-call, what was taken stays taken until it leaves the window: the
        # provider may have counted it.
        try:
            completion = await call_next(ctx, request)
        except ModelError as error:
            self._learn(ctx.target, error.rate)
            if grant is not None and grant.needs:
                if error.status == 429:  # refused: the provider counted nothing
                    await self.limiter.release(grant)
                else:
                    await self.limiter.settle(grant, actual_for(grant, _FAILED))
            raise
        self._learn(ctx.target, completion.rate)
        if grant is not None and grant.needs:
            await self.limiter.settle(grant, actual_for(grant, _used(completion)))
        return completion

    def needs(self, target: str, request: Request) -> list[Need]:
        """What an attempt on ``target`` takes from each limit that applies to it: the
        configured ones, and those the provider reported where none is configured."""
        provider, _, model = target.partition("/")
        applying = self.limits_for(provider, model)
        learned = self._learned.get(target, {})
        if not applying and not learned:
            return []
        costs = _costs(request)
        needs: list[Need] = []
        configured: set[str] = set()
        for key, limits in applying:
            for dimension, name in _FIELDS.items():
                limit = getattr(limits, name)
                if limit is not None:
                    configured.add(dimension)
                    needs.append(self._need(f"{key}:{dimension}", costs[dimension], limit))
        for dimension, limit in learned.items():
            if dimension not in configured:
                needs.append(self._need(f"learned:{target}:{dimension}", costs[dimension], limit))
        return needs

    def _need(self, key: str, cost: int, limit: int) -> Need:
        # A call can never need more than the whole limit: it waits for an empty window.
        return Need(key, max(1, min(cost, limit)), limit, self.window_s)

    async def _acquire(self, target: str, needs: Sequence[Need]) -> Grant | float:
        held = self._held_until.get(target, 0.0) - self.clock()
        if held > 0:
            return held
        self._held_until.pop(target, None)
        if not needs:
            return Grant("", ())
        return await self.limiter.acquire(needs)

    def _learn(self, target: str, rate: RateInfo) -> None:
        """Keep the limits the provider reported; when it says nothing of a dimension
        remains, hold the model back for one slot of that limit (its reset is when the
        whole window is free again, far later than the next slot)."""
        if not rate:
            return
        learned = self._learned.setdefault(target, {})
        for dimension, limit in rate.limit.items():
            if dimension in _FIELDS and limit > 0:
                learned[dimension] = limit
        for dimension, remaining in rate.remaining.items():
            if remaining > 0 or dimension not in _FIELDS:
                continue
            known = learned.get(dimension)
            reset = rate.reset_s.get(dimension, 0.0)
            hold = min(reset, self.window_s / known) if known else reset
            until = self.clock() + hold
            if hold > 0 and until > self._held_until.get(target, 0.0):
                log.info(
                    "%s: no %s remain, says its provider: holding %.2fs", target, dimension, hold
                )
                self._held_until[target] = until


def actual_for(grant: Grant, used: Mapping[str, int]) -> dict[str, int]:
    """Each need of ``grant`` with what the call really used of its dimension."""
    return {need.key: used[need.key.rpartition(":")[2]] for need in grant.needs}
