"""Locks that every process of one deployment shares: in the database, or in Redis when
``REDIS_URL`` is set. A lock expires by itself, so a process that dies cannot hold one
for ever; its holder renews it for as long as it needs it."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import delete, select, update

from corral.storage.db import Database
from corral.storage.tables import LockRow, utcnow

if TYPE_CHECKING:
    # Only the composition root makes a Redis client (when REDIS_URL is set): importing
    # redis is not cheap, and most commands never need it.
    from redis.asyncio import Redis

#: How often a database lock sweeps out expired locks other than the one it takes.
PURGE_EVERY = timedelta(minutes=1)


class Lock(Protocol):
    """Named, expiring locks shared by every process of a deployment."""

    async def acquire(self, key: str, ttl: timedelta) -> str | None:
        """Take ``key`` for ``ttl``: a token (needed to renew or release it) when taken,
        None when someone else holds it."""
        ...

    async def renew(self, key: str, token: str, ttl: timedelta) -> bool:
        """Hold ``key`` for ``ttl`` from now; False when it is no longer ours (expired)."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Let go of ``key`` if we still hold it."""
        ...


def _token() -> str:
    return secrets.token_hex(16)


class DatabaseLock:
    """A lock is a row; the primary key makes sure only one process inserts it."""

    def __init__(self, db: Database, purge_every: timedelta = PURGE_EVERY) -> None:
        self.db = db
        self.purge_every = purge_every
        self._purged_at = utcnow() - purge_every

    async def acquire(self, key: str, ttl: timedelta) -> str | None:
        """Take ``key`` for ``ttl`` unless an unexpired row holds it."""
        token, now = _token(), utcnow()
        insert = (
            self.db.insert(LockRow)
            .values(key=key, token=token, expires_at=now + ttl)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(LockRow.key)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(
                delete(LockRow).where(LockRow.key == key, LockRow.expires_at <= now)
            )
            # RETURNING rather than rowcount: it says the same on every driver.
            taken = (await session.execute(insert)).scalar_one_or_none() is not None
        if now - self._purged_at >= self.purge_every:
            await self._purge()
        return token if taken else None

    async def renew(self, key: str, token: str, ttl: timedelta) -> bool:
        """Move our lock's expiry to ``ttl`` from now."""
        now = utcnow()
        statement = (
            update(LockRow)
            .where(LockRow.key == key, LockRow.token == token, LockRow.expires_at > now)
            .values(expires_at=now + ttl)
            .returning(LockRow.key)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            return (await session.execute(statement)).scalar_one_or_none() is not None

    async def release(self, key: str, token: str) -> None:
        """Delete our lock's row."""
        statement = delete(LockRow).where(LockRow.key == key, LockRow.token == token)
        async with self.db.session() as session, session.begin():
            await session.execute(statement)

    async def _purge(self) -> None:
        """Delete expired locks, so that one-off keys (a fire time's) do not pile up."""
        now = self._purged_at = utcnow()
        expired = select(LockRow.key).where(LockRow.expires_at <= now).limit(500)
        if not self.db.is_sqlite:
            # Processes purging at once skip each other's rows instead of waiting on them.
            expired = expired.with_for_update(skip_locked=True)
        statement = delete(LockRow).where(LockRow.key.in_(expired.scalar_subquery()))
        async with self.db.session() as session, session.begin():
            await session.execute(statement)


# Both compare the token first, so a holder whose lock expired and was taken by another
# cannot renew or delete the new holder's lock.
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class RedisLock:
    """A lock is a key set with ``SET key token NX PX ttl``; it expires in Redis itself."""

    def __init__(self, client: Redis, prefix: str = "corral:lock:") -> None:
        self.client = client
        self.prefix = prefix
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    async def acquire(self, key: str, ttl: timedelta) -> str | None:
        """Take ``key`` for ``ttl`` unless it is set."""
        token = _token()
        taken = await self.client.set(self.prefix + key, token, nx=True, px=_ms(ttl))
        return token if taken else None

    async def renew(self, key: str, token: str, ttl: timedelta) -> bool:
        """Move our key's expiry to ``ttl`` from now."""
        return bool(await self._renew(keys=[self.prefix + key], args=[token, _ms(ttl)]))

    async def release(self, key: str, token: str) -> None:
        """Delete our key."""
        await self._release(keys=[self.prefix + key], args=[token])


def _ms(ttl: timedelta) -> int:
    return max(1, int(ttl.total_seconds() * 1000))
