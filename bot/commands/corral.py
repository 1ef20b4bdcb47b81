"""``/corral``: the team's status, its agents, pending approvals, tasks, usage and
budgets (:mod:`corral.bot.commands.spend`), help."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from corral.bot.commands import spend
from corral.bot.commands.registry import (
    Command,
    CommandContext,
    CommandReply,
    Group,
    Values,
    format_age,
    plural,
)

if TYPE_CHECKING:
    from corral.storage.tasks import TaskRecord


async def status(ctx: CommandContext, values: Values) -> CommandReply:
    """Each agent's runs and failures today, what is running, pending approvals."""
    since = spend.midnight(spend.today(ctx), ctx.timezone)
    stats = await ctx.storage.runs.stats_since(since)
    pending = await ctx.storage.approvals.pending()
    lines = [f"*Team status* (today, {spend.zone_name(ctx.timezone, since)})"]
    for handle, agent in ctx.team.agents.items():
        s = stats.get(handle)
        if s is None:
            lines.append(f"• {agent.display_name} (@{handle}): idle, no runs today")
            continue
        doing = f"working on {s.running}" if s.running else "idle"
        lines.append(
            f"• {agent.display_name} (@{handle}): {doing}; {plural(s.runs, 'run')}, "
            f"{s.failures} failed, {plural(s.tokens_in + s.tokens_out, 'token')}"
        )
    lines.append(f"Pending approvals and escalations: {len(pending)}")
    if ctx.models_status:
        lines.append(f"Models: {ctx.models_status}")
    lines += await _spend_lines(ctx)
    lines += await _cooling_lines(ctx)
    if ctx.limits_degraded:
        lines.append(
            "Redis is unreachable: rate limits, cooldowns and run slots are kept in the "
            "database until it is back."
        )
    return CommandReply("\n".join(lines))


async def _spend_lines(ctx: CommandContext) -> list[str]:
    """A line per budgeted agent: what it spent today against its cap."""
    budgeted = [h for h in ctx.team.agents if ctx.team.limits.budget_for(h) is not None]
    if not budgeted and ctx.team.limits.team_budget() is None:
        return []
    return await spend.budget_lines(ctx, budgeted, lead="spend today ")


async def _cooling_lines(ctx: CommandContext) -> list[str]:
    """A line per model cooling down after a provider's refusal, with when it is back."""
    if ctx.cooling is None:
        return []
    cooling, now = await ctx.cooling(), ctx.clock()
    return [
        f"• {model} cooling until "
        + datetime.fromtimestamp(until, ctx.timezone).strftime("%H:%M:%S %Z")
        for model, until in sorted(cooling.items())
        if until > now
    ]


async def agents(ctx: CommandContext, values: Values) -> CommandReply:
    """Who is on the team: handle, role, model, channels, tools."""
    lines = []
    for handle, agent in ctx.team.agents.items():
        extras = [f"model {agent.model}"]
        if agent.router:
            extras.append("router")
        if agent.channels:
            extras.append("default in " + ", ".join(agent.channels))
        if agent.tools:
            extras.append("tools " + ", ".join(agent.tools))
        lines.append(f"• *{agent.display_name}* (@{handle}) — {agent.role}. {'; '.join(extras)}")
    return CommandReply("\n".join(lines))


async def approvals(ctx: CommandContext, values: Values) -> CommandReply:
    """What waits for a human."""
    pending = await ctx.storage.approvals.pending()
    if not pending:
        return CommandReply("Nothing waits for a human.")
    now = datetime.now(UTC)
    lines = [
        f"• `{a.id}` {a.kind} from @{a.agent}, {format_age(now - a.created_at)} ago: {a.summary}"
        for a in pending
    ]
    return CommandReply("\n".join(lines))


#: How much of a task's text and result a line of ``/corral tasks`` shows.
_TASK_CHARS = 160


def _short(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _TASK_CHARS else flat[: _TASK_CHARS - 1] + "…"


def _task_line(ctx: CommandContext, task: TaskRecord, now: datetime) -> str:
    def name(handle: str) -> str:
        agent = ctx.team.agents.get(handle)
        return agent.display_name if agent else handle

    head = f"• task `#{task.id}` {name(task.from_agent)} → {name(task.to_agent)}"
    if task.status == "open":
        return f"{head}, {format_age(now - task.created_at)} ago: {_short(task.task)}"
    status = task.status.replace("_", " ")
    age = format_age(now - task.updated_at)
    return f"{head}, {status} {age} ago: {_short(task.task)} — {_short(task.result)}"


async def tasks(ctx: CommandContext, values: Values) -> CommandReply:
    """Tasks agents handed each other: the open ones, then the recently closed."""
    open_tasks = await ctx.storage.tasks.open()
    closed = await ctx.storage.tasks.recent(limit=10)
    if not open_tasks and not closed:
        return CommandReply("No tasks yet: agents create them when they hand work to each other.")
    now = datetime.now(UTC)
    lines = [f"*Open tasks* ({len(open_tasks)})"]
    lines += [_task_line(ctx, t, now) for t in open_tasks] or ["• none"]
    if closed:
        lines.append("*Recently closed*")
        lines += [_task_line(ctx, t, now) for t in closed]
    return CommandReply("\n".join(lines))


async def show_help(ctx: CommandContext, values: Values) -> CommandReply:
    """Every command."""
    # Here, not at the top: the table is made of this module's commands.
    from corral.bot.commands.table import help_text

    return CommandReply(help_text())


GROUPS = [Group(("corral",), "See and steer the agent team")]

COMMANDS = [
    Command(("corral", "status"), "agents, what each is doing, runs today", status),
    Command(("corral", "agents"), "who is on the team", agents),
    Command(("corral", "approvals"), "what waits for a human", approvals),
    Command(("corral", "tasks"), "open and recent tasks agents handed each other", tasks),
    spend.USAGE,
    spend.BUDGET,
    # The shell has --help; this lists the chat commands.
    Command(("corral", "help"), "this list", show_help, cli=False),
]
