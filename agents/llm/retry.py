"""When to retry a failed model call, and how long to wait first."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from corral.agents.llm.types import ModelError

#: How a chain waits between attempts; tests pass a recorder instead of ``asyncio.sleep``.
Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of one model before its chain falls back to the next.

    ``attempts`` counts the first call too: 3 means one call and two retries.
    """

    attempts: int = 3
    base_delay: float = 0.5
    max_delay: float = 20.0
    #: Up to this fraction is added to a backoff delay, so that workers hit by the same
    #: outage do not all come back in the same instant.
    jitter: float = 0.1
    rand: Callable[[], float] = field(default=random.random, compare=False, repr=False)

    def delay(self, attempt: int, error: ModelError) -> float:
        """Seconds to wait after failed ``attempt`` (1 for the first call) before the next."""
        if error.retry_after is not None:
            return min(max(error.retry_after, 0.0), self.max_delay)
        backoff = min(self.base_delay * 2.0 ** (attempt - 1), self.max_delay)
        return backoff * (1 + self.jitter * self.rand())


def is_retryable_status(status: int) -> bool:
    """Timeouts, conflicts, rate limits and server errors may pass; other 4xx will not."""
    return status in (408, 409, 429) or status >= 500


def parse_retry_after(
    headers: Mapping[str, str], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> float | None:
    """Seconds a provider asked us to wait: ``retry-after-ms``, else ``retry-after``.

    ``retry-after`` is either seconds or an HTTP date (RFC 9110); anything unreadable is
    ignored rather than trusted.
    """
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(float(milliseconds) / 1000, 0.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)
