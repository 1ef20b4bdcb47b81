"""``/corral``: the team's status, its agents, pending approvals, help."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.commands.registry import (
    CommandContext,
    CommandDef,
    CommandReply,
    format_age,
    help_text,
)


async def status(ctx: CommandContext, args: list[str]) -> CommandReply:
    """Each agent's runs and failures today, what is running, pending approvals."""
    since = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    stats = await ctx.storage.runs.stats_since(since)
    pending = await ctx.storage.approvals.pending()
    lines = ["*Team status* (today, UTC)"]
    for handle, agent in ctx.team.agents.items():
        s = stats.get(handle)
        if s is None:
            lines.append(f"• {agent.display_name} (@{handle}): idle, no runs today")
            continue
        doing = f"working on {s.running}" if s.running else "idle"
        lines.append(
            f"• {agent.display_name} (@{handle}): {doing}; {s.runs} runs, "
            f"{s.failures} failed, {s.tokens_in + s.tokens_out} tokens"
        )
    lines.append(f"Pending approvals and escalations: {len(pending)}")
    if ctx.models_status:
        lines.append(f"Models: {ctx.models_status}")
    return CommandReply("\n".join(lines))


async def agents(ctx: CommandContext, args: list[str]) -> CommandReply:
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


async def approvals(ctx: CommandContext, args: list[str]) -> CommandReply:
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


async def show_help(ctx: CommandContext, args: list[str]) -> CommandReply:
    """Every command."""
    return CommandReply(help_text())


COMMANDS = [
    CommandDef("corral", "status", "", "agents, what each is doing, runs today", status),
    CommandDef("corral", "agents", "", "who is on the team", agents),
    CommandDef("corral", "approvals", "", "what waits for a human", approvals),
    CommandDef("corral", "help", "", "this list", show_help),
]
