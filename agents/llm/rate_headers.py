"""The providers' rate-limit headers, read into a :class:`~agents.llm.usage.RateInfo`.

Anthropic sends ``anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-{limit,
remaining,reset}`` with the reset as an RFC 3339 time; OpenAI (and servers that copy it)
sends ``x-ratelimit-{limit,remaining,reset}-{requests,tokens}`` with the reset as a Go
duration (``"1s"``, ``"6m0s"``, ``"20ms"``). A provider may change or garble any of them,
so a value that cannot be read is left out, never raised on: the headers only refine what
Corral already knows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from corral.agents.llm.usage import RateInfo

_ANTHROPIC = re.compile(
    r"anthropic-ratelimit-(requests|tokens|input-tokens|output-tokens)-(limit|remaining|reset)"
)
_OPENAI = re.compile(r"x-ratelimit-(limit|remaining|reset)-(requests|tokens)")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|h|m|s)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,  # MICRO SIGN, as Go writes it
    "μs": 1e-6,  # GREEK SMALL LETTER MU, as some servers write it
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}


def rate_info(
    headers: Mapping[str, str], now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> RateInfo:
    """What ``headers`` say of the provider's rate limits, per dimension of
    :data:`~agents.llm.usage.DIMENSIONS`; headers of either provider are read."""
    info = RateInfo()
    for name, value in headers.items():
        key = name.lower()
        if match := _ANTHROPIC.fullmatch(key):
            dimension, kind = match[1].replace("-", "_"), match[2]
            reset = parse_rfc3339_reset(value, now) if kind == "reset" else None
        elif match := _OPENAI.fullmatch(key):
            kind, dimension = match[1], match[2]
            reset = parse_duration(value) if kind == "reset" else None
        else:
            continue
        if kind == "reset":
            if reset is not None:
                info.reset_s[dimension] = reset
        elif (count := _count(value)) is not None:
            (info.limit if kind == "limit" else info.remaining)[dimension] = count
    return info


def parse_duration(value: str) -> float | None:
    """Seconds in a Go duration such as ``"1h2m3.5s"`` or ``"20ms"``; a bare number is
    taken as seconds (some OpenAI-compatible servers send one). None when unreadable."""
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if 0 <= seconds < float("inf") else None
    total, position = 0.0, 0
    for part in _DURATION_PART.finditer(text):
        if part.start() != position:
            return None
        total += float(part[1]) * _UNIT_SECONDS[part[2]]
        position = part.end()
    return total if position == len(text) else None


def parse_rfc3339_reset(value: str, now: Callable[[], datetime]) -> float | None:
    """Seconds from ``now()`` until the RFC 3339 time ``value`` (0 if it has passed).

    A time without an offset is read as UTC. None when unreadable.
    """
    try:
        # RFC 3339 allows a lower-case "t" and "z"; fromisoformat wants them upper-case.
        when = datetime.fromisoformat(value.strip().upper())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max((when - now()).total_seconds(), 0.0)


def _count(value: str) -> int | None:
    try:
        count = int(value.strip())
    except ValueError:
        return None
    return count if count >= 0 else None
