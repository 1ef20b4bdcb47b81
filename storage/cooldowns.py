"""Per-model cooldowns shared by every process: a model its provider refused (429, 529,
5xx) is not called again, by any agent or process, until its cooldown is over; it comes
back by itself when the time is up. In this process, in the database, or in Redis."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import case, select

from corral.storage.db import Database
from corral.storage.limit_keys import Clock
from corral.storage.tables import CooldownRow

if TYPE_CHECKING:
    from redis.asyncio import Redis


class Cooldowns(Protocol):
    """Which models are cooling down, and until when (seconds since the epoch)."""

    async def cool(self, model: str, seconds: float) -> None:
        """Cool ``model`` until ``seconds`` from now; a longer cooldown is never
        shortened."""
        ...

    async def until(self, model: str) -> float:
        """When ``model``'s cooldown ends; 0.0 when it is not cooling."""
        ...

    async def cooling(self) -> dict[str, float]:
        """Every model cooling now, and until when."""
        ...


class InProcessCooldowns:
    """Cooldowns in this process: for one process, or for tests."""

    def __init__(self, clock: Clock = time.time) -> None:
        self.clock = clock
        self._until: dict[str, float] = {}

    async def cool(self, model: str, seconds: float) -> None:
        """Move ``model``'s end later, never earlier."""
        until = self.clock() + seconds
        self._until[model] = max(until, self._until.get(model, until))

    async def until(self, model: str) -> float:
        """``model``'s end, if it is still ahead."""
        return (await self.cooling()).get(model, 0.0)

    async def cooling(self) -> dict[str, float]:
        """The ends still ahead (the others are forgotten)."""
        now = self.clock()
        self._until = {model: until for model, until in self._until.items() if until > now}
        return dict(self._until)


class DatabaseCooldowns:
    """A cooldown is a row of ``cooldowns``, kept at the later end by one upsert, which
    the database applies to the row as it is (so two processes cooling one model at once
    keep the longer cooldown). A row stays after its end: there is one per model."""

    def __init__(self, db: Database, clock: Clock = time.time) -> None:
        self.db = db
        self.clock = clock

    async def cool(self, model: str, seconds: float) -> None:
        """Move ``model``'s end later, never earlier."""
        statement = self.db.insert(CooldownRow).values(model=model, until=self.clock() + seconds)
        # CASE rather than GREATEST, which SQLite lacks.
        later = case(
            (statement.excluded.until > CooldownRow.until, statement.excluded.until),
            else_=CooldownRow.until,
        )
        async with self.db.transaction() as connection:
            await connection.execute(
                statement.on_conflict_do_update(index_elements=["model"], set_={"until": later})
            )

    async def until(self, model: str) -> float:
        """``model``'s end, if it is still ahead."""
        query = select(CooldownRow.until).where(
            CooldownRow.model == model, CooldownRow.until > self.clock()
        )
        async with self.db.reading() as connection:
            until = (await connection.execute(query)).scalar_one_or_none()
        return 0.0 if until is None else float(until)

    async def cooling(self) -> dict[str, float]:
        """The ends still ahead."""
        query = select(CooldownRow.model, CooldownRow.until).where(CooldownRow.until > self.clock())
        async with self.db.reading() as connection:
            return {model: float(until) for model, until in await connection.execute(query)}


class RedisCooldowns:
    """Cooldowns are one sorted set of models scored by their end; ``ZADD GT`` keeps the
    later end atomically, and ends that passed are pruned on read."""

    def __init__(
        self, client: Redis, prefix: str = "corral:cooldowns", clock: Clock = time.time
    ) -> None:
        self.client = client
        self.key = prefix
        self.clock = clock

    async def cool(self, model: str, seconds: float) -> None:
        """Move ``model``'s end later, never earlier."""
        await self.client.zadd(self.key, {model: self.clock() + seconds}, gt=True)

    async def until(self, model: str) -> float:
        """``model``'s end, if it is still ahead."""
        until = await self.client.zscore(self.key, model)
        return float(until) if until is not None and until > self.clock() else 0.0

    async def cooling(self) -> dict[str, float]:
        """The ends still ahead; the others are removed."""
        now = self.clock()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self.key, "-inf", now)
            pipe.zrange(self.key, 0, -1, withscores=True)
            _, ahead = await pipe.execute()
        return {
            (model.decode() if isinstance(model, bytes) else str(model)): float(until)
            for model, until in ahead
        }
