"""How a command is declared and how its arguments are read; the table of every
command is :mod:`corral.bot.commands.table`.

Each command is declared once, with typed arguments (:class:`Arg`). Its arguments are
parsed into :class:`Values` before its handler runs: from a chat line by
:func:`parse_line` (the console, Slack, Discord's free-text subcommands), or from values
already separated by :func:`bind` (the CLI's arguments, Discord's options). The CLI, the
Discord application commands, the help text and the Slack manifest's slash commands are
generated from the table.

This module and the handler modules import only what their declarations need: the CLI
builds its commands from the table on every start, and ``corral --help`` must stay fast.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, timedelta, tzinfo
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

from corral.storage.storable import storable_text

if TYPE_CHECKING:
    from corral.agents.permissions import ChannelAliases
    from corral.agents.team import Team
    from corral.bot.commands.schedule import ScheduleControl
    from corral.storage.audit import Where
    from corral.storage.store import Storage

log = logging.getLogger("corral.commands")


def redact_builtin(text: str) -> str:
    """``text`` with the secrets of the built-in formats redacted (imported when first
    needed: ``corral --help`` does not load the redactor)."""
    from corral.agents.redaction import BUILTIN

    return BUILTIN.redact(text)


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
    #: Run from a shell (``corral memory …``), not typed in a chat.
    shell: bool = False
    #: The zone that budget days and usage periods count in (``CORRAL_TIMEZONE``).
    timezone: tzinfo = UTC
    #: The models cooling down, each with when it comes back (seconds since the epoch);
    #: None where this process has no model chain to ask.
    cooling: Callable[[], Awaitable[dict[str, float]]] | None = None
    #: Redis is unreachable, and the database keeps the limits until it is back.
    limits_degraded: bool = False
    #: Now, in seconds since the epoch: a test's clock, else the real one.
    clock: Callable[[], float] = time.time
    #: The deployment's redaction, which a command's arguments and reply go through.
    redact: Callable[[str], str] = redact_builtin
    #: ``(platform, channel)`` → every name the channel is known by there (id,
    #: ``#name``), for ``allowed_channels``; None: a channel is known by itself alone.
    channel_aliases: ChannelAliases | None = None

    @property
    def is_approver(self) -> bool:
        """Approvers may decide approvals."""
        return self.platform == "console" or self.team.is_approver(self.user)

    @property
    def is_admin(self) -> bool:
        """Admins change schedules and budgets, see and forget any memory, read the
        audit. The person at ``corral chat``'s console and whoever runs a command from a
        shell are the machine's operator."""
        return self.shell or self.platform == "console" or self.team.is_admin(self.user)

    @property
    def where(self) -> Where:
        """Where the command was run, as the audit records it: a chat's platform and
        channel, or ``shell`` for a command run from a terminal (by the operator, who
        has the database in hand and may do anything)."""
        from corral.storage.audit import Where

        return Where("shell") if self.shell else Where(self.platform, self.channel)

    def command(self, line: str) -> str:
        """The command ``line`` (``/memory add …``) as the caller types it: in a shell,
        ``corral memory add …``."""
        if not self.shell:
            return line
        return "corral " + line.removeprefix("/corral ").removeprefix("/")


@dataclass(frozen=True)
class CommandReply:
    """Markdown text; ``ephemeral`` replies are shown only to the caller where possible.

    ``attachment`` is a document that goes with the text, as ``(filename, content)``:
    uploaded as a file where the platform can, printed where it cannot.

    ``ok`` is False when the command did not do what was asked (no such memory, not
    allowed, a fire that failed): chats show the text all the same, a shell prints it as
    an error and exits non-zero.
    """

    text: str
    ephemeral: bool = True
    attachment: tuple[str, str] | None = None
    ok: bool = True


class UsageError(Exception):
    """The command's arguments are off; the message says what is wrong."""


#: ``word``: one word; ``int``: a whole number; ``text``: any number of words (in a chat
#: line, up to the next argument's prefix, or to the end).
ArgKind = Literal["word", "int", "text"]


