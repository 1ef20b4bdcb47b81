"""``/memory``: the team's shared memory for people.

A person sees the team's memories and those of the channel they type in; an agent's own
memories are for admins (and that agent, in its runs). Writing into an agent's memory,
promoting one to the team and forgetting what someone else wrote are for admins. A
refusal is audited (``permission.refused``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from corral.bot.commands.permissions import refuse
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
    """Remember a fact: team-wide, or one agent's (``--agent``: admins) or channel's
    (``--channel``). The addition is audited (``known`` when it was there already)."""
    agent = _agent(ctx, values)
    if agent and "channel" in values:
        raise UsageError("A memory is an agent's or a channel's, not both")
    if agent and not ctx.is_admin:
        return await refuse(ctx, "/memory add --agent", "write into an agent's memory")
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
        where=ctx.where,
        outcome="ok" if new else "known",
    )
    verb = "Remembered" if new else "Already remembered"
    return CommandReply(f"{verb} `#{record.id}` ({scope}): {record.text}", ephemeral=False)


async def search(ctx: CommandContext, values: Values) -> CommandReply:
    """Search the team's memories and this channel's, best match first; with ``--agent``
    (admins), that agent's too."""
    query = values.text("query")
    agent = _agent(ctx, values)
    if agent and not ctx.is_admin:
        return await refuse(ctx, "/memory search --agent", "see an agent's memories")
    found = await ctx.storage.memory.search(
        query, agent=agent or None, channel=ctx.channel or None, limit=10
    )
    if not found:
        return CommandReply(f"No memory matches “{query}”.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def list_(ctx: CommandContext, values: Values) -> CommandReply:
    """The newest memories: for a person, the team's and this channel's; for an admin,
    all of them, or one agent's (``--agent``)."""
    agent = _agent(ctx, values) or None
    if not ctx.is_admin:
        if agent:
            return await refuse(ctx, "/memory list --agent", "see an agent's memories")
        found = await ctx.storage.memory.list(
            seen_in=[ctx.channel] if ctx.channel else [], limit=20
        )
    else:
        scope = "agent" if agent else None
        found = await ctx.storage.memory.list(agent=agent, scope=scope, limit=20)
    if not found:
        return CommandReply(f"No memories yet. Add one with `{ctx.command('/memory add …')}`.")
    now = datetime.now(UTC)
    return CommandReply("\n".join(_line(m, now) for m in found))


async def forget(ctx: CommandContext, values: Values) -> CommandReply:
    """Delete a memory (its author, or an admin); the deletion is audited."""
    memory_id = values.number("id")
    record = await _existing(ctx, memory_id)
    if record is None:
        return CommandReply(f"There is no memory `#{memory_id}`.", ok=False)
    if not ctx.is_admin and record.author != ctx.user:
        return await refuse(
            ctx,
            "/memory forget",
            "forget a memory someone else wrote",
            f"/memory forget #{memory_id}",
        )
    await ctx.storage.memory.forget(memory_id, by=ctx.user, where=ctx.where)
    return CommandReply(f"Forgot `#{memory_id}`: {record.text}", ephemeral=False)


async def promote(ctx: CommandContext, values: Values) -> CommandReply:
    """Make an agent's memory the whole team's (admins); the promotion is audited."""
    memory_id = values.number("id")
    if not ctx.is_admin:
        return await refuse(
            ctx, "/memory promote", "promote a memory to the team", f"/memory promote #{memory_id}"
        )
    record = await _existing(ctx, memory_id)
    if record is None:
        return CommandReply(f"There is no memory `#{memory_id}`.", ok=False)
    if record.scope != "agent":
        return CommandReply(
            f"`#{memory_id}` is a {record.scope} memory; only agents' are promoted.", ok=False
        )
    promoted = await ctx.storage.memory.promote(memory_id, by=ctx.user, where=ctx.where)
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

    parsed = memory_file.parse(ctx.redact(document), author=ctx.user, now=datetime.now(UTC))
    result = await ctx.storage.memory.add_many(parsed.memories)
    await ctx.storage.audit.record(
        ctx.user,
        "memory.import",
        name,
        f"{result.added} added, {result.merged} merged",
        where=ctx.where,
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
    Command(("memory", "forget"), "delete a memory (its author, or an admin)", forget, (_ID,)),
    Command(
        ("memory", "promote"), "share an agent's memory with the team (admins)", promote, (_ID,)
    ),
    Command(("memory", "export"), "the team memory as MEMORY.md", export),
]
