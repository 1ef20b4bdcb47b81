"""Deliveries already stored, remembered in Redis (when ``REDIS_URL`` is set) so that a
redelivery is refused by every process without a database write; and requests already
taken (a signed Slack command or click, a Discord interaction), so that a replay of one
does nothing.

The inbox's unique keys stay the source of truth: a key is remembered only once the
message is in the database, so Redis never refuses a message the database does not have
(a process that died before storing it leaves no key behind, and Slack's retry gets
through). Any Redis failure means "not known": the caller goes to the database.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from corral.storage.storable import storable_text

if TYPE_CHECKING:
    # Only the composition root makes a Redis client (see storage/locks.py).
    from redis.asyncio import Redis

    from corral.storage.locks import Lock

log = logging.getLogger("corral.dedupe")

#: Longer than any platform redelivers for (Slack retries within about 30 minutes).
REMEMBER_FOR = timedelta(hours=1)
#: The longest a check or a remember may take: it runs before the platform's ack.
TIMEOUT_S = 0.5
#: How long a request is remembered: Slack accepts a signed request while its timestamp is
#: within 5 minutes of the receiver's clock, either way, so a replay could be accepted for
#: up to 10 minutes after the first delivery; a margin on top.
REQUEST_WINDOW = timedelta(minutes=15)
#: After a failure, Redis is left alone this long: during an outage each delivery would
#: otherwise wait for a connection timeout before its ack.
BACK_OFF_S = 5.0


class Delivered(Protocol):
    """Keys of deliveries that are stored already, shared by every process."""

    async def known(self, keys: Sequence[str]) -> bool:
        """True when any of ``keys`` belongs to a stored delivery; False when none does,
        or when that cannot be told (the database decides then)."""
        ...

    async def remember(self, keys: Sequence[str]) -> None:
        """Mark ``keys`` as belonging to a stored delivery."""
        ...


def delivery_keys(platform: str, event_id: str, channel: str, message_id: str) -> list[str]:
    """The keys of one delivery: its event id, and its message (one message can come as
    several events: Slack's ``app_mention`` and ``message``)."""
    keys = [f"message:{platform}:{channel}:{message_id}"]
    if event_id:
        keys.append(f"event:{platform}:{event_id}")
    # Redis keys are UTF-8, as stored ids are: a lone surrogate would fail every call.
    return [storable_text(key) for key in keys]


class RedisDelivered:
    """Each key is a Redis key set with ``SET key 1 NX PX ttl``; it expires by itself."""

    def __init__(
        self,
        client: Redis,
        prefix: str = "corral:delivered:",
        ttl: timedelta = REMEMBER_FOR,
        back_off_s: float = BACK_OFF_S,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.ttl_ms = max(1, int(ttl.total_seconds() * 1000))
        self.back_off_s = back_off_s
        self.timeout_s = timeout_s
        self._down_until = 0.0

    async def known(self, keys: Sequence[str]) -> bool:
        """True when Redis has any of ``keys``; False on a miss or when Redis fails."""
        if not keys or self._resting():
            return False
        try:
            async with asyncio.timeout(self.timeout_s):
                found = await self.client.exists(*(self.prefix + k for k in keys))
        except Exception as exc:  # any failure: the database decides instead
            self._failed("check", exc)
            return False
        self._down_until = 0.0
        return bool(found)

    async def remember(self, keys: Sequence[str]) -> None:
        """Set every key (one round trip); a failure only costs later redeliveries a
        database write."""
        if not keys or self._resting():
            return
        try:
            async with asyncio.timeout(self.timeout_s), self.client.pipeline(False) as pipe:
                for key in keys:
                    pipe.set(self.prefix + key, 1, nx=True, px=self.ttl_ms)
                await pipe.execute()
        except Exception as exc:
            self._failed("remember", exc)

    def _resting(self) -> bool:
        return time.monotonic() < self._down_until

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._down_until:
            log.warning(
                "Redis %s failed (%s); deduplicating in the database only for %g s",
                what,
                exc,
                self.back_off_s,
            )
        self._down_until = time.monotonic() + self.back_off_s


class Requests:
    """Requests already taken, each known by a key unique to it (a Slack request's
    signature, which covers its timestamp and body; a Discord interaction's id), shared
    by every process: a replay is refused for :data:`REQUEST_WINDOW`.

    Each key is an expiring lock that is never released: in Redis when there is one, else
    in the database. When ``lock`` fails (Redis down), ``fallback`` (the database's) decides.
    """

    def __init__(
        self, lock: Lock, fallback: Lock | None = None, window: timedelta = REQUEST_WINDOW
    ) -> None:
        self.lock = lock
        self.fallback = fallback
        self.window = window

    async def first(self, key: str) -> bool:
        """True the first time ``key`` is seen in the window, False for a replay."""
        # Hashed: a lock's key has a bounded length, and a request's key need not.
        name = "request:" + hashlib.sha256(key.encode()).hexdigest()
        try:
            return await self.lock.acquire(name, self.window) is not None
        except Exception as exc:
            if self.fallback is None:
                raise
            log.warning("checking a request for replay failed (%s); asking the database", exc)
            return await self.fallback.acquire(name, self.window) is not None
