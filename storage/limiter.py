"""Shared rate limits: the contract that the rate-limit issue builds on (it is not wired
into a run yet), and its implementations in this process, in the database (SQLite or
PostgreSQL) and in Redis.

Each limit is a token bucket: ``limit`` units, refilled continuously at ``limit`` per
``per_seconds``, full when first used. A bucket holds at most ``limit``, so from a full
bucket no more than ``limit`` units are granted at once, and over a longer span no more
than the refill adds. Unlike a fixed window, there is no burst of twice the limit at a
window's edge, and a refused caller is told exactly how long to wait.

Every implementation takes units atomically: two processes (or tasks) cannot both take
the last unit. Times come from the caller's clock (``time.time`` unless given), so the
processes sharing a limit are assumed to have synchronised clocks, as the database lock's
expiry already is.

A model call's cost in tokens is known only after it returns: :meth:`Limiter.acquire`
reserves an estimate, and :meth:`Limiter.settle` gives back what was not used, or charges
what was used beyond it (the bucket may then go below zero, and later callers wait
longer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import ColumnElement, Executable, case, select, update

from corral.storage.db import Database
from corral.storage.tables import LimitRow

if TYPE_CHECKING:
    from redis.asyncio import Redis

Clock = Callable[[], float]

#: The least wait reported to a refused caller: a refill computed as just enough, in a
#: race with another taker, must not read as "granted".
MIN_WAIT_S = 0.001


class Limiter(Protocol):
    """Named token buckets shared by every process of a deployment."""

    async def acquire(self, key: str, cost: int, limit: int, per_seconds: float) -> float:
        """Take ``cost`` units of ``key``'s bucket (``limit`` units, refilled at ``limit``
        per ``per_seconds``): 0.0 when taken, else the seconds until they could be (and
        nothing is taken). Raises ValueError for a cost the bucket can never hold."""
        ...

    async def settle(
        self, key: str, reserved: int, actual: int, limit: int, per_seconds: float
    ) -> None:
        """The work that acquired ``reserved`` units of ``key`` (with this ``limit`` and
        ``per_seconds``) used ``actual``: give back the difference, or take the excess."""
        ...


def _check(cost: int, limit: int, per_seconds: float) -> float:
    """The refill rate in units per second, once the arguments make sense."""
    if limit <= 0 or per_seconds <= 0:
        raise ValueError(f"a limit needs units and a period, not {limit} per {per_seconds}s")
    if not 0 < cost <= limit:
        raise ValueError(f"a cost of {cost} can never be taken from a limit of {limit}")
    return limit / per_seconds


def _wait(tokens: float, cost: int, rate: float) -> float:
    return max(MIN_WAIT_S, (cost - tokens) / rate)


class InProcessLimiter:
    """Buckets in this process: for one process, or for tests. Atomic because nothing
    awaits between reading a bucket and writing it."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        #: key → (units, when they were counted)
        self._buckets: dict[str, tuple[float, float]] = {}

    async def acquire(self, key: str, cost: int, limit: int, per_seconds: float) -> float:
        """Take ``cost`` units of ``key``'s bucket, or say how long to wait."""
        rate = _check(cost, limit, per_seconds)
        tokens, at = self._refilled(key, limit, rate)
        if tokens < cost:
            return _wait(tokens, cost, rate)
        self._buckets[key] = (tokens - cost, at)
        return 0.0

    async def settle(
        self, key: str, reserved: int, actual: int, limit: int, per_seconds: float
    ) -> None:
        """Give back or take the difference between ``reserved`` and ``actual``."""
        tokens, at = self._refilled(key, limit, _check(1, limit, per_seconds))
        self._buckets[key] = (min(float(limit), tokens + reserved - actual), at)

    def _refilled(self, key: str, limit: int, rate: float) -> tuple[float, float]:
        now = self.clock()
        tokens, at = self._buckets.get(key, (float(limit), now))
        return min(float(limit), tokens + max(0.0, now - at) * rate), max(at, now)


