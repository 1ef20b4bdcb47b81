"""``/memory``: the team's shared memory for people."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from corral.bot.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandReply,
    Group,
    UsageError,
    Values,
    format_age,
    plural,
)

if TYPE_CHECKING:
    from corral.storage.memory import MemoryRecord, Scope

#: Memory ids are 32-bit on PostgreSQL; a larger number cannot name one.
_MAX_ID = 2**31 - 1


def _line(m: MemoryRecord, now: datetime) -> str:
    scope = m.scope if m.scope == "team" else f"{m.scope}:{m.agent or m.channel}"
    return f"• `#{m.id}` [{scope}] {m.text} — {m.author}, {format_age(now - m.created_at)} ago"


def _agent(ctx: CommandContext, values: Values) -> str:
    """The ``--agent`` flag as a handle of the team ('' when absent)."""
    agent = values.text("agent").lower()
    if agent and agent not in ctx.team.agents:
        raise UsageError(f"There is no agent `{agent}`; the team is {', '.join(ctx.team.agents)}")
    return agent


async def _existing(ctx: CommandContext, memory_id: int) -> MemoryRecord | None:
    return await ctx.storage.memory.get(memory_id) if memory_id <= _MAX_ID else None


async def add(ctx: CommandContext, values: Values) -> CommandReply:
    """Remember a fact: team-wide, or one agent's (``--agent``) or channel's
    (``--channel``). The addition is audited (``known`` when it was there already)."""
    from corral.storage.audit import Where

    agent = _agent(ctx, values)
    if agent and "channel" in values:
        raise UsageError("A memory is an agent's or a channel's, not both")
    scope: Scope = "agent" if agent else "channel" if "channel" in values else "team"
    record, new = await ctx.storage.memory.add(
        values.text("text"),
        scope=scope,
        author=ctx.user,
        agent=agent,
        channel=values.text("channel"),
    )
    await ctx.storage.audit.record(
        ctx.user,
        "memory.add",
        str(record.id),
        record.text,
        agent=agent,
        where=Where(ctx.platform, ctx.channel),
        outcome="ok" if new else "known",
    )
    verb = "Remembered" if new else "Already remembered"
    return CommandReply(f"{verb} `#{record.id}` ({scope}): {record.text}", ephemeral=False)


async def search(ctx: CommandContext, values: Values) -> CommandReply:
    """Search memories, best match first."""
    query = values.text("query")
    found = await ctx.storage.memory.search(
        query, agent=_agent(ctx, values) or None, channel=ctx.channel or None, limit=10
    )
    if not found:
        return CommandReply(f"No memory matches “{query}”.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def list_(ctx: CommandContext, values: Values) -> CommandReply:
    """The newest memories, all or one agent's."""
    agent = _agent(ctx, values) or None
    found = await ctx.storage.memory.list(agent=agent, scope="agent" if agent else None, limit=20)
    if not found:
        return CommandReply(f"No memories yet. Add one with `{ctx.command('/memory add …')}`.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def forget(ctx: CommandContext, values: Values) -> CommandReply:
    """Delete a memory (its author or an approver only); the deletion is audited."""
    memory_id = values.number("id")
    record = await _existing(ctx, memory_id)
    if record is None:
        return CommandReply(f"There is no memory `#{memory_id}`.", ok=False)
    if not ctx.is_approver and record.author != ctx.user:
        return CommandReply("Only its author or an approver can forget this memory.", ok=False)
    await ctx.storage.memory.forget(memory_id, by=ctx.user)
    return CommandReply(f"Forgot `#{memory_id}`: {record.text}", ephemeral=False)


async def promote(ctx: CommandContext, values: Values) -> CommandReply:
    """Make an agent's memory the whole team's; the promotion is audited."""
    memory_id = values.number("id")
    record = await _existing(ctx, memory_id)
    if record is None:
        return CommandReply(f"There is no memory `#{memory_id}`.", ok=False)
    if record.scope != "agent":
        return CommandReply(
            f"`#{memory_id}` is a {record.scope} memory; only agents' are promoted.", ok=False
        )
    promoted = await ctx.storage.memory.promote(memory_id, by=ctx.user)
    if promoted is None:  # forgotten or promoted by someone else meanwhile
        return CommandReply(f"`#{memory_id}` is no longer an agent memory.", ok=False)
    merged = f" (merged into `#{promoted.id}`, which the team already had)"
    return CommandReply(
        f"Promoted {record.agent}'s `#{memory_id}` to the team"
        f"{merged if promoted.id != memory_id else ''}: {promoted.text}",
        ephemeral=False,
    )


async def export(ctx: CommandContext, values: Values) -> CommandReply:
    """The team memory as a MEMORY.md document."""
    from corral.storage import memory_file

    team = await ctx.storage.memory.list(scope="team", limit=None)
    document = memory_file.render(team, datetime.now(UTC))
    return CommandReply(
        f"Team memory: {plural(len(team), 'memory', 'memories')}, as MEMORY.md. From a shell, "
        "`corral memory export > MEMORY.md` saves it and `corral memory import MEMORY.md` "
        "loads it back.",
        attachment=("MEMORY.md", document),
    )


async def import_document(ctx: CommandContext, document: str, name: str) -> CommandReply:
    """Load the team memories of a MEMORY.md document (``name`` is where it came from):
    the ones already known are merged, not added twice. The import is audited."""
    from corral.storage import memory_file

    parsed = memory_file.parse(document, author=ctx.user, now=datetime.now(UTC))
    result = await ctx.storage.memory.add_many(parsed.memories)
    await ctx.storage.audit.record(
        ctx.user, "memory.import", name, f"{result.added} added, {result.merged} merged"
    )
    added = plural(result.added, "new memory", "new memories")
    lines = [f"Imported {name}: {added}, {result.merged} already known."]
    if parsed.skipped:
        skipped = (
            "1 line was not a memory and was skipped"
            if parsed.skipped == 1
            else f"{parsed.skipped} lines were not memories and were skipped"
        )
        lines.append(f"{skipped}: each memory is a top-level `- ` item.")
    return CommandReply("\n".join(lines), ephemeral=False)


_AGENT = Arg("agent", flag=True, metavar="NAME", prefix="@", help="An agent's handle")
_ID = Arg("id", "int", "The memory's number", prefix="#", hint="Give the memory's number")

GROUPS = [Group(("memory",), "The team's shared memory")]

COMMANDS = [
    Command(
        ("memory", "add"),
        "remember a fact",
        add,
        (
            Arg("text", "text", "The fact to remember", hint="Say what to remember"),
            Arg("agent", flag=True, metavar="NAME", prefix="@", help="Keep it as this agent's"),
            Arg("channel", flag=True, metavar="#NAME", help="Keep it as this channel's"),
        ),
    ),
    Command(
        ("memory", "search"),
        "find memories, best first",
        search,
        (Arg("query", "text", "What to look for", hint="Say what to search for"), _AGENT),
    ),
    Command(("memory", "list"), "the newest memories", list_, (_AGENT,)),
    Command(("memory", "forget"), "delete a memory (author or approver)", forget, (_ID,)),
    Command(("memory", "promote"), "share an agent's memory with the team", promote, (_ID,)),
    Command(("memory", "export"), "the team memory as MEMORY.md", export),
]
