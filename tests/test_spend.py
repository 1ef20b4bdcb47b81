"""Daily budgets that hold across processes, and the ledger of model calls
(storage/spend.py), on SQLite and PostgreSQL. Several handles on one database stand for
several processes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from backends import DATABASES, Clock, databases
from sqlalchemy import func, select

from corral.storage.spend import (
    TEAM,
    CallRecord,
    Caps,
    Hold,
    Refusal,
    SpendStore,
    UsageRow,
    day_of,
)
from corral.storage.store import RunEnd, RunStart, Storage
from corral.storage.tables import ModelCallRow, SpendHoldRow

DAY = "2026-12-05"
NEXT_DAY = "2026-12-06"

Stores = Callable[[], SpendStore]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=DATABASES)
async def stores(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Stores]:
    """A function giving another process's store on one shared database, on ``clock``."""
    async with databases(request.param, tmp_path) as database:
        yield lambda: SpendStore(database(), clock)


def call(
    agent: str, cost: float | None, *, run_id: str = "r-1", model: str = "anthropic/m"
) -> CallRecord:
    return CallRecord(
        run_id=run_id,
        agent=agent,
        model=model,
        tokens_in=100,
        tokens_out=10,
        cache_read=5,
        cache_write=1,
        cost_usd=cost,
    )


async def test_racing_processes_hold_no_more_than_the_cap(stores: Stores) -> None:
    processes = [stores() for _ in range(3)]
    caps = Caps(agent=10.0, team=None)
    results = await asyncio.gather(
        *(processes[i % 3].reserve(DAY, "beaver", 1.0, caps) for i in range(30))
    )
    holds = [r for r in results if isinstance(r, Hold)]
    refusals = [r for r in results if isinstance(r, Refusal)]
    assert len(holds) == 10
    assert len(refusals) == 20
    assert all(r.scope == "agent" and r.cap == 10.0 for r in refusals)
    assert await processes[0].used(DAY) == {"beaver": 10.0, TEAM: 10.0}


async def test_racing_agents_hold_no_more_than_the_team_cap(stores: Stores) -> None:
    processes = [stores(), stores()]
    caps = Caps(agent=None, team=7.0)
    results = await asyncio.gather(
        *(processes[i % 2].reserve(DAY, f"a{i % 5}", 1.0, caps) for i in range(20))
    )
    assert sum(isinstance(r, Hold) for r in results) == 7
    assert {r.scope for r in results if isinstance(r, Refusal)} == {"team"}


async def test_processes_spending_the_last_dollars_overshoot_by_at_most_one_call(
    stores: Stores,
) -> None:
    """Each worker reserves a worst case, then settles a real cost of up to that worst
    case, until it is refused: the team's spend stays within its cap."""
    caps = Caps(agent=None, team=20.0)

    async def worker(store: SpendStore, agent: str) -> int:
        made = 0
        while True:
            hold = await store.reserve(DAY, agent, 1.5, caps)
            if isinstance(hold, Refusal):
                return made
            await store.settle(hold, call(agent, 1.25), DAY, caps)
            made += 1

    processes = [stores(), stores()]
    made = await asyncio.gather(*(worker(processes[i % 2], f"a{i}") for i in range(6)))
    used = await processes[0].used(DAY)
    assert used[TEAM] == pytest.approx(1.25 * sum(made))
    assert used[TEAM] <= 20.0
    # Refused only when the worst case no longer fit.
    assert used[TEAM] + 1.5 > 20.0


async def test_a_killed_processs_hold_expires_and_is_deleted(stores: Stores, clock: Clock) -> None:
    killed, alive = stores(), stores()
    caps = Caps(agent=5.0, team=None)
    assert isinstance(await killed.reserve(DAY, "owl", 5.0, caps, ttl_s=60), Hold)
    refused = await alive.reserve(DAY, "owl", 1.0, caps)
    assert isinstance(refused, Refusal) and refused.used == 5.0
    clock.advance(61)
    assert await alive.used(DAY) == {"owl": 0.0, TEAM: 0.0}
    assert isinstance(await alive.reserve(DAY, "owl", 1.0, caps), Hold)
    async with alive.db.reading() as connection:
        amounts = (await connection.execute(select(SpendHoldRow.amount))).scalars().all()
    assert amounts == [1.0]


async def test_a_hold_released_is_given_back(stores: Stores) -> None:
    store = stores()
    caps = Caps(agent=2.0, team=None)
    hold = await store.reserve(DAY, "owl", 2.0, caps)
    assert isinstance(hold, Hold)
    await store.release(hold)
    assert isinstance(await store.reserve(DAY, "owl", 2.0, caps), Hold)


