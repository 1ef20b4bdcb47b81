"""``/corral usage`` and ``/corral budget``: what the team's model calls used and cost,
and today's budgets, which admins may raise.

Days count in the team's timezone (``CORRAL_TIMEZONE``, in the command's context). The
storage modules are imported where they are used: the CLI loads this table on every
start.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta, tzinfo
from typing import TYPE_CHECKING

from corral.bot.commands.permissions import refuse
from corral.bot.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandReply,
    UsageError,
    Values,
    plural,
)

if TYPE_CHECKING:
    from corral.storage.spend import Caps, UsageRow

#: The periods of ``/corral usage``, as days back from today, today included.
PERIODS = {"today": 1, "week": 7, "month": 30}

#: ``+20``, ``20``, ``+12.50``.
_AMOUNT_RE = re.compile(r"^\+?(\d{1,6}(?:\.\d{1,2})?)$")


def money(amount: float) -> str:
    """``$20``, ``$3.20``, or four decimals under a cent (``$0.0042``) so that a small
    spend does not read as nothing."""
    if amount == int(amount):
        return f"${amount:,.0f}"
    if abs(amount) < 0.01:
        return f"${amount:.4f}"
    return f"${amount:,.2f}"


def today(ctx: CommandContext) -> date:
    """Today in the team's timezone."""
    return datetime.fromtimestamp(ctx.clock(), ctx.timezone).date()


def midnight(day: date, zone: tzinfo) -> datetime:
    """When ``day`` begins in ``zone``."""
    return datetime.combine(day, time(0), tzinfo=zone)


def zone_name(zone: tzinfo, at: datetime) -> str:
    """``Europe/Berlin`` for a zone read by name, else its abbreviation at ``at``."""
    return str(getattr(zone, "key", None) or zone.tzname(at) or zone)


def _caps(ctx: CommandContext, handle: str) -> Caps:
    from corral.storage.spend import Caps

    limits = ctx.team.limits
    return Caps(agent=limits.budget_for(handle), team=limits.team_budget())


def _name(ctx: CommandContext, handle: str) -> str:
    agent = ctx.team.agents.get(handle)
    return f"{agent.display_name} (@{handle})" if agent else f"@{handle}"


def _against(used: float, cap: float | None, raised: float) -> str:
    """``$3.20 of $20`` (``… of $40, raised $20 today``), or ``$3.20, no cap``."""
    if cap is None:
        return f"{money(used)}, no cap"
    extra = f", raised {money(raised)} today" if raised else ""
    return f"{money(used)} of {money(cap + raised)}{extra}"


async def budget_lines(
    ctx: CommandContext, handles: list[str] | None = None, lead: str = ""
) -> list[str]:
    """Today's spend against budget: a line per agent of ``handles`` (default: every
    agent) and one for the team, each amount after ``lead``; agents with no cap and no
    spend are left out."""
    from corral.storage.spend import TEAM, day_of

    day = day_of(ctx.clock(), ctx.timezone)
    used = await ctx.storage.spend.used(day)
    raised = await ctx.storage.spend.raised(day)
    limits = ctx.team.limits
    lines = []
    for handle in ctx.team.agents if handles is None else handles:
        cap = limits.budget_for(handle)
        if cap is None and handle not in used:
            continue
        spent = _against(used.get(handle, 0.0), cap, raised.get(handle, 0.0))
        lines.append(f"• {_name(ctx, handle)}: {lead}{spent}")
    team_cap = limits.team_budget()
    if team_cap is not None or used:
        spent = _against(used.get(TEAM, 0.0), team_cap, raised.get(TEAM, 0.0))
        lines.append(f"• Team: {lead}{spent}")
    return lines


def _cost(row: UsageRow) -> str:
    if not row.unknown_cost_calls:
        return money(row.cost_usd)
    if row.calls == row.unknown_cost_calls:
        return "unknown"
    return f"{money(row.cost_usd)} + unknown"


def _table(rows: list[UsageRow]) -> str:
    """The rows as a fixed-width table in a code block, which every surface shows as is."""
    head = ("agent", "model", "runs", "in", "out", "cached", "cost")
    cells = [
        (
            r.agent,
            r.model,
            f"{r.runs:,}",
            f"{r.tokens_in:,}",
            f"{r.tokens_out:,}",
            f"{r.cache_read + r.cache_write:,}",
            _cost(r),
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in [head, *cells]) for i in range(len(head))]

    def line(values: tuple[str, ...]) -> str:
        # Names to the left, numbers to the right.
        return "  ".join(
            v.ljust(w) if i < 2 else v.rjust(w)
            for i, (v, w) in enumerate(zip(values, widths, strict=True))
        ).rstrip()

    return "```\n" + "\n".join(line(v) for v in [head, *cells]) + "\n```"


