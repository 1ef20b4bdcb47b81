"""``/corral`` and ``/memory`` as Discord application commands.

Each subcommand is a line for the one command table (bot/commands), so Discord answers
exactly what Slack, the console and the CLI answer. Discord wants a response within
3 seconds: a command that takes longer is deferred, then followed up.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from corral.bot.commands.registry import (
    CommandContext,
    CommandDef,
    CommandReply,
    commands,
    dispatch,
)
from corral.bot.text_split import split_message

#: Answer directly when the command is done this soon; defer otherwise.
ANSWER_WITHIN_S = 2.0
MESSAGE_LIMIT = 2_000

#: Builds the command context for (user id, channel id).
ContextFor = Callable[[str, str], CommandContext]
Run = Callable[[discord.Interaction[Any], str], Awaitable[None]]


def _plain(command: CommandDef, run: Run) -> app_commands.Command[Any, ..., None]:
    """A subcommand without arguments, described as the command table describes it."""

    async def callback(interaction: discord.Interaction[Any]) -> None:
        await run(interaction, f"/{command.group} {command.name}")

    description = command.help[:1].upper() + command.help[1:]
    return app_commands.Command(name=command.name, description=description[:100], callback=callback)


def command_groups(context_for: ContextFor) -> list[app_commands.Group]:
    """The two command groups, each subcommand dispatching a line to the command table."""

    async def run(interaction: discord.Interaction[Any], line: str) -> None:
        ctx = context_for(str(interaction.user.id), str(interaction.channel_id or ""))
        await answer(interaction, ctx, line)

    corral = app_commands.Group(name="corral", description="The team: status, agents, tasks")
    memory = app_commands.Group(name="memory", description="The team's shared memory")
    groups = {"corral": corral, "memory": memory}
    for command in commands():
        if not command.usage and command.group in groups:
            groups[command.group].add_command(_plain(command, run))

    @corral.command(name="schedule", description="Recurring tasks: list, add, remove, pause …")
    @app_commands.describe(
        args="list | add WHEN @agent #channel PROMPT | remove|pause|resume|run NAME"
    )
    async def schedule(interaction: discord.Interaction[Any], args: str = "list") -> None:
        await run(interaction, f"/corral schedule {args}")

    @memory.command(name="add", description="Remember a fact (the team's, unless told)")
    @app_commands.describe(
        agent="Keep it as this agent's memory", channel="Keep it as this channel's memory"
    )
    async def add(
        interaction: discord.Interaction[Any],
        text: str,
        agent: str | None = None,
        channel: str | None = None,
    ) -> None:
        flags = (f" --agent {agent}" if agent else "") + (
            f" --channel {channel}" if channel else ""
        )
        await run(interaction, f"/memory add {text}{flags}")

    @memory.command(name="search", description="Find memories, best first")
    async def search(
        interaction: discord.Interaction[Any], query: str, agent: str | None = None
    ) -> None:
        await run(interaction, f"/memory search {query}" + (f" --agent {agent}" if agent else ""))

    @memory.command(name="list", description="The newest memories")
    async def list_(interaction: discord.Interaction[Any], agent: str | None = None) -> None:
        await run(interaction, "/memory list" + (f" --agent {agent}" if agent else ""))

    @memory.command(name="forget", description="Delete a memory (its author or an approver)")
    async def forget(interaction: discord.Interaction[Any], id: str) -> None:
        await run(interaction, f"/memory forget {id}")

    @memory.command(name="promote", description="Share an agent's memory with the team")
    async def promote(interaction: discord.Interaction[Any], id: str) -> None:
        await run(interaction, f"/memory promote {id}")

    return [corral, memory]


async def answer(interaction: discord.Interaction[Any], ctx: CommandContext, line: str) -> None:
    """Run ``line`` and answer the interaction: at once when the command is quick,
    deferred (privately) and followed up when it is not."""
    work = asyncio.ensure_future(dispatch(ctx, line))
    done, _ = await asyncio.wait({work}, timeout=ANSWER_WITHIN_S)
    if done:
        reply = work.result()
        first, *rest = _parts(reply)
        await interaction.response.send_message(first, ephemeral=reply.ephemeral, **_file(reply))
    else:
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await work
        first, *rest = _parts(reply)
        await interaction.followup.send(first, ephemeral=True, **_file(reply))
    for part in rest:
        await interaction.followup.send(part, ephemeral=reply.ephemeral)


def _parts(reply: CommandReply) -> list[str]:
    return split_message(reply.text, MESSAGE_LIMIT) or ["Done."]


def _file(reply: CommandReply) -> dict[str, Any]:
    if reply.attachment is None:
        return {}
    filename, content = reply.attachment
    return {"file": discord.File(io.BytesIO(content.encode()), filename=filename)}
