"""Per-model cooldowns, a model-call wrapper: a model that answers 429, 529 or another
5xx cools down, for every agent and every process, for exactly as long as it asked
(``retry-after``) or a short backoff; while it cools, attempts on it are refused at once
so the fallback chain moves on to a model that is not cooling. Only that model cools:
its provider's other models go on."""

from __future__ import annotations

import time
from collections.abc import Callable

from corral.agents.llm.types import Completion, ModelError, Request
from corral.agents.model_calls import CallContext, ModelCall
from corral.storage.cooldowns import Cooldowns

#: How long a model cools after an error that did not say how long to wait.
DEFAULT_COOLDOWN_S = 2.0


def cools(error: ModelError) -> bool:
    """Whether ``error`` says the model is overloaded: rate limited, overloaded or down."""
    return error.status is not None and (error.status == 429 or error.status >= 500)


class CoolingWrapper:
    """Refuses attempts on cooling models, and cools a model that says it is busy."""

    def __init__(
        self,
        cooldowns: Cooldowns,
        *,
        backoff_s: float = DEFAULT_COOLDOWN_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.cooldowns = cooldowns
        self.backoff_s = backoff_s
        self.clock = clock

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion:
        """The call, unless ``ctx.target`` is cooling (then a retryable refusal)."""
        left = await self.cooldowns.until(ctx.target) - self.clock()
        if left > 0:
            raise ModelError(
                ctx.target,
                f"cooling down for {left:.1f}s more",
                retryable=True,
                retry_after=left,
                cooling=True,
            )
        try:
            return await call_next(ctx, request)
        except ModelError as error:
            if cools(error):
                wait = error.retry_after if error.retry_after is not None else self.backoff_s
                await self.cooldowns.cool(ctx.target, wait)
            raise
