"""``/memory``: the team's shared memory for people."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.commands.registry import (
    CommandContext,
    CommandDef,
    CommandReply,
    UsageError,
    format_age,
    parse_flags,
)
from storage.memory import MemoryRecord, Scope


def _line(m: MemoryRecord, now: datetime) -> str:
    scope = m.scope if m.scope == "team" else f"{m.scope}:{m.agent or m.channel}"
    return f"• `#{m.id}` [{scope}] {m.text} — {m.author}, {format_age(now - m.created_at)} ago"


async def add(ctx: CommandContext, args: list[str]) -> CommandReply:
    """Remember a fact: team-wide, or one agent's (``--agent``) or channel's (``--channel``)."""
    flags, words = parse_flags(args, ("agent", "channel"))
    text = " ".join(words).strip()
    if not text:
        raise UsageError("Say what to remember")
    agent = flags.get("agent", "").lstrip("@").lower()
    if agent and agent not in ctx.team.agents:
        raise UsageError(f"There is no agent `{agent}`")
    scope: Scope = "agent" if agent else "channel" if "channel" in flags else "team"
    record, new = await ctx.storage.memory.add(
        text, scope=scope, author=ctx.user, agent=agent, channel=flags.get("channel", "")
    )
    verb = "Remembered" if new else "Already remembered"
    return CommandReply(f"{verb} `#{record.id}` ({scope}): {record.text}", ephemeral=False)


async def search(ctx: CommandContext, args: list[str]) -> CommandReply:
    """Search memories, best match first."""
    flags, words = parse_flags(args, ("agent",))
    query = " ".join(words).strip()
    if not query:
        raise UsageError("Say what to search for")
    found = await ctx.storage.memory.search(
        query,
        agent=flags.get("agent", "").lstrip("@").lower() or None,
        channel=ctx.channel or None,
        limit=10,
    )
    if not found:
        return CommandReply(f"No memory matches “{query}”.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def list_(ctx: CommandContext, args: list[str]) -> CommandReply:
    """The newest memories, all or one agent's."""
    flags, _ = parse_flags(args, ("agent",))
    agent = flags.get("agent", "").lstrip("@").lower() or None
    found = await ctx.storage.memory.list(agent=agent, scope="agent" if agent else None, limit=20)
    if not found:
        return CommandReply("No memories yet. Add one with `/memory add …`.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def forget(ctx: CommandContext, args: list[str]) -> CommandReply:
    """Delete a memory (its author or an approver only); the deletion is audited."""
    if len(args) != 1 or not args[0].lstrip("#").isdigit():
        raise UsageError("Give the memory's number")
    memory_id = int(args[0].lstrip("#"))
    # Ids are 32-bit on PostgreSQL; a larger number cannot name a memory.
    record = await ctx.storage.memory.get(memory_id) if memory_id < 2**31 else None
    if record is None:
        return CommandReply(f"There is no memory `#{memory_id}`.")
    if not ctx.is_approver and record.author != ctx.user:
        return CommandReply("Only its author or an approver can forget this memory.")
    await ctx.storage.memory.forget(memory_id, by=ctx.user)
    return CommandReply(f"Forgot `#{memory_id}`: {record.text}", ephemeral=False)


COMMANDS = [
    CommandDef("memory", "add", "TEXT [--agent NAME] [--channel #NAME]", "remember a fact", add),
    CommandDef("memory", "search", "QUERY [--agent NAME]", "find memories", search),
    CommandDef("memory", "list", "[--agent NAME]", "the newest memories", list_),
    CommandDef("memory", "forget", "ID", "delete a memory (author or approver)", forget),
]
