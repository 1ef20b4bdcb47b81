"""A sliding-window rate limit, the way the fake model server enforces a provider's limits.

Each admitted request is counted at its arrival, in every dimension at once (``requests``,
``tokens``, ``input_tokens``, ``output_tokens``); a request is admitted only when, with it,
no dimension holds more than its limit within the last ``window_s`` seconds. Times are
plain floats from the caller's clock, so tests can drive it without waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Refused:
    """Why a request was not admitted: the dimensions it would overfill, and the seconds
    until it would fit."""

    dimensions: tuple[str, ...]
    wait_s: float


@dataclass(frozen=True)
class Arrival:
    """One admitted request: when it arrived and what it counted, per dimension."""

    at: float
    units: Mapping[str, int]


class SlidingWindow:
    """Limits per dimension over any ``window_s`` seconds; a dimension without a limit is
    still recorded, so that :meth:`max_in_window` can check it."""

    def __init__(self, limits: Mapping[str, int], window_s: float = 60.0) -> None:
        if window_s <= 0:
            raise ValueError("window_s must be positive")
        self.limits = dict(limits)
        self.window_s = window_s
        self.arrivals: list[Arrival] = []
        # Arrivals before this index have left the window (the clock only moves forward).
        self._start = 0

    def admit(self, now: float, units: Mapping[str, int]) -> Refused | None:
        """Count ``units`` at ``now`` if every limit allows them and return None; else
        count nothing and say why.

        A request larger than a limit on its own never fits: it is told to wait a window.
        """
        if not self.limits:  # nothing to check: just count it, in constant time
            self.arrivals.append(Arrival(now, dict(units)))
            return None
        used = self.used(now)
        over = tuple(
            dimension
            for dimension, limit in self.limits.items()
            if used.get(dimension, 0) + units.get(dimension, 0) > limit
        )
        if over:
            waits = [self._wait(now, d, units.get(d, 0), self.limits[d]) for d in over]
            return Refused(over, max(waits))
        self.arrivals.append(Arrival(now, dict(units)))
        return None

    def used(self, now: float) -> dict[str, int]:
        """Units each dimension holds in the window that ends at ``now``."""
        while (
            self._start < len(self.arrivals)
            and self.arrivals[self._start].at <= now - self.window_s
        ):
            self._start += 1
        totals: dict[str, int] = {}
        for arrival in self.arrivals[self._start :]:
            for dimension, count in arrival.units.items():
                totals[dimension] = totals.get(dimension, 0) + count
        return totals

    def remaining(self, now: float) -> dict[str, int]:
        """Units each limited dimension may still take at ``now``."""
        used = self.used(now)
        return {d: max(limit - used.get(d, 0), 0) for d, limit in self.limits.items()}

    def reset_s(self, now: float) -> dict[str, float]:
        """Seconds until each limited dimension is fully replenished: until the newest
        arrival that counted in it has left the window (0 when nothing counts)."""
        self.used(now)
        resets = dict.fromkeys(self.limits, 0.0)
        for dimension in self.limits:
            for arrival in reversed(self.arrivals[self._start :]):
                if arrival.units.get(dimension, 0):
                    resets[dimension] = arrival.at + self.window_s - now
                    break
        return resets

    def max_in_window(self, dimension: str, window_s: float | None = None) -> int:
        """The most units of ``dimension`` that any ``window_s`` seconds (default: this
        limit's window) ever held, over every arrival so far."""
        span = self.window_s if window_s is None else window_s
        most = total = 0
        first = 0
        for arrival in self.arrivals:
            total += arrival.units.get(dimension, 0)
            while self.arrivals[first].at <= arrival.at - span:
                total -= self.arrivals[first].units.get(dimension, 0)
                first += 1
            most = max(most, total)
        return most

    def _wait(self, now: float, dimension: str, need: int, limit: int) -> float:
        if need > limit:
            return self.window_s
        excess = self.used(now).get(dimension, 0) + need - limit
        leaves = now
        # The oldest arrivals leave first: wait until enough of them have gone.
        for arrival in self.arrivals[self._start :]:
            if excess <= 0:
                break
            excess -= arrival.units.get(dimension, 0)
            leaves = arrival.at + self.window_s
        # Never 0: the units fit only once the arrival has left.
        return max(leaves - now, math.ulp(now))
