"""A tier's models tried in order, each retried per the policy, until one answers."""

from __future__ import annotations

import asyncio
import logging

from corral.agents.llm.retry import RetryPolicy, Sleep
from corral.agents.llm.types import AllModelsFailed, Completion, ModelError, Provider, Request

log = logging.getLogger("corral.models")


class FallbackChain:
    """A :class:`~agents.llm.types.ModelClient` over ``(provider, model)`` entries.

    Retryable errors (rate limits, server errors, lost connections) are retried on the same
    model as ``policy`` says; any other error, or the last retry, moves on to the next
    model. When every model has failed, :class:`AllModelsFailed` lists each one's last error.
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

    async def complete(self, request: Request) -> Completion:
        """The first answer of the chain; raises :class:`AllModelsFailed`."""
        errors: list[ModelError] = []
        for provider, model in self._entries:
            try:
                return await self._complete_with_retries(provider, model, request)
            except ModelError as error:
                errors.append(error)
        raise AllModelsFailed(errors)

    async def _complete_with_retries(
        self, provider: Provider, model: str, request: Request
    ) -> Completion:
        attempt = 1
        while True:
            try:
                return await provider.complete(model, request)
            except ModelError as error:
                final = not error.retryable or attempt >= self._policy.attempts
                delay = 0.0 if final else self._policy.delay(attempt, error)
                log.warning(
                    "%s: %s/%s failed (status %s, attempt %d/%d), %s: %s",
                    self._spec,
                    provider.name,
                    model,
                    error.status or "none",
                    attempt,
                    self._policy.attempts,
                    "giving up on it" if final else f"retrying in {delay:.1f}s",
                    error.message,
                )
                if final:
                    raise
            await self._sleep(delay)
            attempt += 1
