"""Shared rate limits as sliding window logs, in this process, in the database (SQLite
or PostgreSQL) and in Redis.

A limit is ``limit`` units per ``window_s`` seconds, and no window of ``window_s``
seconds ever holds more than ``limit`` units: the provider counts in such a window, so a
token bucket, which lets twice the limit through at a window's edge, would be refused by
the provider's own limit. Each grant is logged with its units and the time it was taken
(its stamp); it counts until a full window after its stamp.

A model call needs several limits at once (requests, input and output tokens, of its
model and of its provider): :meth:`Limiter.acquire` grants all of them or none,
atomically across processes. The tokens a call uses are known only after it returns:
:meth:`Limiter.settle` puts the real units in place of the reservation and re-stamps them
with the time the work ended, when the provider had counted them at the latest.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import ColumnElement, and_, delete, func, or_, select, update

from corral.storage.db import Database
from corral.storage.limit_keys import Clock, take_turn
from corral.storage.tables import LimitGrantRow

if TYPE_CHECKING:
    from redis.asyncio import Redis

#: The least wait reported to a refused caller: a wait computed as just enough, in a
#: race with another taker, must not read as "granted".
MIN_WAIT_S = 0.001


@dataclass(frozen=True)
class Need:
    """``cost`` units of ``key``, whose limit is ``limit`` units per ``window_s``."""

    key: str
    cost: int
    limit: int
    window_s: float = 60.0


@dataclass(frozen=True)
class Grant:
    """The units of every need, held from ``acquire`` until settled or released."""

    id: str
    needs: tuple[Need, ...]


class Limiter(Protocol):
    """Sliding-window rate limits shared by every process of a deployment."""

    async def acquire(self, needs: Sequence[Need]) -> Grant | float:
        """All needs at once or none (atomically, across processes): a Grant, or the
        seconds until all could be granted (> 0). Raises ValueError for a need that can
        never be granted (``0 < cost <= limit`` does not hold) or a key named twice."""
        ...

    async def settle(self, grant: Grant, actual: Mapping[str, int]) -> None:
        """The granted work used ``actual[key]`` units of each key (a key missing: as
        reserved; may be above the limit). Each entry is re-stamped now, so it leaves
        the window a full window after the work ended. An unknown or expired grant is
        ignored, and so are keys the grant did not reserve."""
        ...

    async def release(self, grant: Grant) -> None:
        """The work was not done: give every unit back."""
        ...


def _checked(needs: Sequence[Need]) -> tuple[Need, ...]:
    keys = [need.key for need in needs]
    if not needs or len(set(keys)) != len(keys):
        raise ValueError(f"a grant needs at least one key, each named once, not {keys}")
    for need in needs:
        if need.window_s <= 0 or not 0 < need.cost <= need.limit:
            raise ValueError(
                f"{need.cost} units of {need.key!r} can never be granted from a limit of "
                f"{need.limit} per {need.window_s}s"
            )
    return tuple(needs)


def _settled_units(actual: Mapping[str, int]) -> Mapping[str, int]:
    if any(units < 0 for units in actual.values()):
        raise ValueError(f"work cannot use fewer than no units: {dict(actual)}")
    return actual


def wait_for(need: Need, entries: Iterable[tuple[float, int]], now: float) -> float:
    """Seconds until ``need`` fits beside ``entries`` (stamp, units), all of them live:
    walking them oldest first until enough units would have left the window. 0.0 when
    it fits now."""
    ordered = sorted(entries)
    excess = sum(units for _, units in ordered) + need.cost - need.limit
    if excess <= 0:
        return 0.0
    # The excess is at most what the entries hold (cost <= limit): one of them frees it.
    freed = accumulate(units for _, units in ordered)
    last = next(stamp for (stamp, _), total in zip(ordered, freed, strict=True) if total >= excess)
    return max(MIN_WAIT_S, last + need.window_s - now)


def _grant_id() -> str:
    return uuid.uuid4().hex


class InProcessLimiter:
    """Window logs in this process: for one process, or for tests. Atomic because
    nothing awaits between reading a log and writing it."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        #: key → grant id → (stamp, units); dicts keep the order entries were stamped in.
        self._logs: dict[str, dict[str, tuple[float, int]]] = {}

    async def acquire(self, needs: Sequence[Need]) -> Grant | float:
        """Log every need's units now, or say how long to wait."""
        needs, now = _checked(needs), self.clock()
        wait = max(wait_for(need, self._live(need, now).values(), now) for need in needs)
        if wait > 0:
            return wait
        grant = Grant(_grant_id(), needs)
        for need in needs:
            self._logs.setdefault(need.key, {})[grant.id] = (now, need.cost)
        return grant

    async def settle(self, grant: Grant, actual: Mapping[str, int]) -> None:
        """Re-stamp the grant's live entries now, with the units used."""
        actual, now = _settled_units(actual), self.clock()
        for need in grant.needs:
            log = self._live(need, now)
            if grant.id in log:
                _, reserved = log.pop(grant.id)
                log[grant.id] = (now, actual.get(need.key, reserved))

    async def release(self, grant: Grant) -> None:
        """Drop the grant's entries."""
        for need in grant.needs:
            self._logs.get(need.key, {}).pop(grant.id, None)

    def _live(self, need: Need, now: float) -> dict[str, tuple[float, int]]:
        """``need.key``'s log, without the entries that have left the window."""
        log = self._logs.setdefault(need.key, {})
        for grant_id, (stamp, _) in list(log.items()):
            if stamp + need.window_s <= now:
                del log[grant_id]
        return log