class DatabaseLimiter:
    """A bucket is a row of ``limits``. Taking units is one conditional UPDATE, which the
    database applies to the row as it is when the update runs (PostgreSQL re-reads a row
    another transaction changed meanwhile; SQLite has one writer at a time), so two
    processes cannot both take the last unit."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def acquire(self, key: str, cost: int, limit: int, per_seconds: float) -> float:
        """Take ``cost`` units of ``key``'s row, or say how long to wait."""
        rate = _check(cost, limit, per_seconds)
        now = self.clock()
        available = _available(limit, rate, now)
        take = (
            update(LimitRow)
            .where(LimitRow.key == key, available >= cost)
            .values(tokens=available - cost, refilled_at=_latest(now))
            .returning(LimitRow.key)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(self._create(key, limit, now))
            if (await session.execute(take)).scalar_one_or_none() is not None:
                return 0.0
            level = (
                await session.execute(select(available).where(LimitRow.key == key))
            ).scalar_one()
        return _wait(float(level), cost, rate)

    async def settle(
        self, key: str, reserved: int, actual: int, limit: int, per_seconds: float
    ) -> None:
        """Give back or take the difference between ``reserved`` and ``actual``."""
        now = self.clock()
        settled = _available(limit, _check(1, limit, per_seconds), now) + (reserved - actual)
        statement = (
            update(LimitRow)
            .where(LimitRow.key == key)
            .values(
                tokens=case((settled > limit, float(limit)), else_=settled),
                refilled_at=_latest(now),
            )
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(self._create(key, limit, now))
            await session.execute(statement)

    def _create(self, key: str, limit: int, now: float) -> Executable:
        """Make ``key``'s bucket, full, unless it exists."""
        return (
            self.db.insert(LimitRow)
            .values(key=key, tokens=float(limit), refilled_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )


# In SQL, CASE rather than LEAST/GREATEST, which SQLite lacks.
def _available(limit: int, rate: float, now: float) -> ColumnElement[float]:
    """A row's units, refilled up to ``now``."""
    elapsed = case((LimitRow.refilled_at < now, now - LimitRow.refilled_at), else_=0.0)
    refilled = LimitRow.tokens + elapsed * rate
    return case((refilled > limit, float(limit)), else_=refilled)


def _latest(now: float) -> ColumnElement[float]:
    """``now``, unless the row was refilled later (by a process whose clock is ahead)."""
    return case((LimitRow.refilled_at < now, now), else_=LimitRow.refilled_at)


# A bucket is a hash {tokens, at}. It expires once it would be full again, since a
# missing bucket counts as full. Numbers are kept, and go back to Python, as strings of
# full precision: Redis turns a Lua number into an integer, and tostring keeps only 14
# digits (a tenth of a millisecond of a time in seconds since the epoch).
_REFILLED = """
local limit = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or limit
local at = tonumber(state[2]) or now
if now > at then
    tokens = math.min(limit, tokens + (now - at) * rate)
    at = now
else
    tokens = math.min(limit, tokens)
end
local function store()
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens),
        'at', string.format('%.17g', at))
    redis.call('PEXPIRE', KEYS[1], math.max(1, math.ceil((limit - tokens) / rate * 1000)))
end
"""
#: ARGV: limit, rate, now, cost.
_ACQUIRE = (
    _REFILLED
    + """
local cost = tonumber(ARGV[4])
if tokens < cost then
    return string.format('%.17g', tokens)
end
tokens = tokens - cost
store()
return 'ok'
"""
)
#: ARGV: limit, rate, now, units given back (negative: taken).
_SETTLE = (
    _REFILLED
    + """
tokens = math.min(limit, tokens + tonumber(ARGV[4]))
store()
return 1
"""
)


class RedisLimiter:
    """A bucket is a Redis hash, read and written by one Lua script, which Redis runs
    without interleaving any other command."""

    def __init__(
        self, client: Redis, prefix: str = "corral:limit:", clock: Clock = time.time
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)

    async def acquire(self, key: str, cost: int, limit: int, per_seconds: float) -> float:
        """Take ``cost`` units of ``key``'s hash, or say how long to wait."""
        rate = _check(cost, limit, per_seconds)
        args = [limit, rate, self.clock(), cost]
        reply = await self._acquire(keys=[self.prefix + key], args=args)
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        return 0.0 if text == "ok" else _wait(float(text), cost, rate)

    async def settle(
        self, key: str, reserved: int, actual: int, limit: int, per_seconds: float
    ) -> None:
        """Give back or take the difference between ``reserved`` and ``actual``."""
        rate = _check(1, limit, per_seconds)
        args = [limit, rate, self.clock(), reserved - actual]
        await self._settle(keys=[self.prefix + key], args=args)
