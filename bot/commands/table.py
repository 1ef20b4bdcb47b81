"""The table itself: every command and group in help order, and what is found from it —
the help text, the command a chat line names, the Slack manifest's slash commands."""

from __future__ import annotations

import re

from corral.bot.commands import audit, corral, memory, schedule
from corral.bot.commands.registry import (
    Command,
    CommandContext,
    CommandReply,
    Group,
    execute,
    parse_line,
)


def commands() -> list[Command]:
    """Every command, in help order."""
    return [*corral.COMMANDS, audit.AUDIT, *schedule.COMMANDS, *memory.COMMANDS]


def groups() -> list[Group]:
    """Every group of commands, top-level ones first."""
    return [*corral.GROUPS, *memory.GROUPS, *schedule.GROUPS]


def children(path: tuple[str, ...]) -> list[str]:
    """The next words after ``path``, in help order."""
    found: list[str] = []
    for command in commands():
        if command.path[: len(path)] == path and len(command.path) > len(path):
            word = command.path[len(path)]
            if word not in found:
                found.append(word)
    return found


def find(path: tuple[str, ...]) -> Command | None:
    """The command at ``path``, if one is there."""
    return next((c for c in commands() if c.path == path), None)


def help_text(path: tuple[str, ...] = ()) -> str:
    """The help listing of the commands under ``path`` (all by default)."""
    return "\n".join(f"`{c.line}` — {c.help}" for c in commands() if c.path[: len(path)] == path)


_WORD_RE = re.compile(r"\s*(\S+)\s*")


async def dispatch(ctx: CommandContext, line: str) -> CommandReply:
    """Run a chat line such as ``/memory add The deploy window is Friday``."""
    path: tuple[str, ...] = ()
    rest = line.strip()
    while (command := find(path) if path else None) is None:
        match = _WORD_RE.match(rest)
        if match is None:
            return CommandReply(help_text(path))
        word = match.group(1).lower()
        word = word if path else word.lstrip("/")
        rest = rest[match.end() :]
        if word in children(path):
            path = (*path, word)
        elif word == "help" and path:
            return CommandReply(help_text(path))
        elif not path:
            return CommandReply(f"Unknown command `/{word}`. Commands:\n{help_text()}", ok=False)
        else:
            return CommandReply(f"Unknown `{word}`. Try:\n{help_text(path)}", ok=False)
    arguments = rest
    return await execute(ctx, command, lambda: parse_line(command, arguments))


def manifest_slash_commands() -> list[dict[str, str | bool]]:
    """The ``slash_commands`` of deploy/slack/manifest.yaml, as the table has them."""
    listed: list[dict[str, str | bool]] = []
    for group in groups():
        if len(group.path) != 1:
            continue
        hints = []
        for word in children(group.path):
            command = find((*group.path, word))
            if command is None:
                hints.append(f"{word} …")
                continue
            words = [f"<{a.label.lower()}>" for a in command.args if not a.optional]
            hints.append(" ".join([word, *words]))
        listed.append(
            {
                "command": f"/{group.path[0]}",
                "description": group.help,
                "usage_hint": " | ".join(hints),
                "should_escape": False,
            }
        )
    return listed
