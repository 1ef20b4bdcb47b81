"""Daily budgets that hold across processes, and the ledger of model calls.

Before a model call its worst-case cost is *reserved* (a hold) against the agent's and
the team's budget of the day; after it, the hold is *settled* with the real cost. Every
write to one day's money first updates that day's team row, so the transactions that
reserve, settle or raise on a day take turns on that row: PostgreSQL (READ COMMITTED)
makes the next one wait for the row lock and then read what the last one committed;
SQLite has one writer at a time, and the first statement is a write, so a transaction
never reads a stale snapshot and then finds it cannot write. Two processes racing over
the last dollars therefore cannot both pass.

A hold expires (``ttl_s``) so that a process killed between reserve and settle leaves
nothing stuck; expired holds are deleted by the next reserve. Times come from the
caller's clock, so the processes are assumed to have synchronised clocks, as the
database lock and limiter already are.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from typing import Literal, cast

from sqlalchemy import Table, case, delete, distinct, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database, utc
from corral.storage.ids import new_id
from corral.storage.tables import ModelCallRow, SpendDayRow, SpendHoldRow

#: The scope key of the whole team's budget (no agent handle starts with ``*``).
TEAM = "*team"

#: The share of a cap at which approvers are warned, once a day.
WARN_AT = 0.8


def day_of(at: float, zone: tzinfo) -> str:
    """The budget day of the instant ``at`` (seconds since the epoch): YYYY-MM-DD in
    ``zone``, the team's timezone."""
    return datetime.fromtimestamp(at, zone).date().isoformat()


@dataclass(frozen=True)
class Caps:
    """The daily budgets in USD configured for one agent and for the team (None: no
    cap), before today's raises."""

    agent: float | None
    team: float | None


@dataclass(frozen=True)
class Hold:
    """A reservation of ``amount`` USD against ``agent``'s and the team's budget of
    ``day``, until it is settled, released or expires."""

    id: str
    day: str
    agent: str
    amount: float


@dataclass(frozen=True)
class Refusal:
    """Why a reservation was refused: the ``scope`` whose cap it would pass."""

    scope: Literal["agent", "team"]
    #: What the scope has spent today plus its live holds.
    used: float
    #: The configured cap plus today's raises.
    cap: float
    #: True for exactly one refusal per (day, agent), whichever process makes it, until
    #: a raise: approvers are told once.
    first: bool


@dataclass(frozen=True)
class CallRecord:
    """One model call, as the ledger keeps it."""

    run_id: str
    agent: str
    #: provider/model
    model: str
    tokens_in: int
    tokens_out: int
    cache_read: int
    cache_write: int
    #: None when the model's price is unknown.
    cost_usd: float | None


@dataclass(frozen=True)
class Settled:
    """The agent's and the team's money once a call is settled."""

    #: Spent today plus live holds.
    agent_used: float
    team_used: float
    #: This settle took what the agent has *spent* (holds are worst cases, not money)
    #: past 80% of its cap, raises included, for the first time today: once per (day,
    #: agent), whichever process settles.
    warn_agent: bool
    warn_team: bool


@dataclass(frozen=True)
class UsageRow:
    """One agent's calls to one model over a period."""

    agent: str
    model: str
    #: Distinct runs that made these calls.
    runs: int
    calls: int
    tokens_in: int
    tokens_out: int
    cache_read: int
    cache_write: int
    #: The sum of the calls whose cost is known.
    cost_usd: float
    #: Calls to a model whose price is unknown (their cost is not in ``cost_usd``).
    unknown_cost_calls: int


@dataclass(frozen=True)
class _Day:
    """A scope's row and live holds as read inside a transaction."""

    spent: float
    raised: float
    held: float

    @property
    def used(self) -> float:
        return self.spent + self.held


def _cap(configured: float | None, day: _Day) -> float | None:
    return None if configured is None else configured + day.raised


