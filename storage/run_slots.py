"""Counting semaphores shared by every process, for "at most N runs of agent X at once".
A holder takes one of ``limit`` slots of a key for a while (its ttl) and renews it for
as long as it runs; a holder whose process died stops counting when its ttl runs out.
In this process, in the database, or in Redis."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, func, select, update

from corral.storage.db import Database
from corral.storage.limit_keys import Clock, take_turn
from corral.storage.tables import RunSlotRow

if TYPE_CHECKING:
    from redis.asyncio import Redis


class RunSlots(Protocol):
    """Slots of named keys, each held by a holder until given back or expired."""

    async def take(self, key: str, holder: str, limit: int, ttl_s: float) -> bool:
        """Hold one of ``key``'s ``limit`` slots for ``ttl_s``: False when ``limit``
        live holders hold it already. Taking again by the same holder is True and
        renews. Raises ValueError for a limit below 1 or a ttl of no time."""
        ...

    async def renew(self, key: str, holder: str, ttl_s: float) -> None:
        """Hold ``holder``'s slot for ``ttl_s`` from now, if it still holds one."""
        ...

    async def give_back(self, key: str, holder: str) -> None:
        """Let go of ``holder``'s slot, if it holds one."""
        ...

    async def held(self, key: str) -> int:
        """How many live holders hold ``key``."""
        ...


def _check(limit: int, ttl_s: float) -> None:
    if limit < 1 or ttl_s <= 0:
        raise ValueError(f"slots need a limit of at least 1 and a ttl, not {limit}, {ttl_s}s")


class InProcessRunSlots:
    """Slots in this process: for one process, or for tests."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        #: key → holder → when its slot expires
        self._holders: dict[str, dict[str, float]] = {}

    async def take(self, key: str, holder: str, limit: int, ttl_s: float) -> bool:
        """Take or renew a slot unless all are held by others."""
        _check(limit, ttl_s)
        holders = self._live(key)
        if holder not in holders and len(holders) >= limit:
            return False
        holders[holder] = self.clock() + ttl_s
        return True

    async def renew(self, key: str, holder: str, ttl_s: float) -> None:
        """Move the slot's expiry, if it is still held."""
        holders = self._live(key)
        if holder in holders:
            holders[holder] = self.clock() + ttl_s

    async def give_back(self, key: str, holder: str) -> None:
        """Drop the holder."""
        self._live(key).pop(holder, None)

    async def held(self, key: str) -> int:
        """Count the live holders."""
        return len(self._live(key))

    def _live(self, key: str) -> dict[str, float]:
        now = self.clock()
        live = {h: until for h, until in self._holders.get(key, {}).items() if until > now}
        self._holders[key] = live
        return live


class DatabaseRunSlots:
    """A slot is a row of ``run_slots``. Taking one is one transaction that first takes
    its turn on the key (storage/limit_keys.py), so that two processes cannot both take
    the last slot."""

    #: Run-slot keys are kept apart from the rate limits' in ``limit_keys``.
    TURN_PREFIX = "run-slots:"

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def take(self, key: str, holder: str, limit: int, ttl_s: float) -> bool:
        """Take or renew a slot unless all are held by others."""
        _check(limit, ttl_s)
        now = self.clock()
        ours = (RunSlotRow.key == key, RunSlotRow.holder == holder)
        async with self.db.transaction() as connection:
            await take_turn(connection, self.db, [self.TURN_PREFIX + key])
            await connection.execute(
                delete(RunSlotRow).where(RunSlotRow.key == key, RunSlotRow.expires_at <= now)
            )
            holders = set(
                (
                    await connection.execute(select(RunSlotRow.holder).where(RunSlotRow.key == key))
                ).scalars()
            )
            if holder in holders:
                await connection.execute(
                    update(RunSlotRow).where(*ours).values(expires_at=now + ttl_s)
                )
                return True
            if len(holders) >= limit:
                return False
            await connection.execute(
                self.db.insert(RunSlotRow).values(key=key, holder=holder, expires_at=now + ttl_s)
            )
        return True

    async def renew(self, key: str, holder: str, ttl_s: float) -> None:
        """Move the slot's expiry, if it is still held."""
        now = self.clock()
        statement = (
            update(RunSlotRow)
            .where(RunSlotRow.key == key, RunSlotRow.holder == holder, RunSlotRow.expires_at > now)
            .values(expires_at=now + ttl_s)
        )
        async with self.db.transaction() as connection:
            await connection.execute(statement)

    async def give_back(self, key: str, holder: str) -> None:
        """Delete the holder's row."""
        statement = delete(RunSlotRow).where(RunSlotRow.key == key, RunSlotRow.holder == holder)
        async with self.db.transaction() as connection:
            await connection.execute(statement)

    async def held(self, key: str) -> int:
        """Count the live rows."""
        query = (
            select(func.count())
            .select_from(RunSlotRow)
            .where(RunSlotRow.key == key, RunSlotRow.expires_at > self.clock())
        )
        async with self.db.reading() as connection:
            return int((await connection.execute(query)).scalar_one())


# A key is a sorted set of holders scored by expiry; it expires with its last holder.
# Times arrive as strings of full precision (see storage/limiter.py) and are passed on
# to Redis as they came.
_EXPIRE = """
local function expire()
    local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
    if last[2] then
        local ms = math.ceil((tonumber(last[2]) - tonumber(ARGV[1])) * 1000)
        redis.call('PEXPIRE', KEYS[1], math.max(1, ms))
    end
end
"""
#: ARGV: now, holder, limit, expiry.
_TAKE = (
    _EXPIRE
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if not redis.call('ZSCORE', KEYS[1], ARGV[2])
        and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then
    return 0
end
redis.call('ZADD', KEYS[1], ARGV[4], ARGV[2])
expire()
return 1
"""
)
#: ARGV: now, holder, expiry.
_RENEW = (
    _EXPIRE
    + """
local expires = redis.call('ZSCORE', KEYS[1], ARGV[2])
if expires and tonumber(expires) > tonumber(ARGV[1]) then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], ARGV[2])
    expire()
end
return 1
"""
)


class RedisRunSlots:
    """Slots in Redis sorted sets, taken and renewed by Lua scripts, which Redis runs
    without interleaving any other command."""

    def __init__(
        self, client: Redis, prefix: str = "corral:run-slots:", clock: Clock = time.time
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock = clock
        self._take = client.register_script(_TAKE)
        self._renew = client.register_script(_RENEW)

    async def take(self, key: str, holder: str, limit: int, ttl_s: float) -> bool:
        """Take or renew a slot unless all are held by others."""
        _check(limit, ttl_s)
        now = self.clock()
        args: list[str | int] = [repr(now), holder, limit, repr(now + ttl_s)]
        return bool(await self._take(keys=[self.prefix + key], args=args))

    async def renew(self, key: str, holder: str, ttl_s: float) -> None:
        """Move the slot's expiry, if it is still held."""
        now = self.clock()
        await self._renew(keys=[self.prefix + key], args=[repr(now), holder, repr(now + ttl_s)])

    async def give_back(self, key: str, holder: str) -> None:
        """Remove the holder."""
        await self.client.zrem(self.prefix + key, holder)

    async def held(self, key: str) -> int:
        """Count the holders whose expiry is ahead."""
        return int(await self.client.zcount(self.prefix + key, f"({self.clock()!r}", "+inf"))