async def test_a_call_held_before_midnight_counts_on_its_day(stores: Stores) -> None:
    store = stores()
    caps = Caps(agent=10.0, team=10.0)
    hold = await store.reserve(DAY, "beaver", 3.0, caps)
    assert isinstance(hold, Hold)
    settled = await store.settle(hold, call("beaver", 2.5), NEXT_DAY, caps)
    assert settled.agent_used == 2.5 and settled.team_used == 2.5
    assert await store.used(DAY) == {"beaver": 2.5, TEAM: 2.5}
    assert await store.used(NEXT_DAY) == {}
    # Without a hold (no budget to reserve against), the caller's day.
    await store.settle(None, call("beaver", 1.0), NEXT_DAY, caps)
    assert await store.used(NEXT_DAY) == {"beaver": 1.0, TEAM: 1.0}
    async with store.db.reading() as connection:
        days = (
            (await connection.execute(select(ModelCallRow.day).order_by(ModelCallRow.day)))
            .scalars()
            .all()
        )
    assert days == [DAY, NEXT_DAY]


async def test_the_80_percent_warning_comes_once_per_agent_and_team(stores: Stores) -> None:
    store = stores()
    caps = Caps(agent=10.0, team=20.0)
    first = await store.settle(None, call("beaver", 5.0), DAY, caps)
    assert (first.warn_agent, first.warn_team) == (False, False)
    crossing = await store.settle(None, call("beaver", 3.0), DAY, caps)
    assert (crossing.warn_agent, crossing.warn_team) == (True, False)
    after = await store.settle(None, call("beaver", 1.0), DAY, caps)
    assert (after.warn_agent, after.warn_team) == (False, False)
    # The team crosses 16 through another agent; beaver's warning is not repeated.
    team = await store.settle(None, call("owl", 7.0), DAY, caps)
    assert (team.warn_agent, team.warn_team) == (False, True)
    assert team.team_used == 16.0


async def test_racing_settles_warn_once(stores: Stores) -> None:
    processes = [stores(), stores()]
    caps = Caps(agent=10.0, team=None)
    settled = await asyncio.gather(
        *(processes[i % 2].settle(None, call("beaver", 1.0), DAY, caps) for i in range(12))
    )
    assert sum(s.warn_agent for s in settled) == 1
    assert max(s.agent_used for s in settled) == 12.0


async def test_the_warning_counts_money_spent_not_holds(stores: Stores) -> None:
    store = stores()
    caps = Caps(agent=10.0, team=None)
    assert isinstance(await store.reserve(DAY, "beaver", 5.0, caps), Hold)
    settled = await store.settle(None, call("beaver", 4.0), DAY, caps)
    assert settled.agent_used == 9.0
    assert not settled.warn_agent


async def test_the_first_refusal_of_the_day_is_told_once_then_again_after_a_raise(
    stores: Stores,
) -> None:
    processes = [stores(), stores()]
    caps = Caps(agent=1.0, team=None)
    assert isinstance(await processes[0].reserve(DAY, "beaver", 1.0, caps), Hold)
    refusals = await asyncio.gather(
        *(processes[i % 2].reserve(DAY, "beaver", 1.0, caps) for i in range(10))
    )
    assert all(isinstance(r, Refusal) for r in refusals)
    assert sum(r.first for r in refusals if isinstance(r, Refusal)) == 1
    # Another agent's refusal is told too: once per agent.
    other = await processes[0].reserve(DAY, "owl", 2.0, caps)
    assert isinstance(other, Refusal) and other.first

    assert await processes[1].raise_cap(DAY, "beaver", 1.0) == 1.0
    assert isinstance(await processes[0].reserve(DAY, "beaver", 1.0, caps), Hold)
    again = await processes[0].reserve(DAY, "beaver", 1.0, caps)
    assert again == Refusal("agent", used=2.0, cap=2.0, first=True)
    assert await processes[1].raise_cap(DAY, "beaver", 0.5) == 1.5
    assert await processes[0].raised(DAY) == {"beaver": 1.5}
    # Raises are for that day only.
    assert isinstance(await processes[0].reserve(NEXT_DAY, "beaver", 1.0, caps), Hold)
    assert isinstance(await processes[0].reserve(NEXT_DAY, "beaver", 1.0, caps), Refusal)