async def usage(ctx: CommandContext, values: Values) -> CommandReply:
    """Per agent and model over the period: runs, tokens in, out and cached, cost; and
    each agent's budget used today."""
    period = values.text("period").lower() or "today"
    if period not in PERIODS:
        raise UsageError(f"`{period}` is not a period: say today, week or month")
    agent = values.text("agent").lower() or None
    if agent is not None and agent not in ctx.team.agents:
        raise UsageError(f"No agent @{agent}. Agents: " + ", ".join(ctx.team.agents))
    last = today(ctx)
    first = last - timedelta(days=PERIODS[period] - 1)
    since = midnight(first, ctx.timezone)
    until = midnight(last + timedelta(days=1), ctx.timezone)
    rows = await ctx.storage.spend.usage(since, until, agent)
    span = last.isoformat() if first == last else f"{first.isoformat()} to {last.isoformat()}"
    whose = f" of @{agent}" if agent else ""
    lines = [f"*Usage{whose}, {period}* ({span}, {zone_name(ctx.timezone, since)})"]
    if rows:
        lines.append(_table(rows))
        known = sum(r.cost_usd for r in rows)
        unknown = sum(r.unknown_cost_calls for r in rows)
        total = f"Total: {money(known)}"
        if unknown:
            total += f", and {plural(unknown, 'call')} to models of unknown price"
        lines.append(total)
    else:
        lines.append("No model calls in this period.")
    budgets = await budget_lines(ctx, [agent] if agent else None)
    if budgets:
        lines.append("*Budget used today*")
        lines += budgets
    return CommandReply("\n".join(lines))


def _amount(raw: str) -> float:
    match = _AMOUNT_RE.match(raw.strip())
    amount = float(match.group(1)) if match else 0.0
    if amount <= 0:
        raise UsageError(f"`{raw}` is not an amount: say how many dollars to add, e.g. +20")
    return amount


async def budget(ctx: CommandContext, values: Values) -> CommandReply:
    """Alone: today's spend and caps. ``<agent|team> +<dollars>``: raise today's budget
    (admins only; a refusal is audited)."""
    if "who" not in values:
        lines = await budget_lines(ctx)
        if not lines:
            return CommandReply(
                "No budgets: set `limits.budget_usd_per_day` in team.yaml to cap spend."
            )
        return CommandReply("\n".join([f"*Budgets today* ({today(ctx).isoformat()})", *lines]))
    if "amount" not in values:
        raise UsageError("Say how much to add, e.g. `+20`")
    from corral.storage.spend import TEAM, day_of

    who = values.text("who").lower()
    if who != "team" and who not in ctx.team.agents:
        raise UsageError(f"No agent @{who}. Name an agent or `team`")
    amount = _amount(values.text("amount"))
    if not ctx.is_admin:
        return await refuse(
            ctx, "/corral budget", "raise a budget", f"/corral budget {who} +{amount:g}"
        )
    scope = TEAM if who == "team" else who
    day = day_of(ctx.clock(), ctx.timezone)
    total = await ctx.storage.spend.raise_cap(day, scope, amount)
    await ctx.storage.audit.record(
        ctx.user,
        "budget.raise",
        scope,
        f"+{amount:g} USD on {day}",
        agent="" if scope == TEAM else scope,
        where=ctx.where,
        outcome="ok",
    )
    limits = ctx.team.limits
    cap = limits.team_budget() if scope == TEAM else limits.budget_for(scope)
    used = (await ctx.storage.spend.used(day)).get(scope, 0.0)
    subject = "The team" if scope == TEAM else _name(ctx, scope)
    return CommandReply(
        f"{subject}: budget raised by {money(amount)} for today. "
        f"Used {_against(used, cap, total)}.",
        ephemeral=False,
    )


USAGE = Command(
    ("corral", "usage"),
    "runs, tokens and cost per agent and model, and budget used today",
    usage,
    (
        Arg("period", required=False, metavar="today|week|month", help="default: today"),
        Arg("agent", flag=True, metavar="NAME", prefix="@", help="one agent only"),
    ),
)

BUDGET = Command(
    ("corral", "budget"),
    "today's spend and budgets; with an agent (or team) and +dollars, raise today's",
    budget,
    (
        Arg("who", required=False, metavar="AGENT|team", prefix="@", help="an agent or team"),
        Arg("amount", required=False, metavar="+DOLLARS", help="dollars to add for today"),
    ),
)
