"""A tier's models tried in order, until one answers."""

from __future__ import annotations

import asyncio
import logging

from corral.agents.llm.retry import RetryPolicy, Sleep
from corral.agents.llm.types import (
    AllModelsFailed,
    Attempt,
    Completion,
    ModelError,
    Provider,
    Request,
)
from corral.agents.waiting import waiting

log = logging.getLogger("corral.models")


async def direct(provider: Provider, model: str, request: Request) -> Completion:
    """An attempt with nothing around it: the provider's own call."""
    return await provider.complete(model, request)


class FallbackChain:
    """A :class:`~agents.llm.types.ModelClient` over ``(provider, model)`` entries.

    The models are tried in order, in rounds: a model that fails with a retryable error
    (a rate limit, a server error, a lost connection, a cooldown) is left for the next
    round and the chain moves on to the next model at once, rather than waiting to retry
    a model that has just said it is busy. Only when every model of the round has failed
    does the chain wait, for the shortest delay ``policy`` gives any of them, and start
    another round; ``policy.attempts`` rounds in all. A model that fails otherwise (a
    bad request, a wrong key) is not tried again. When no round succeeds,
    :class:`AllModelsFailed` lists each model's last error.
    """

    def __init__(
        self,
        entries: list[tuple[Provider, str]],
        policy: RetryPolicy,
        spec: str,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._entries = entries
        self._policy = policy
        self._spec = spec
        self._sleep = sleep

    async def complete(self, request: Request, attempt: Attempt | None = None) -> Completion:
        """The first answer of the chain; raises :class:`AllModelsFailed`."""
        call = attempt or direct
        last: dict[int, ModelError] = {}
        alive = list(range(len(self._entries)))
        attempts = self._policy.attempts
        for round_ in range(1, attempts + 1):
            delays: list[float] = []
            for index in list(alive):
                provider, model = self._entries[index]
                try:
                    return await call(provider, model, request)
                except ModelError as error:
                    last[index] = error
                    if not error.retryable:
                        alive.remove(index)
                    elif round_ < attempts:
                        delays.append(self._policy.delay(round_, error))
                    self._log(provider, model, error, round_, error.retryable and round_ < attempts)
            if not delays:
                break
            async with waiting():
                await self._sleep(min(delays))
        raise AllModelsFailed([last[i] for i in sorted(last)])

    def _log(
        self, provider: Provider, model: str, error: ModelError, round_: int, again: bool
    ) -> None:
        if error.cooling:
            log.info("%s: %s/%s skipped: %s", self._spec, provider.name, model, error.message)
            return
        log.warning(
            "%s: %s/%s failed (status %s, attempt %d/%d), %s: %s",
            self._spec,
            provider.name,
            model,
            error.status or "none",
            round_,
            self._policy.attempts,
            "to be tried again" if again else "giving up on it",
            error.message,
        )
