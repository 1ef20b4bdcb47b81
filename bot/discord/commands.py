"""``/corral`` and ``/memory`` as Discord application commands, generated from the one
command table (bot/commands), so Discord answers exactly what Slack, the console and the
CLI answer.

A command of the table becomes a subcommand with one string option per argument; a group
below the top (``/corral schedule``) becomes one subcommand whose ``args`` option is read as
a chat line. Discord wants a response within 3 seconds: a command that takes longer is
deferred, then followed up.
"""

from __future__ import annotations

import asyncio
import inspect
import io
from collections.abc import Awaitable, Callable
from typing import Any

import discord
from discord import app_commands

from corral.bot.commands.registry import Command, CommandContext, CommandReply, Group, bind, execute
from corral.bot.commands.table import children, commands, dispatch, groups
from corral.bot.text_split import split_message
from corral.storage.dedupe import Requests

#: Answer directly when the command is done this soon; defer otherwise.
ANSWER_WITHIN_S = 2.0
MESSAGE_LIMIT = 2_000
#: Discord's limit on a command's and an option's description.
_DESCRIPTION_CHARS = 100

#: Builds the command context for (user id, channel id).
ContextFor = Callable[[str, str], CommandContext]
#: Runs the command for an interaction, given its context.
Work = Callable[[CommandContext], Awaitable[CommandReply]]
Run = Callable[[discord.Interaction[Any], Work], Awaitable[None]]


def _description(text: str) -> str:
    return (text[:1].upper() + text[1:])[:_DESCRIPTION_CHARS]


def _leaf(command: Command, run: Run) -> app_commands.Command[Any, ..., None]:
    """A subcommand with one string option per argument of ``command``."""

    async def callback(interaction: discord.Interaction[Any], **options: str | None) -> None:
        await run(interaction, lambda ctx: execute(ctx, command, lambda: bind(command, options)))

    # discord.py reads a command's options from its callback's signature.
    parameters = [
        inspect.Parameter("interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        *(
            inspect.Parameter(
                arg.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=str | None if arg.optional else str,
                default=None if arg.optional else inspect.Parameter.empty,
            )
            for arg in command.args
        ),
    ]
    setattr(callback, "__signature__", inspect.Signature(parameters))  # noqa: B010
    described = app_commands.describe(
        **{arg.name: _description(arg.help or arg.label) for arg in command.args}
    )(callback)
    return app_commands.Command(
        name=command.name, description=_description(command.help), callback=described
    )


def _free_text(group: Group, run: Run) -> app_commands.Command[Any, ..., None]:
    """A subcommand for a whole group, its words in one ``args`` option (a chat line)."""
    prefix = "/" + " ".join(group.path)

    @app_commands.describe(args=(" | ".join(children(group.path)) + " …")[:_DESCRIPTION_CHARS])
    async def callback(interaction: discord.Interaction[Any], args: str = "") -> None:
        await run(interaction, lambda ctx: dispatch(ctx, f"{prefix} {args}"))

    return app_commands.Command(
        name=group.path[-1], description=_description(group.help), callback=callback
    )


class OnceTree(app_commands.CommandTree[Any]):
    """discord.py's command tree, running each interaction once: an interaction that
    comes again (two processes connected with one token both receive it) does nothing."""

    def __init__(self, client: discord.Client, requests: Requests) -> None:
        super().__init__(client)
        self.requests = requests

    async def interaction_check(self, interaction: discord.Interaction[Any], /) -> bool:
        """Only the first delivery of ``interaction`` runs."""
        return await self.requests.first(f"discord:{interaction.id}")


def command_groups(context_for: ContextFor) -> list[app_commands.Group]:
    """The top-level groups of the table, each with its subcommands."""

    async def run(interaction: discord.Interaction[Any], work: Work) -> None:
        ctx = context_for(str(interaction.user.id), str(interaction.channel_id or ""))
        await answer(interaction, work(ctx))

    top = {
        g.path: app_commands.Group(name=g.path[0], description=_description(g.help))
        for g in groups()
        if len(g.path) == 1
    }
    for group in groups():
        if len(group.path) == 2:
            top[group.path[:1]].add_command(_free_text(group, run))
    for command in commands():
        if len(command.path) == 2:
            top[command.path[:1]].add_command(_leaf(command, run))
    return list(top.values())


async def answer(interaction: discord.Interaction[Any], work: Awaitable[CommandReply]) -> None:
    """Answer the interaction with what ``work`` replies: at once when it is quick,
    deferred (privately) and followed up when it is not."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=ANSWER_WITHIN_S)
    if done:
        reply = task.result()
        first, *rest = _parts(reply)
        await interaction.response.send_message(first, ephemeral=reply.ephemeral, **_file(reply))
    else:
        await interaction.response.defer(ephemeral=True, thinking=True)
        reply = await task
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