@dataclass(frozen=True)
class Arg:
    """One argument of a command: positional, or ``--name VALUE`` when ``flag``."""

    name: str
    kind: ArgKind = "word"
    help: str = ""
    required: bool = True
    flag: bool = False
    #: How usage lines write it (default: the name in capitals).
    metavar: str = ""
    #: A mark the value may be written with (``@`` for an agent, ``#`` for an id),
    #: taken off the value. In a chat line, a positional that follows a ``text`` argument
    #: must be written with it: that is where the text ends.
    prefix: str = ""
    #: What to tell the caller when it is missing or malformed.
    hint: str = ""

    @property
    def label(self) -> str:
        """The argument as usage lines write it."""
        return self.metavar or self.name.upper()

    @property
    def optional(self) -> bool:
        """Flags are always optional."""
        return self.flag or not self.required

    def usage(self) -> str:
        """``TEXT``, ``[NAME]`` or ``[--name NAME]``."""
        if self.flag:
            return f"[--{self.name} {self.label}]"
        return f"[{self.label}]" if not self.required else self.label

    def convert(self, raw: str) -> str | int:
        """The typed value of what the caller wrote."""
        # As it would be stored: nothing but NUL characters is nothing.
        value = storable_text(raw).strip()
        if self.prefix and value.startswith(self.prefix):
            value = value[len(self.prefix) :]
        if not value:
            raise UsageError(self.hint or f"Give {self.label}")
        if self.kind == "int":
            if not (value.isascii() and value.isdigit()):
                raise UsageError(self.hint or f"{self.label} is a number")
            return int(value)
        return value


Handler = Callable[["CommandContext", "Values"], Awaitable[CommandReply]]


@dataclass(frozen=True)
class Values:
    """A command's arguments, parsed: an absent optional argument has no value."""

    given: Mapping[str, str | int] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return name in self.given

    def text(self, name: str) -> str:
        """A ``word`` or ``text`` argument ('' when absent)."""
        value = self.given.get(name, "")
        return value if isinstance(value, str) else str(value)

    def number(self, name: str) -> int:
        """An ``int`` argument (it is required where this is called)."""
        value = self.given[name]
        if not isinstance(value, int):
            raise TypeError(f"{name} is not a number")
        return value


@dataclass(frozen=True)
class Command:
    """``/<path…> <args>``, run by ``handler``. ``cli=False`` keeps it out of the CLI."""

    path: tuple[str, ...]
    help: str
    handler: Handler
    args: tuple[Arg, ...] = ()
    cli: bool = True

    def __post_init__(self) -> None:
        positional = [a for a in self.args if not a.flag]
        for before, after in pairwise(positional):
            if before.kind == "text" and not after.prefix:
                raise ValueError(f"{self.path}: `{after.name}` ends a text, so it needs a prefix")

    @property
    def name(self) -> str:
        """The last word of the path."""
        return self.path[-1]

    @property
    def usage(self) -> str:
        """The arguments as one usage string: positionals first, then flags."""
        positional = [a.usage() for a in self.args if not a.flag]
        return " ".join([*positional, *(a.usage() for a in self.args if a.flag)])

    @property
    def line(self) -> str:
        """The usage line: ``/memory add TEXT [--agent NAME]``."""
        return " ".join(["/" + " ".join(self.path), self.usage]).strip()


@dataclass(frozen=True)
class Group:
    """A word that commands share (``/corral``, ``/corral schedule``), with its help."""

    path: tuple[str, ...]
    help: str


@dataclass(frozen=True)
class _Token:
    """A word of a chat line as typed (``raw``) and as meant (``value``: unquoted)."""

    raw: str
    value: str


#: A quoted stretch followed by a space or the end, else a run of non-spaces. An
#: apostrophe inside a word ("week's") is just an apostrophe.
_TOKEN_RE = re.compile(r"\"[^\"]*\"(?=\s|$)|'[^']*'(?=\s|$)|\S+")


def _tokens(text: str) -> list[_Token]:
    found = []
    for match in _TOKEN_RE.finditer(text):
        raw = match.group()
        quoted = len(raw) > 1 and raw[0] == raw[-1] and raw[0] in "\"'"
        found.append(_Token(raw, raw[1:-1] if quoted else raw))
    return found