class DatabaseLimiter:
    """Window logs as rows of ``limit_grants``. Each acquire is one transaction that
    first takes its turn on the keys' rows of ``limit_keys`` (storage/limit_keys.py),
    so that two processes cannot both count the last units as free."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def acquire(self, needs: Sequence[Need]) -> Grant | float:
        """Insert every need's row now, or say how long to wait."""
        needs, now = _checked(needs), self.clock()
        by_key = {need.key: need for need in needs}
        async with self.db.transaction() as connection:
            await take_turn(connection, self.db, by_key)
            await connection.execute(delete(LimitGrantRow).where(_expired(needs, now)))
            used = dict(
                (
                    await connection.execute(
                        select(LimitGrantRow.key, func.sum(LimitGrantRow.units))
                        .where(LimitGrantRow.key.in_(by_key))
                        .group_by(LimitGrantRow.key)
                    )
                ).all()
            )
            over = [n for n in needs if used.get(n.key, 0) + n.cost > n.limit]
            if over:
                rows = await connection.execute(
                    select(LimitGrantRow.key, LimitGrantRow.stamp, LimitGrantRow.units).where(
                        LimitGrantRow.key.in_([n.key for n in over])
                    )
                )
                entries: dict[str, list[tuple[float, int]]] = {}
                for key, stamp, units in rows:
                    entries.setdefault(key, []).append((stamp, units))
                return max(wait_for(n, entries.get(n.key, []), now) for n in over)
            grant = Grant(_grant_id(), needs)
            await connection.execute(
                self.db.insert(LimitGrantRow).values(
                    [
                        {"key": n.key, "grant_id": grant.id, "stamp": now, "units": n.cost}
                        for n in needs
                    ]
                )
            )
        return grant

    async def settle(self, grant: Grant, actual: Mapping[str, int]) -> None:
        """Re-stamp the grant's live rows now, with the units used."""
        actual, now = _settled_units(actual), self.clock()
        async with self.db.transaction() as connection:
            # Every writer of a key's rows takes its turn first: writers that met in
            # another order (an acquire deleting a row that just expired, a settle
            # re-stamping it) could deadlock on PostgreSQL.
            await take_turn(connection, self.db, [need.key for need in grant.needs])
            for need in grant.needs:
                values: dict[str, float | int] = {"stamp": now}
                if need.key in actual:
                    values["units"] = actual[need.key]
                await connection.execute(
                    update(LimitGrantRow)
                    .where(
                        LimitGrantRow.key == need.key,
                        LimitGrantRow.grant_id == grant.id,
                        LimitGrantRow.stamp > now - need.window_s,
                    )
                    .values(values)
                )

    async def release(self, grant: Grant) -> None:
        """Delete the grant's rows."""
        async with self.db.transaction() as connection:
            await take_turn(connection, self.db, [need.key for need in grant.needs])
            await connection.execute(
                delete(LimitGrantRow).where(
                    LimitGrantRow.grant_id == grant.id,
                    LimitGrantRow.key.in_([need.key for need in grant.needs]),
                )
            )


def _expired(needs: Sequence[Need], now: float) -> ColumnElement[bool]:
    """The rows of ``needs``' keys that have left their window."""
    return or_(
        *[and_(LimitGrantRow.key == n.key, LimitGrantRow.stamp <= now - n.window_s) for n in needs]
    )