def _day_row(day: str, scope: str, cost: float = 0.0) -> dict[str, object]:
    """A (day, scope) row of money for the upsert that adds ``cost`` to what it spent."""
    return {
        "day": day,
        "scope": scope,
        "spent_usd": cost,
        "raised_usd": 0.0,
        "warned": False,
        "refused_told": False,
    }


class SpendStore:
    """Reserves, settles and raises daily budgets; keeps and sums the ledger of calls."""

    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        # Built once: every model call runs them, and building a statement costs more
        # than running it.
        days = db.insert(SpendDayRow)
        #: Adds ``spent_usd`` to a (day, scope) row, made on first use; run with rows.
        self._add_spent = days.on_conflict_do_update(
            index_elements=["day", "scope"],
            set_={"spent_usd": SpendDayRow.spent_usd + days.excluded.spent_usd},
        )
        self._write_call = insert(cast(Table, ModelCallRow.__table__))

    async def reserve(
        self, day: str, agent: str, amount: float, caps: Caps, ttl_s: float = 900.0
    ) -> Hold | Refusal:
        """Hold ``amount`` USD for ``agent`` on ``day`` (YYYY-MM-DD in the team's
        timezone, computed by the caller) for ``ttl_s`` seconds, unless it would take the
        agent's or the team's spent-plus-held past its cap (raises included); then a
        :class:`Refusal`, and nothing is held. Atomic across processes."""
        now = self.clock()
        async with self.db.transaction() as connection:
            # The rows are written even with nothing to add: that takes them in turn
            # (the row lock; SQLite's write lock), the team's first, as every writer does.
            await connection.execute(self._add_spent, [_day_row(day, TEAM), _day_row(day, agent)])
            # This day's and earlier days' only: later days' holds are another turn's.
            expired = delete(SpendHoldRow).where(
                SpendHoldRow.day <= day, SpendHoldRow.expires_at <= now
            )
            await connection.execute(expired)
            mine, team = await self._read(connection, day, agent, now)
            checks: tuple[tuple[Literal["agent", "team"], float | None, _Day], ...] = (
                ("agent", caps.agent, mine),
                ("team", caps.team, team),
            )
            for scope, configured, state in checks:
                cap = _cap(configured, state)
                if cap is not None and state.used + amount > cap:
                    first = await self._flag(connection, day, agent, "refused_told")
                    return Refusal(scope, state.used, cap, first)
            hold = Hold(new_id("h"), day, agent, amount)
            await connection.execute(
                insert(SpendHoldRow).values(
                    id=hold.id, day=day, agent=agent, amount=amount, expires_at=now + ttl_s
                )
            )
        return hold

    async def settle(self, hold: Hold | None, call: CallRecord, day: str, caps: Caps) -> Settled:
        """Remove ``hold``, add the call's real cost (when known) to the agent's and the
        team's spent of the hold's day (``day`` without a hold: a call made without a
        budget), and write the call to the ledger, in one transaction. A hold taken
        before midnight counts on its own day. Without ``caps`` (neither the agent nor
        the team has a budget) what was used is not read back: it says 0."""
        on = hold.day if hold is not None else day
        now = self.clock()
        async with self.db.transaction() as connection:
            # The team row first, as every writer of the day's money takes it.
            await self.record([(on, call)], on=connection)
            if hold is not None:
                await connection.execute(delete(SpendHoldRow).where(SpendHoldRow.id == hold.id))
            if caps.agent is None and caps.team is None:
                # No budget to warn about: the day's money need not be read back.
                return Settled(0.0, 0.0, False, False)
            mine, team = await self._read(connection, on, call.agent, now)
            warn_agent = await self._warn(connection, on, call.agent, caps.agent, mine)
            warn_team = await self._warn(connection, on, TEAM, caps.team, team)
        return Settled(mine.used, team.used, warn_agent, warn_team)

    async def record(
        self, calls: Sequence[tuple[str, CallRecord]], *, on: AsyncConnection | None = None
    ) -> None:
        """Add each call's cost to its day's spent (the agent's and the team's) and write
        it to the ledger; with ``on``, in the caller's transaction (a run's end records the
        calls of agents without a budget there, a write less per call)."""
        if not calls:
            return
        now = datetime.fromtimestamp(self.clock(), UTC)
        spent: dict[tuple[str, str], float] = {}
        for day, call in calls:
            for scope in (TEAM, call.agent):
                spent[day, scope] = spent.get((day, scope), 0.0) + (call.cost_usd or 0.0)
        days = [
            _day_row(day, scope, cost)
            # The team rows first, as every writer of the day's money takes them.
            for (day, scope), cost in sorted(spent.items(), key=lambda i: i[0][1] != TEAM)
        ]
        ledger = [
            {
                "id": new_id("c"),
                "at": now,
                "day": day,
                "run_id": call.run_id,
                "agent": call.agent,
                "model": call.model,
                "tokens_in": call.tokens_in,
                "tokens_out": call.tokens_out,
                "cache_read": call.cache_read,
                "cache_write": call.cache_write,
                "cost_usd": call.cost_usd,
            }
            for day, call in calls
        ]
        async with self.db.transaction(on) as connection:
            await connection.execute(self._add_spent, days)
            await connection.execute(self._write_call, ledger)

    async def release(self, hold: Hold) -> None:
        """Give ``hold`` back unspent (the call was not made)."""
        async with self.db.transaction() as connection:
            await connection.execute(delete(SpendHoldRow).where(SpendHoldRow.id == hold.id))

    async def raise_cap(
        self, day: str, agent: str, amount: float, *, on: AsyncConnection | None = None
    ) -> float:
        """Add ``amount`` USD to ``agent``'s cap for ``day`` (:data:`TEAM` for the team's)
        and return that day's raises in all; a later refusal is told to the approvers
        again (for a team raise: any agent's). With ``on``, in the caller's transaction."""
        upsert = (
            self.db.insert(SpendDayRow)
            .values(
                day=day,
                scope=agent,
                spent_usd=0.0,
                raised_usd=amount,
                warned=False,
                refused_told=False,
            )
            .on_conflict_do_update(
                index_elements=["day", "scope"],
                set_={"raised_usd": SpendDayRow.raised_usd + amount},
            )
            .returning(SpendDayRow.raised_usd)
        )
        told = update(SpendDayRow).where(SpendDayRow.day == day, SpendDayRow.refused_told)
        if agent != TEAM:
            told = told.where(SpendDayRow.scope == agent)
        async with self.db.transaction(on) as connection:
            # The team row first, as every writer of the day's money takes it.
            await connection.execute(self._add_spent, [_day_row(day, TEAM)])
            total = (await connection.execute(upsert)).scalar_one()
            await connection.execute(told.values(refused_told=False))
        return float(total)

    async def used(self, day: str) -> dict[str, float]:
        """Per scope (agent handles and :data:`TEAM`), spent plus live holds on ``day``."""
        now = self.clock()
        days = select(SpendDayRow.scope, SpendDayRow.spent_usd).where(SpendDayRow.day == day)
        holds = (
            select(SpendHoldRow.agent, func.sum(SpendHoldRow.amount))
            .where(SpendHoldRow.day == day, SpendHoldRow.expires_at > now)
            .group_by(SpendHoldRow.agent)
        )
        async with self.db.reading() as connection:
            spent = {scope: float(value) for scope, value in await connection.execute(days)}
            held = {agent: float(value) for agent, value in await connection.execute(holds)}
        used = {scope: spent.get(scope, 0.0) + held.get(scope, 0.0) for scope in spent | held}
        if used:
            used[TEAM] = spent.get(TEAM, 0.0) + sum(held.values())
        return used

    async def raised(self, day: str) -> dict[str, float]:
        """Per scope, the raises of ``day`` (scopes never raised are left out)."""
        statement = select(SpendDayRow.scope, SpendDayRow.raised_usd).where(
            SpendDayRow.day == day, SpendDayRow.raised_usd != 0
        )
        async with self.db.reading() as connection:
            return {scope: float(value) for scope, value in await connection.execute(statement)}

    async def usage(
        self, since: datetime, until: datetime, agent: str | None = None
    ) -> list[UsageRow]:
        """Per agent and model, the calls made at or after ``since`` and before ``until``
        (naive means UTC), of ``agent`` only when given; ordered by agent and model."""
        call = ModelCallRow
        statement = (
            select(
                call.agent,
                call.model,
                func.count(distinct(call.run_id)),
                func.count(),
                func.sum(call.tokens_in),
                func.sum(call.tokens_out),
                func.sum(call.cache_read),
                func.sum(call.cache_write),
                func.coalesce(func.sum(call.cost_usd), 0.0),
                func.sum(case((call.cost_usd.is_(None), 1), else_=0)),
            )
            .where(call.at >= utc(since), call.at < utc(until))
            .group_by(call.agent, call.model)
            .order_by(call.agent, call.model)
        )
        if agent is not None:
            statement = statement.where(call.agent == agent)
        async with self.db.reading() as connection:
            rows = (await connection.execute(statement)).all()
        return [
            UsageRow(
                agent=row[0],
                model=row[1],
                runs=int(row[2]),
                calls=int(row[3]),
                tokens_in=int(row[4]),
                tokens_out=int(row[5]),
                cache_read=int(row[6]),
                cache_write=int(row[7]),
                cost_usd=float(row[8]),
                unknown_cost_calls=int(row[9]),
            )
            for row in rows
        ]

    async def _read(
        self, connection: AsyncConnection, day: str, agent: str, now: float
    ) -> tuple[_Day, _Day]:
        """The agent's and the team's money on ``day``, holds live at ``now`` included."""
        rows = await connection.execute(
            select(SpendDayRow.scope, SpendDayRow.spent_usd, SpendDayRow.raised_usd).where(
                SpendDayRow.day == day, SpendDayRow.scope.in_([agent, TEAM])
            )
        )
        money = {scope: (float(spent), float(raised)) for scope, spent, raised in rows}
        mine_held, all_held = (
            await connection.execute(
                select(
                    func.coalesce(
                        func.sum(case((SpendHoldRow.agent == agent, SpendHoldRow.amount))), 0.0
                    ),
                    func.coalesce(func.sum(SpendHoldRow.amount), 0.0),
                ).where(SpendHoldRow.day == day, SpendHoldRow.expires_at > now)
            )
        ).one()
        mine = _Day(*money.get(agent, (0.0, 0.0)), held=float(mine_held))
        team = _Day(*money.get(TEAM, (0.0, 0.0)), held=float(all_held))
        return mine, team

    async def _warn(
        self,
        connection: AsyncConnection,
        day: str,
        scope: str,
        configured: float | None,
        state: _Day,
    ) -> bool:
        cap = _cap(configured, state)
        if cap is None or state.spent < WARN_AT * cap:
            return False
        return await self._flag(connection, day, scope, "warned")

    async def _flag(
        self,
        connection: AsyncConnection,
        day: str,
        scope: str,
        flag: Literal["warned", "refused_told"],
    ) -> bool:
        """Set ``flag`` on ``scope``'s row of ``day``; True only for the one transaction
        that found it unset."""
        column = SpendDayRow.warned if flag == "warned" else SpendDayRow.refused_told
        statement = (
            update(SpendDayRow)
            .where(SpendDayRow.day == day, SpendDayRow.scope == scope, column.is_(False))
            .values({flag: True})
            .returning(SpendDayRow.scope)
        )
        return (await connection.execute(statement)).scalar_one_or_none() is not None
