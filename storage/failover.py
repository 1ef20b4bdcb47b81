"""Rate limits, cooldowns and run slots that survive Redis going down: each call goes to
Redis (the primary) and, while Redis cannot be reached, to the database (the fallback),
so that Corral keeps running. Limits then hold per database rather than per Redis, and
Redis is tried again every few seconds; when it answers, it is used again without a
restart. Each change is logged once, and :attr:`Failover.degraded` says which side is in
use (for ``/corral status``).

What one side holds is not copied to the other: a grant or a slot taken on one side and
settled, renewed or given back on the other is not found there, which is harmless (it is
ignored, and expires where it was taken)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Generic, TypeVar

from corral.storage.cooldowns import Cooldowns
from corral.storage.limiter import Grant, Limiter, Need
from corral.storage.run_slots import RunSlots

logger = logging.getLogger("corral.limits")

#: Seconds between tries of Redis while it is unreachable.
RETRY_S = 5.0
#: The longest a call waits for Redis (the client's own retries included) before the
#: database answers instead: an unreachable Redis must not stall a model call for long.
TIMEOUT_S = 1.0

DOWN = (
    "Redis is unreachable: rate limits, cooldowns and run slots are kept in the database "
    "until it returns"
)
BACK = "Redis is back: rate limits, cooldowns and run slots are shared through it again"

Backend = TypeVar("Backend")
Result = TypeVar("Result")


def _unreachable() -> tuple[type[BaseException], ...]:
    # Imported here: only a deployment with REDIS_URL needs redis (see storage/locks.py).
    from redis.exceptions import ConnectionError, TimeoutError

    return (ConnectionError, TimeoutError, OSError)


class Failover(Generic[Backend]):
    """Calls ``primary``, or ``fallback`` while ``primary`` is unreachable (a connection
    error, or no answer within ``timeout_s``); ``primary`` is tried again at most every
    ``retry_s`` seconds of ``clock``."""

    def __init__(
        self,
        primary: Backend,
        fallback: Backend,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.primary = primary
        self.fallback = fallback
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.clock = clock
        self._unreachable = _unreachable()
        self._degraded = False
        self._retry_at = 0.0

    @property
    def degraded(self) -> bool:
        """True while the fallback stands in for the primary."""
        return self._degraded

    async def call(self, use: Callable[[Backend], Awaitable[Result]]) -> Result:
        """``use`` the primary, or the fallback when the primary cannot be reached."""
        if self._degraded and self.clock() < self._retry_at:
            return await use(self.fallback)
        try:
            # A timeout is a TimeoutError, one of the OSErrors below.
            async with asyncio.timeout(self.timeout_s):
                result = await use(self.primary)
        except self._unreachable:
            self._retry_at = self.clock() + self.retry_s
            if not self._degraded:
                self._degraded = True
                logger.warning(DOWN)
            return await use(self.fallback)
        if self._degraded:
            self._degraded = False
            logger.info(BACK)
        return result


class FailoverLimiter(Failover[Limiter]):
    """A :class:`~corral.storage.limiter.Limiter` on Redis, or on the database while
    Redis is down."""

    async def acquire(self, needs: Sequence[Need]) -> Grant | float:
        """Grant every need, or say how long to wait."""
        return await self.call(lambda limiter: limiter.acquire(needs))

    async def settle(self, grant: Grant, actual: Mapping[str, int]) -> None:
        """Put the units used in place of the reservation."""
        await self.call(lambda limiter: limiter.settle(grant, actual))

    async def release(self, grant: Grant) -> None:
        """Give every unit of ``grant`` back."""
        await self.call(lambda limiter: limiter.release(grant))


class FailoverCooldowns(Failover[Cooldowns]):
    """:class:`~corral.storage.cooldowns.Cooldowns` in Redis, or in the database while
    Redis is down."""

    async def cool(self, model: str, seconds: float) -> None:
        """Cool ``model`` for ``seconds`` from now, unless it cools longer already."""
        await self.call(lambda cooldowns: cooldowns.cool(model, seconds))

    async def until(self, model: str) -> float:
        """When ``model``'s cooldown ends; 0.0 when it is not cooling."""
        return await self.call(lambda cooldowns: cooldowns.until(model))

    async def cooling(self) -> dict[str, float]:
        """Every model cooling now, and until when."""
        return await self.call(lambda cooldowns: cooldowns.cooling())


class FailoverRunSlots(Failover[RunSlots]):
    """:class:`~corral.storage.run_slots.RunSlots` in Redis, or in the database while
    Redis is down."""

    async def take(self, key: str, holder: str, limit: int, ttl_s: float) -> bool:
        """Hold one of ``key``'s ``limit`` slots, unless others hold them all."""
        return await self.call(lambda slots: slots.take(key, holder, limit, ttl_s))

    async def renew(self, key: str, holder: str, ttl_s: float) -> None:
        """Hold ``holder``'s slot for ``ttl_s`` from now, if it still holds one."""
        await self.call(lambda slots: slots.renew(key, holder, ttl_s))

    async def give_back(self, key: str, holder: str) -> None:
        """Let go of ``holder``'s slot."""
        await self.call(lambda slots: slots.give_back(key, holder))

    async def held(self, key: str) -> int:
        """How many live holders hold ``key``."""
        return await self.call(lambda slots: slots.held(key))
