"""``/corral usage``, ``/corral budget`` and the spend and cooling lines of ``/corral
status``, on SQLite and PostgreSQL; and ``corral usage`` / ``corral budget`` from a shell."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from backends import Clock
from harness import make_team

from corral.bot.commands.registry import CommandContext, CommandReply
from corral.bot.commands.table import dispatch
from corral.storage.spend import TEAM, CallRecord, Caps, Hold, SpendStore
from corral.storage.store import Storage

ROOT = Path(__file__).resolve().parents[1]
CORRAL = str(Path(sys.executable).with_name("corral"))
LIMITS = {"budget_usd_per_day": {"team": 100, "default": 20, "beaver": 50}}
NEW_YORK = ZoneInfo("America/New_York")
#: 10:00 in New York on 2026-12-05.
NOW = datetime(2026, 12, 5, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock(storage: Storage) -> Clock:
    """The test's clock, at ``NOW``; the storage's spend store runs on it too."""
    at = Clock()
    at.now = NOW.timestamp()
    storage.spend = SpendStore(storage.db, at)
    return at


def context(
    storage: Storage,
    clock: Clock,
    *,
    user: str = "U0ADMIN",
    zone: ZoneInfo = NEW_YORK,
    cooling: dict[str, float] | None = None,
) -> CommandContext:
    async def cooling_now() -> dict[str, float]:
        assert cooling is not None
        return cooling

    return CommandContext(
        team=make_team(limits=LIMITS),
        storage=storage,
        user=user,
        platform="slack",
        channel="C0OPS",
        timezone=zone,
        cooling=cooling_now if cooling is not None else None,
        clock=clock,
    )


async def spend(
    storage: Storage,
    agent: str,
    cost: float | None,
    at: datetime,
    *,
    run_id: str = "r-1",
    model: str = "anthropic/smart-a",
) -> None:
    """A settled call of ``agent`` at ``at``, counted on that day in New York."""
    store = SpendStore(storage.db, at.timestamp)
    record = CallRecord(run_id, agent, model, 1000, 200, 300, 50, cost)
    day = at.astimezone(NEW_YORK).date().isoformat()
    await store.settle(None, record, day, Caps(None, None))


async def test_usage_today_per_agent_and_model_with_budget_used(
    storage: Storage, clock: Clock
) -> None:
    await spend(storage, "beaver", 1.5, NOW - timedelta(hours=1))
    await spend(storage, "beaver", 1.7, NOW - timedelta(hours=2), run_id="r-2")
    await spend(storage, "beaver", None, NOW, run_id="r-2", model="openai/smart-b")
    await spend(storage, "owl", 0.004, NOW)
    reply = await dispatch(context(storage, clock), "/corral usage")
    assert reply.ok
    assert reply.text == "\n".join(
        [
            "*Usage, today* (2026-12-05, America/New_York)",
            "```",
            "agent   model              runs     in  out  cached     cost",
            "beaver  anthropic/smart-a     2  2,000  400     700    $3.20",
            "beaver  openai/smart-b        1  1,000  200     350  unknown",
            "owl     anthropic/smart-a     1  1,000  200     350  $0.0040",
            "```",
            "Total: $3.20, and 1 call to models of unknown price",
            "*Budget used today*",
            "• Roo (@roo): $0 of $20",
            "• Beaver (@beaver): $3.20 of $50",
            "• Owl (@owl): $0.0040 of $20",
            "• Team: $3.20 of $100",
        ]
    )


async def test_periods_count_whole_days_in_the_teams_timezone(
    storage: Storage, clock: Clock
) -> None:
    # 23:00 on 2026-12-04 in New York, though already the 5th in UTC: yesterday.
    await spend(storage, "owl", 1.0, datetime(2026, 12, 5, 4, tzinfo=UTC))
    await spend(storage, "owl", 2.0, NOW - timedelta(days=6))
    await spend(storage, "owl", 4.0, NOW - timedelta(days=7))
    await spend(storage, "owl", 8.0, NOW - timedelta(days=29))
    await spend(storage, "owl", 16.0, NOW - timedelta(days=30))
    ctx = context(storage, clock)

    async def total(line: str) -> str:
        text = (await dispatch(ctx, line)).text
        return next(row for row in text.splitlines() if row.startswith("Total"))

    today = await dispatch(ctx, "/corral usage today")
    assert "No model calls in this period." in today.text
    assert await total("/corral usage week") == "Total: $3"
    assert (
        "(2026-11-29 to 2026-12-05, America/New_York)"
        in (await dispatch(ctx, "/corral usage week")).text
    )
    assert await total("/corral usage month") == "Total: $15"
    # The same call is today's in UTC.
    utc = await dispatch(context(storage, clock, zone=ZoneInfo("UTC")), "/corral usage today")
    assert "Total: $1" in utc.text.splitlines()


async def test_usage_of_one_agent_and_what_is_wrong_with_a_line(
    storage: Storage, clock: Clock
) -> None:
    await spend(storage, "beaver", 1.0, NOW)
    await spend(storage, "owl", 2.0, NOW)
    ctx = context(storage, clock)
    mine = await dispatch(ctx, "/corral usage week --agent @Owl")
    assert (
        mine.text.splitlines()[0]
        == "*Usage of @owl, week* (2026-11-29 to 2026-12-05, America/New_York)"
    )
    assert "beaver" not in mine.text
    assert mine.text.splitlines()[-4:] == [
        "Total: $2",
        "*Budget used today*",
        "• Owl (@owl): $2 of $20",
        "• Team: $3 of $100",
    ]
    wrong = await dispatch(ctx, "/corral usage yesterday")
    assert not wrong.ok
    assert wrong.text.startswith("`yesterday` is not a period: say today, week or month.")
    nobody = await dispatch(ctx, "/corral usage --agent hawk")
    assert not nobody.ok and nobody.text.startswith("No agent @hawk. Agents: roo, beaver, owl.")


async def test_budget_shows_today_and_an_admin_raises_it(storage: Storage, clock: Clock) -> None:
    ctx = context(storage, clock)
    caps = Caps(agent=50.0, team=100.0)
    held = await storage.spend.reserve("2026-12-05", "beaver", 49.0, caps)
    assert isinstance(held, Hold)
    assert not isinstance(await storage.spend.reserve("2026-12-05", "beaver", 2.0, caps), Hold)

    shown = await dispatch(ctx, "/corral budget")
    assert shown.text == "\n".join(
        [
            "*Budgets today* (2026-12-05)",
            "• Roo (@roo): $0 of $20",
            "• Beaver (@beaver): $49 of $50",
            "• Owl (@owl): $0 of $20",
            "• Team: $49 of $100",
        ]
    )
    raised = await dispatch(ctx, "/corral budget @beaver +20")
    assert raised.ok and not raised.ephemeral
    assert raised.text == (
        "Beaver (@beaver): budget raised by $20 for today. Used $49 of $70, raised $20 today."
    )
    assert isinstance(await storage.spend.reserve("2026-12-05", "beaver", 2.0, caps), Hold)
    team = await dispatch(ctx, "/corral budget team 12.50")
    assert team.text == (
        "The team: budget raised by $12.50 for today. Used $51 of $112.50, raised $12.50 today."
    )
    assert await storage.spend.raised("2026-12-05") == {"beaver": 20.0, TEAM: 12.5}
    audit = await storage.audit.recent()
    assert [(a.actor, a.action, a.subject, a.detail) for a in audit][:2] == [
        ("U0ADMIN", "budget.raise", TEAM, "+12.5 USD on 2026-12-05"),
        ("U0ADMIN", "budget.raise", "beaver", "+20 USD on 2026-12-05"),
    ]


async def test_budget_refuses_others_politely_and_says_what_is_wrong(
    storage: Storage, clock: Clock
) -> None:
    async def run(line: str, user: str = "U0ADMIN") -> CommandReply:
        return await dispatch(context(storage, clock, user=user), line)

    refused = await run("/corral budget beaver +20", user="U0SOMEONE")
    assert not refused.ok
    assert refused.text == (
        "Sorry, only admins can raise a budget. Ask <@U0ADMIN> to run `/corral budget beaver +20`."
    )
    assert await storage.spend.raised("2026-12-05") == {}
    for line, message in [
        ("/corral budget beaver", "Say how much to add, e.g. `+20`"),
        ("/corral budget beaver +0", "`+0` is not an amount"),
        ("/corral budget beaver -5", "`-5` is not an amount"),
        ("/corral budget beaver lots", "`lots` is not an amount"),
        ("/corral budget hawk +5", "No agent @hawk. Name an agent or `team`"),
    ]:
        reply = await run(line)
        assert not reply.ok and reply.text.startswith(message), (line, reply.text)


async def test_status_shows_spend_against_budget_and_models_cooling(
    storage: Storage, clock: Clock
) -> None:
    await spend(storage, "beaver", 3.2, NOW)
    until = (NOW + timedelta(minutes=3, seconds=10)).timestamp()
    over = (NOW - timedelta(seconds=1)).timestamp()
    ctx = context(
        storage,
        clock,
        zone=ZoneInfo("UTC"),
        cooling={"anthropic/smart-a": until, "openai/fast-b": over},
    )
    lines = (await dispatch(ctx, "/corral status")).text.splitlines()
    assert lines[0] == "*Team status* (today, UTC)"
    assert lines[-5:] == [
        "• Roo (@roo): spend today $0 of $20",
        "• Beaver (@beaver): spend today $3.20 of $50",
        "• Owl (@owl): spend today $0 of $20",
        "• Team: spend today $3.20 of $100",
        "• anthropic/smart-a cooling until 15:03:10 UTC",
    ]
    plain = CommandContext(
        team=make_team(), storage=storage, user="U1", platform="slack", clock=clock
    )
    text = (await dispatch(plain, "/corral status")).text
    assert "spend today" not in text and "cooling" not in text
    assert "Redis" not in text


async def test_status_says_when_redis_is_down_and_the_database_keeps_the_limits(
    storage: Storage, clock: Clock
) -> None:
    ctx = CommandContext(
        team=make_team(),
        storage=storage,
        user="U1",
        platform="slack",
        clock=clock,
        limits_degraded=True,
    )
    text = (await dispatch(ctx, "/corral status")).text
    assert text.splitlines()[-1] == (
        "Redis is unreachable: rate limits, cooldowns and run slots are kept in the "
        "database until it is back."
    )


def test_usage_and_budget_from_the_shell(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL", "REDIS_URL"))
    }
    env["COLUMNS"] = "200"

    def corral(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CORRAL, *args, "--team", str(ROOT / "team.yaml")],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )

    used = corral("usage", "week", "--agent", "beaver")
    assert used.returncode == 0, used.stderr
    assert "No model calls in this period." in used.stdout
    assert "Beaver (@beaver): $0 of $50" in used.stdout
    raised = corral("budget", "beaver", "+5")
    assert raised.returncode == 0, raised.stderr
    assert "budget raised by $5 for today. Used $0 of $55, raised $5 today." in raised.stdout
    wrong = corral("usage", "fortnight")
    assert wrong.returncode != 0
    assert "`fortnight` is not a period" in wrong.stderr

    env["CORRAL_TIMEZONE"] = "Pacific/Kiritimati"
    zoned = corral("usage")
    assert zoned.returncode == 0, zoned.stderr
    assert ", Pacific/Kiritimati)" in zoned.stdout.splitlines()[0]
    env["CORRAL_TIMEZONE"] = "Mars/Olympus_Mons"
    unknown = corral("usage")
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == (
        "error: CORRAL_TIMEZONE=Mars/Olympus_Mons is not allowed: use an IANA time zone "
        "such as UTC or Europe/Berlin, in .env or the environment"
    )
    checked = corral("check", "--offline")
    assert checked.returncode == 1
    assert "CORRAL_TIMEZONE=Mars/Olympus_Mons is not allowed" in checked.stdout