def _joined(tokens: Sequence[_Token]) -> str:
    # One word keeps its quotes off; a stretch of words is kept as typed.
    return tokens[0].value if len(tokens) == 1 else " ".join(t.raw for t in tokens)


def _positionals(command: Command, tokens: Sequence[_Token]) -> dict[str, str | int]:
    args = [a for a in command.args if not a.flag]
    given: dict[str, str | int] = {}
    at = 0
    for n, arg in enumerate(args):
        if arg.kind == "text":
            after = args[n + 1] if n + 1 < len(args) else None
            end: int | None = len(tokens)
            if after is not None:
                end = next(
                    (
                        i
                        for i in range(at + 1, len(tokens))
                        if tokens[i].raw.startswith(after.prefix)
                    ),
                    None,
                )
                if end is None:
                    raise UsageError(after.hint or f"Give {after.label}")
            taken = tokens[at:end]
        else:
            taken = tokens[at : at + 1]
        if not taken:
            if arg.required:
                raise UsageError(arg.hint or f"Give {arg.label}")
            continue
        given[arg.name] = arg.convert(_joined(taken))
        at += len(taken)
    if at < len(tokens):
        raise UsageError(f"`{tokens[at].raw}` is more than the command takes")
    return given


def parse_line(command: Command, text: str) -> Values:
    """The values of a chat line's arguments (the words after the command's path).

    Declared flags (``--agent NAME``) may stand anywhere; a quoted stretch is one word and
    never a flag, so ``"mind the --agent flag"`` is text.
    """
    flags = {a.name: a for a in command.args if a.flag}
    given: dict[str, str | int] = {}
    rest: list[_Token] = []
    tokens = iter(_tokens(text))
    for token in tokens:
        arg = flags.get(token.raw[2:]) if token.raw.startswith("--") else None
        if arg is None:
            rest.append(token)
            continue
        value = next(tokens, None)
        if value is None:
            raise UsageError(f"`--{arg.name}` needs a value")
        given[arg.name] = arg.convert(value.value)
    given.update(_positionals(command, rest))
    return Values(given)


def bind(
    command: Command, options: Mapping[str, str | None], words: Sequence[str] | None = None
) -> Values:
    """The values of arguments given separately: each by name in ``options`` (None or
    blank: not given), or, when ``words`` is given, the positional ones as those words
    (each one word as it is: a shell's argument, never re-split or read as a flag)."""
    given: dict[str, str | int] = {}
    for arg in command.args:
        if words is not None and not arg.flag:
            continue
        value = options.get(arg.name)
        if value is not None and value.strip():
            given[arg.name] = arg.convert(value)
        elif not arg.optional:
            raise UsageError(arg.hint or f"Give {arg.label}")
    if words is not None:
        given.update(_positionals(command, [_Token(w, w) for w in words]))
    return Values(given)


async def execute(
    ctx: CommandContext, command: Command, values: Callable[[], Values]
) -> CommandReply:
    """Run ``command`` with the values ``values`` reads; a usage error is answered with
    what is wrong and the usage line. What the command is given (a memory to add, a
    schedule's prompt) and what it answers are redacted: a secret typed into a command is
    neither stored nor shown back."""
    try:
        given = values().given
        redacted = {k: ctx.redact(v) if isinstance(v, str) else v for k, v in given.items()}
        reply = await command.handler(ctx, Values(redacted))
    except UsageError as exc:
        reply = CommandReply(f"{exc}. Usage: `{command.line}`", ok=False)
    except Exception:
        # Every surface answers a command; the person is told, the log has the rest.
        log.exception("/%s failed", " ".join(command.path))
        reply = CommandReply(
            "That did not work: internal error (the log has the details)", ok=False
        )
    attachment = reply.attachment
    if attachment is not None:
        attachment = (attachment[0], ctx.redact(attachment[1]))
    return replace(reply, text=ctx.redact(reply.text), attachment=attachment)


def plural(count: int, word: str, many: str = "") -> str:
    """``1 run``, ``2 runs``: ``count`` and ``word``, in the plural (``many``, by default
    ``word`` + s) unless ``count`` is 1."""
    return f"{count} {word if count == 1 else many or word + 's'}"


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