# Per key, a sorted set of grant ids scored by stamp and a hash of their units. Both
# expire a window after the newest entry, when every entry has left the window. Numbers
# reach the scripts as strings of full precision, and the scripts pass them on to Redis
# as strings (stamps) or format them with %.17g: Redis turns a Lua number returned to
# it into an integer, and Lua's tostring keeps only 14 digits (a tenth of a millisecond
# of a time in seconds since the epoch).
_COMMON = """
local now = tonumber(ARGV[1])
local function drop(h, ids)
    for i = 1, #ids, 1000 do
        redis.call('HDEL', h, unpack(ids, i, math.min(i + 999, #ids)))
    end
end
local function expire(z, h, window)
    local newest = redis.call('ZRANGE', z, -1, -1, 'WITHSCORES')
    if newest[2] then
        local ms = math.ceil((math.max(now, tonumber(newest[2])) + window - now) * 1000)
        redis.call('PEXPIRE', z, math.max(1, ms))
        redis.call('PEXPIRE', h, math.max(1, ms))
    end
end
"""
#: KEYS: a sorted set and a hash per need. ARGV: now, grant id, then cost, limit,
#: window of each need. Returns 'ok', or the wait as a string.
_ACQUIRE = (
    _COMMON
    + """
local id = ARGV[2]
local refused = false
local wait = 0
for i = 1, #KEYS / 2 do
    local z, h = KEYS[2 * i - 1], KEYS[2 * i]
    local cost = tonumber(ARGV[3 * i])
    local limit = tonumber(ARGV[3 * i + 1])
    local window = tonumber(ARGV[3 * i + 2])
    local cutoff = string.format('%.17g', now - window)
    drop(h, redis.call('ZRANGEBYSCORE', z, '-inf', cutoff))
    redis.call('ZREMRANGEBYSCORE', z, '-inf', cutoff)
    local entries = redis.call('ZRANGE', z, 0, -1, 'WITHSCORES')
    local held = {}
    if #entries > 0 then
        local all = redis.call('HGETALL', h)
        for j = 1, #all, 2 do
            held[all[j]] = tonumber(all[j + 1])
        end
    end
    local used = 0
    for j = 1, #entries, 2 do
        used = used + (held[entries[j]] or 0)
    end
    local excess = used + cost - limit
    if excess > 0 then
        refused = true
        -- Oldest first; the excess is at most what the entries hold (cost <= limit).
        local freed = 0
        for j = 1, #entries, 2 do
            freed = freed + (held[entries[j]] or 0)
            if freed >= excess then
                wait = math.max(wait, tonumber(entries[j + 1]) + window - now)
                break
            end
        end
    end
end
if refused then
    return string.format('%.17g', wait)
end
for i = 1, #KEYS / 2 do
    local z, h = KEYS[2 * i - 1], KEYS[2 * i]
    redis.call('ZADD', z, ARGV[1], id)
    redis.call('HSET', h, id, ARGV[3 * i])
    expire(z, h, tonumber(ARGV[3 * i + 2]))
end
return 'ok'
"""
)
#: KEYS: a sorted set and a hash per need. ARGV: now, grant id, then the window and
#: the units used ('' for as reserved) of each need.
_SETTLE = (
    _COMMON
    + """
local id = ARGV[2]
for i = 1, #KEYS / 2 do
    local z, h = KEYS[2 * i - 1], KEYS[2 * i]
    local window = tonumber(ARGV[2 * i + 1])
    local stamp = redis.call('ZSCORE', z, id)
    if stamp and tonumber(stamp) > now - window then
        redis.call('ZADD', z, ARGV[1], id)
        if ARGV[2 * i + 2] ~= '' then
            redis.call('HSET', h, id, ARGV[2 * i + 2])
        end
        expire(z, h, window)
    end
end
return 1
"""
)
#: KEYS: a sorted set and a hash per need. ARGV: the grant id.
_RELEASE = """
for i = 1, #KEYS / 2 do
    redis.call('ZREM', KEYS[2 * i - 1], ARGV[1])
    redis.call('HDEL', KEYS[2 * i], ARGV[1])
end
return 1
"""


class RedisLimiter:
    """Window logs in Redis, read and written by Lua scripts, which Redis runs without
    interleaving any other command: one script takes every need of a grant, or none."""

    def __init__(
        self, client: Redis, prefix: str = "corral:limit:", clock: Clock = time.time
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self._acquire = client.register_script(_ACQUIRE)
        self._settle = client.register_script(_SETTLE)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, needs: Sequence[Need]) -> Grant | float:
        """Log every need's units now, or say how long to wait."""
        needs = _checked(needs)
        grant = Grant(_grant_id(), needs)
        args: list[str | int] = [repr(self.clock()), grant.id]
        for need in needs:
            args += [need.cost, need.limit, repr(float(need.window_s))]
        reply = await self._acquire(keys=self._keys(needs), args=args)
        text = reply.decode() if isinstance(reply, bytes) else str(reply)
        return grant if text == "ok" else max(MIN_WAIT_S, float(text))

    async def settle(self, grant: Grant, actual: Mapping[str, int]) -> None:
        """Re-stamp the grant's live entries now, with the units used."""
        actual = _settled_units(actual)
        args: list[str | int] = [repr(self.clock()), grant.id]
        for need in grant.needs:
            args += [repr(float(need.window_s)), actual.get(need.key, "")]
        await self._settle(keys=self._keys(grant.needs), args=args)

    async def release(self, grant: Grant) -> None:
        """Drop the grant's entries."""
        await self._release(keys=self._keys(grant.needs), args=[grant.id])

    def _keys(self, needs: Sequence[Need]) -> list[str]:
        keys = []
        for need in needs:
            keys += [f"{self.prefix}{need.key}:log", f"{self.prefix}{need.key}:units"]
        return keys
