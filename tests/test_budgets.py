"""Cost per run and budgets that hold, end to end: the price table times the real usage
(cached tokens included) on every run; an agent at its budget makes no further call, the
thread is told each time and the approvers once a day, a raise lets it go on; processes
racing over the last dollars overshoot by at most one call."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from backends import DATABASES, databases
from fakes.model_server import FakeModelServer, Reply
from harness import TEAM, Harness, make_team

from corral.agents.budgets import BudgetWrapper
from corral.agents.conversation import Place
from corral.agents.llm.prices import PriceTable
from corral.agents.llm.types import Completion, Request, TextBlock
from corral.agents.llm.usage import Usage
from corral.agents.model_calls import CallContext, CallRefused
from corral.bot.decisions import DecisionContext, decide
from corral.storage.spend import SpendStore, day_of
from corral.storage.store import Storage

#: $ per million tokens of the fake's smart-a model.
PRICES = {
    "anthropic/smart-a": {"input": 3.0, "output": 1.0, "cache_read": 0.3, "cache_write": 3.75}
}
USAGE = Usage(input=1000, output=500, cache_read=4000, cache_write=200)
#: 1000 × 3 + 500 × 1 + 4000 × 0.3 + 200 × 3.75, per million.
COST = 0.00545


def budget_team(budget: float, **limits: Any) -> Any:
    return make_team(
        prices=PRICES,
        limits={**TEAM["limits"], "budget_usd_per_day": {"beaver": budget}, **limits},
    )


@pytest.fixture
async def budgeted(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Harness]:
    built = Harness.build(storage, model_server, team=budget_team(0.02))
    built.workers.start()
    yield built
    await built.close()


async def test_the_cost_of_a_run_is_the_price_table_times_its_usage(
    budgeted: Harness,
) -> None:
    budgeted.server.script("smart-a", Reply("Fixed.", usage=USAGE))
    await budgeted.say("@beaver fix the build")
    (run,) = await budgeted.storage.runs.recent()
    assert run.outcome == "ok"
    assert run.cost_usd == pytest.approx(COST, rel=1e-9)
    assert (run.cache_read, run.cache_write) == (4000, 200)
    since = datetime.now(UTC) - timedelta(hours=1)
    (row,) = await budgeted.storage.spend.usage(since, datetime.now(UTC) + timedelta(hours=1))
    assert (row.agent, row.model, row.runs, row.calls) == ("beaver", "anthropic/smart-a", 1, 1)
    assert (row.tokens_in, row.tokens_out, row.cache_read, row.cache_write) == (
        1000,
        500,
        4000,
        200,
    )
    assert row.cost_usd == pytest.approx(COST, rel=1e-9) and row.unknown_cost_calls == 0


async def test_a_model_without_a_price_records_its_cost_as_unknown(harness: Harness) -> None:
    await harness.say("@beaver fix the build")
    (run,) = await harness.storage.runs.recent()
    assert run.outcome == "ok" and run.cost_usd is None


async def test_an_agent_at_its_budget_stops_tells_the_thread_and_asks_approvers_once(
    budgeted: Harness,
) -> None:
    server = budgeted.server
    for n in range(3):
        server.script("smart-a", Reply(f"Done {n}.", usage=USAGE))
        await budgeted.say(f"@beaver task {n}")
    texts = budgeted.adapter.texts()
    # Three answers; the third took Beaver past 80% of $0.02: the approvers hear it once.
    assert [t for t in texts if t.startswith("Done")] == ["Done 0.", "Done 1.", "Done 2."]
    (warning,) = [t for t in texts if "80%" in t or "82%" in t]
    assert "Beaver has used" in warning and "<@U0ADMIN>" in warning
    assert server.count("smart-a") == 3

    # The fourth could cost more than what is left: no call, the thread and the approvers
    # are told, with a request to raise the budget.
    await budgeted.say("@beaver task 3")
    assert server.count("smart-a") == 3
    refusal = budgeted.adapter.texts()[-1]
    assert refusal.startswith("Beaver has used its $0.02 budget for today")
    assert "an approver can raise it" in refusal and "<@U0ADMIN>" in refusal
    (ask,) = [a for a in await budgeted.storage.approvals.pending() if a.kind == "budget"]
    run = (await budgeted.storage.runs.recent())[0]
    assert run.outcome == "over_budget"

    # Another message is refused too; the approvers are not asked again today.
    await budgeted.say("@beaver task 4")
    assert server.count("smart-a") == 3
    assert budgeted.adapter.texts()[-1].startswith("Beaver has used its $0.02 budget")
    assert [a.id for a in await budgeted.storage.approvals.pending()] == [ask.id]

    # Only an approver may raise it; approved, it is raised by a step for today, the
    # request says so, and Beaver goes on.
    context = DecisionContext(budgeted.team, budgeted.storage.approvals, budgeted.workers, "slack")
    refused = await decide(context, ask.id, "approve", "U0SOMEONE")
    assert refused.status == "not_allowed"
    result = await decide(context, ask.id, "approve", "U0ADMIN")
    assert result.ok and result.verdict == "Raised by $0.02 for today by <@U0ADMIN>"
    server.script("smart-a", Reply("Back at it.", usage=USAGE))
    await budgeted.say("@beaver task 5")
    assert budgeted.adapter.texts()[-1] == "Back at it."
    assert server.count("smart-a") == 4


async def test_rejected_the_budget_stays_as_it_is(budgeted: Harness) -> None:
    for n in range(4):
        budgeted.server.script("smart-a", Reply(f"Done {n}.", usage=USAGE))
        await budgeted.say(f"@beaver task {n}")
    (ask,) = [a for a in await budgeted.storage.approvals.pending() if a.kind == "budget"]
    context = DecisionContext(budgeted.team, budgeted.storage.approvals, budgeted.workers, "slack")
    result = await decide(context, ask.id, "reject", "U0ADMIN")
    assert result.ok and result.verdict == "Kept stopped by <@U0ADMIN>"
    await budgeted.say("@beaver one more")
    assert budgeted.adapter.texts()[-1].startswith("Beaver has used its $0.02 budget")
    assert budgeted.server.count("smart-a") == 3


async def test_a_team_budget_holds_for_every_agent(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team(
        prices={**PRICES, "anthropic/fast-a": PRICES["anthropic/smart-a"]},
        limits={**TEAM["limits"], "budget_usd_per_day": {"team": 0.0001}},
    )
    built = Harness.build(storage, model_server, team=team)
    built.workers.start()
    try:
        await built.say("@beaver fix it")
        await built.say("@roo hello")
        assert model_server.count("smart-a") == model_server.count("fast-a") == 0
        texts = built.adapter.texts()
        assert texts[0].startswith("The team has used its shared $0.0001 budget for today")
        assert texts[-1].startswith("The team has used its shared $0.0001 budget for today")
    finally:
        await built.close()


def _completion(cost_usage: Usage) -> Completion:
    return Completion((TextBlock("ok"),), "anthropic/smart-a", usage=cost_usage)


@pytest.mark.parametrize("backend", DATABASES)
async def test_processes_racing_over_the_last_dollars_overshoot_by_one_call_at_most(
    backend: str, tmp_path: Path
) -> None:
    team = budget_team(0.05)
    prices = PriceTable.builtin(team.prices)
    request = Request("You are a test.", ())
    worst = prices.worst_case("anthropic/smart-a", 10, request.max_tokens)
    assert worst is not None
    place = Place("test", "C", "T")
    # Each call really costs what it could at worst: the tightest race.
    spend_all = Usage(input=10, output=request.max_tokens, cache_write=10)

    async def call_next(ctx: CallContext, request: Request) -> Completion:
        await asyncio.sleep(0.001)
        return _completion(spend_all)

    async with databases(backend, tmp_path) as another:
        wrappers = [
            BudgetWrapper(SpendStore(another()), team, prices, lambda: "2026-12-05")
            for _ in range(3)
        ]
        made = 0

        async def one(wrapper: BudgetWrapper, n: int) -> None:
            nonlocal made
            ctx = CallContext(
                "beaver", place, f"r{n}", "answer", "smart", target="anthropic/smart-a"
            )
            try:
                await wrapper(ctx, request, call_next)
                made += 1
            except CallRefused:
                pass

        await asyncio.gather(*(one(wrappers[n % 3], n) for n in range(30)))
        used = await SpendStore(another()).used("2026-12-05")
    cost = prices.cost("anthropic/smart-a", spend_all)
    assert cost is not None
    assert made >= 1
    assert used["beaver"] == pytest.approx(made * cost)
    assert used["beaver"] <= 0.05 + worst


def test_day_of_is_the_teams_day() -> None:
    # 23:30 UTC on the 5th is already the 6th in Tokyo.
    from zoneinfo import ZoneInfo

    at = datetime(2026, 12, 5, 23, 30, tzinfo=UTC).timestamp()
    assert day_of(at, UTC) == "2026-12-05"
    assert day_of(at, ZoneInfo("Asia/Tokyo")) == "2026-12-06"
