"""The one table of slash commands and the dispatcher every surface calls."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from corral.agents.team import Team
from corral.storage.store import Storage

if TYPE_CHECKING:
    from corral.bot.commands.schedule import ScheduleControl


@dataclass(frozen=True)
class CommandContext:
    """Who runs a command, where, and what it may touch."""

    team: Team
    storage: Storage
    user: str
    platform: str
    channel: str = ""
    #: One line on which model providers are configured (for ``/corral status``).
    models_status: str = ""
    #: The scheduler of this process, for ``/corral schedule run`` (None where none runs).
    scheduler: ScheduleControl | None = None

    @property
    def is_approver(self) -> bool:
        """Approvers may decide approvals and forget anyone's memories."""
        return self.platform == "console" or self.user in self.team.approvers


@dataclass(frozen=True)
class CommandReply:
    """Markdown text; ``ephemeral`` replies are shown only to the caller where possible.

    ``attachment`` is a document that goes with the text, as ``(filename, content)``:
    uploaded as a file where the platform can, printed where it cannot.
    """

    text: str
    ephemeral: bool = True
    attachment: tuple[str, str] | None = None


Handler = Callable[[CommandContext, list[str]], Awaitable[CommandReply]]


@dataclass(frozen=True)
class CommandDef:
    """One subcommand: ``/<group> <name> <usage>``."""

    group: str
    name: str
    usage: str
    help: str
    handler: Handler


class UsageError(Exception):
    """The command's words are off; the message says how to write it."""


def parse_flags(words: Sequence[str], flags: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Split ``--flag value`` pairs from the rest of the words."""
    found: dict[str, str] = {}
    rest: list[str] = []
    it = iter(words)
    for word in it:
        name = word[2:] if word.startswith("--") else ""
        if name in flags:
            value = next(it, None)
            if value is None:
                raise UsageError(f"`--{name}` needs a value")
            found[name] = value
        else:
            rest.append(word)
    return found, rest


def format_age(delta: timedelta) -> str:
    """A short age such as ``42s``, ``5m``, ``3h`` or ``2d``."""
    seconds = int(delta.total_seconds())
    if seconds < 90:
        return f"{max(seconds, 0)}s"
    if seconds < 5400:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def commands() -> list[CommandDef]:
    """Every command, in help order."""
    from corral.bot.commands import corral, memory, schedule

    return [*corral.COMMANDS, *schedule.COMMANDS, *memory.COMMANDS]


def help_text(group: str | None = None) -> str:
    """The help listing, generated from the table."""
    lines = [
        f"`/{c.group} {c.name}{' ' + c.usage if c.usage else ''}` — {c.help}"
        for c in commands()
        if group is None or c.group == group
    ]
    return "\n".join(lines)


async def dispatch(ctx: CommandContext, line: str) -> CommandReply:
    """Run a command line such as ``/memory add The deploy window is Friday``."""
    words = line.strip().split()
    if not words:
        return CommandReply(help_text())
    group = words[0].lstrip("/")
    name = words[1].lower() if len(words) > 1 else "help"
    matches = [c for c in commands() if c.group == group]
    if not matches:
        return CommandReply(f"Unknown command `/{group}`. Commands:\n{help_text()}")
    if name == "help" and not any(c.name == "help" for c in matches):
        return CommandReply(help_text(group))
    for command in matches:
        if command.name == name:
            try:
                return await command.handler(ctx, words[2:])
            except UsageError as exc:
                usage = f"/{group} {command.name} {command.usage}".strip()
                return CommandReply(f"{exc}. Usage: `{usage}`")
    return CommandReply(f"Unknown subcommand `{name}`. Try:\n{help_text(group)}")