async def test_a_team_raise_lets_every_agent_go_on_and_tells_refusals_again(
    stores: Stores,
) -> None:
    store = stores()
    caps = Caps(agent=None, team=2.0)
    assert isinstance(await store.reserve(DAY, "beaver", 2.0, caps), Hold)
    refused = await store.reserve(DAY, "owl", 1.0, caps)
    assert refused == Refusal("team", used=2.0, cap=2.0, first=True)
    again = await store.reserve(DAY, "owl", 1.0, caps)
    assert isinstance(again, Refusal) and not again.first
    assert await store.raise_cap(DAY, TEAM, 1.0) == 1.0
    assert isinstance(await store.reserve(DAY, "owl", 1.0, caps), Hold)
    told = await store.reserve(DAY, "owl", 1.0, caps)
    assert told == Refusal("team", used=3.0, cap=3.0, first=True)
    assert await store.raised(DAY) == {TEAM: 1.0}


async def test_usage_sums_calls_per_agent_and_model_exactly(stores: Stores, clock: Clock) -> None:
    store = stores()
    caps = Caps(agent=None, team=None)
    clock.now = datetime(2026, 12, 5, 10, tzinfo=UTC).timestamp()
    await store.settle(None, call("beaver", 0.125, run_id="r-1"), DAY, caps)
    await store.settle(None, call("beaver", 0.25, run_id="r-1"), DAY, caps)
    await store.settle(None, call("beaver", None, run_id="r-2"), DAY, caps)
    await store.settle(None, call("beaver", 0.5, run_id="r-2", model="openai/g"), DAY, caps)
    await store.settle(None, call("owl", 1.0, run_id="r-3"), DAY, caps)
    clock.advance(86400)
    await store.settle(None, call("owl", 2.0, run_id="r-4"), NEXT_DAY, caps)

    day_start = datetime(2026, 12, 5, tzinfo=UTC)
    rows = await store.usage(day_start, day_start + timedelta(days=1))
    assert rows == [
        UsageRow("beaver", "anthropic/m", 2, 3, 300, 30, 15, 3, 0.375, 1),
        UsageRow("beaver", "openai/g", 1, 1, 100, 10, 5, 1, 0.5, 0),
        UsageRow("owl", "anthropic/m", 1, 1, 100, 10, 5, 1, 1.0, 0),
    ]
    two_days = await store.usage(day_start, day_start + timedelta(days=2), agent="owl")
    assert two_days == [UsageRow("owl", "anthropic/m", 2, 2, 200, 20, 10, 2, 3.0, 0)]
    # A naive datetime is UTC.
    naive = await store.usage(datetime(2026, 12, 6), datetime(2026, 12, 7))
    assert [(r.agent, r.cost_usd) for r in naive] == [("owl", 2.0)]
    assert await store.usage(day_start - timedelta(days=1), day_start) == []
    # Unknown costs add nothing to spend.
    assert (await store.used(DAY))["beaver"] == 0.875


@pytest.mark.parametrize("backend", DATABASES)
async def test_a_run_records_its_cost_cached_tokens_and_model_choice(
    backend: str, tmp_path: Path
) -> None:
    async with databases(backend, tmp_path) as database:
        storage = Storage(database())
        assert isinstance(storage.spend, SpendStore)
        start = RunStart("beaver", "channel default", "console", "c", "t")
        run_id, _ = await storage.start_run(start, history=5)
        unfinished = await storage.runs.get(run_id)
        assert unfinished is not None and unfinished.cost_usd is None
        end = RunEnd(
            run_id,
            "console",
            "c",
            "t",
            outcome="ok",
            model="anthropic/m",
            tokens_in=10,
            tokens_out=2,
            cost_usd=0.0125,
            cache_read=7,
            cache_write=3,
            model_choice="auto: simple — router says one-line answer",
        )
        await storage.end_run(end)
        run = await storage.runs.get(run_id)
        assert run is not None
        assert (run.cost_usd, run.cache_read, run.cache_write) == (0.0125, 7, 3)
        assert run.model_choice == "auto: simple — router says one-line answer"
        other, _ = await storage.start_run(start, history=5)
        await storage.end_run(RunEnd(other, "console", "c", "t", outcome="ok"))
        unknown = await storage.runs.get(other)
        assert unknown is not None and unknown.cost_usd is None


async def test_nothing_is_written_to_the_ledger_by_a_refusal(stores: Stores) -> None:
    store = stores()
    refused = await store.reserve(DAY, "beaver", 2.0, Caps(agent=1.0, team=None))
    assert isinstance(refused, Refusal)
    async with store.db.reading() as connection:
        holds = (
            await connection.execute(select(func.count()).select_from(SpendHoldRow))
        ).scalar_one()
    assert holds == 0


def test_the_budget_day_is_the_date_in_the_teams_timezone() -> None:
    from zoneinfo import ZoneInfo

    at = datetime(2026, 12, 6, 3, 30, tzinfo=UTC).timestamp()
    assert day_of(at, UTC) == NEXT_DAY
    assert day_of(at, ZoneInfo("America/New_York")) == DAY
