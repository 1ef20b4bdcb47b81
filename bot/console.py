"""The console adapter: the team in the terminal, with the same routing, commands and
approvals as in Slack (``corral chat``)."""

from __future__ import annotations

import asyncio
import difflib
import getpass
import logging
import re
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.markdown import Markdown
from rich.text import Text

from corral.agents.conversation import Place, Reply
from corral.bot.adapter import OnPart, ThreadLine
from corral.bot.app import Core
from corral.bot.commands.registry import format_age, plural
from corral.bot.commands.table import children, dispatch, help_text
from corral.bot.coordinator import Route
from corral.bot.decisions import KINDS_OF, DecisionContext, Verdict, decide
from corral.bot.gateway import Workers
from corral.bot.inbound import Inbound
from corral.storage.inbox import work_id

log = logging.getLogger("corral.console")

PLATFORM = "console"
#: Where the console commands log, so that the terminal shows only the conversation.
CONSOLE_LOG = "corral.log"
#: A platform mention, ``<@U0ADMIN>`` (Slack) or ``<@!123>`` (Discord).
_MENTION = re.compile(r"<@!?(\w+)>")
PALETTE = (
    "cyan",
    "magenta",
    "green",
    "yellow",
    "blue",
    "bright_red",
    "bright_cyan",
    "bright_magenta",
    "bright_green",
    "bright_blue",
)
CONSOLE_HELP = (
    "Type a message (`@beaver …` to address an agent), `/corral help` for commands, "
    "`/new` for a new thread, `/channel #dev` to switch channel, "
    "`/approve ID` or `/reject ID` to decide an approval, `/resolve ID` to close an "
    "escalation, `/quit` to leave."
)
#: The console's own commands, beside the team's: ``/corral help`` lists both.
CONSOLE_COMMANDS: tuple[tuple[str, str], ...] = (
    ("/new", "start a new thread"),
    ("/channel #name", "talk in another channel, in a new thread"),
    ("/approve ID", "let an agent do what it asks (without ID: what waits)"),
    ("/reject ID", "refuse what an agent asks (without ID: what waits)"),
    ("/resolve ID", "close an escalation (without ID: the open ones)"),
    ("/help", "this list"),
    ("/quit", "leave (or Ctrl-D, or Ctrl-C twice)"),
)
#: Shown when Ctrl-C has dropped the line being typed.
INTERRUPT_HINT = "(Line cleared. Ctrl-C again, Ctrl-D or /quit to leave.)"


#: The console's decision commands.
CONSOLE_VERDICTS: dict[str, Verdict] = {
    "/approve": "approve",
    "/reject": "reject",
    "/resolve": "resolve",
}


class ConsoleAdapter:
    """Renders replies with Rich: each agent's name in its own colour, Markdown bodies."""

    platform = PLATFORM

    def __init__(self, core: Core, console: Console) -> None:
        self.core = core
        self.out = console
        self.colours = {h: PALETTE[i % len(PALETTE)] for i, h in enumerate(core.team.agents)}
        self.channel = ""
        self._printed = 0

    async def with_names(self, inbound: Inbound) -> Inbound:
        """The console names its channel and user as it takes the line in."""
        return inbound

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        self.out.print(Text(f"→ {route.agent} ({route.reason})", style="dim"))

    async def unanswered(self, inbound: Inbound) -> None:
        """Nothing was shown before routing."""

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        """The console's threads exist only in Corral's transcript."""
        return []

    async def notice(self, inbound: Inbound, text: str) -> None:
        """Print what the app says to the person at the terminal."""
        self.out.print(Text(text, style="yellow"))

    async def post(
        self, place: Place, reply: Reply, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        """Print ``reply`` (one part: the terminal takes any length), unless ``start``
        says it is printed already. Returns a made-up id of the printed part."""
        if start > 0:
            return []
        self._print(place, reply)
        self._printed += 1
        message_id = f"console-{self._printed}"
        if on_part is not None:
            await on_part(0, message_id, True)
        return [message_id]

    def _print(self, place: Place, reply: Reply) -> None:
        # Slack's and Discord's mention markup (an escalation names the approvers so) reads
        # as a plain @handle in the terminal.
        reply = replace(reply, text=_MENTION.sub(r"@\1", reply.text))
        agent = self.core.team.agents.get(reply.agent)
        name = agent.display_name if agent else reply.agent
        colour = self.colours.get(reply.agent, "white")
        where = "" if place.channel == self.channel else f"[{place.channel}] "
        if reply.kind == "handoff":
            self.out.print(Text(f"{where}{reply.text}", style=f"italic {colour}"))
            return
        if reply.kind in ("error", "escalation", "notice", "approval"):
            # These texts name the agent themselves.
            style = "red" if reply.kind == "error" else "yellow"
            self.out.print(Text(f"{where}{reply.text}", style=style))
            if reply.kind == "approval":
                hint = f"  /approve {reply.approval_id}  or  /reject {reply.approval_id}"
                self.out.print(Text(hint, style="bold yellow"))
            elif reply.kind == "escalation" and reply.approval_id:
                self.out.print(Text(f"  /resolve {reply.approval_id}", style="bold yellow"))
            return
        header = Text(where, style="dim")
        header.append(name, style=f"bold {colour}")
        self.out.print(header)
        self.out.print(Markdown(reply.text))


class ConsoleChat:
    """The read–route–answer loop of ``corral chat``."""

    def __init__(self, core: Core, console: Console, channel: str = "#console") -> None:
        self.core = core
        self.out = console
        self.adapter = ConsoleAdapter(core, console)
        self.workers: Workers = core.workers({PLATFORM: self.adapter}, concurrency=2)
        self.scheduler = core.scheduler(self.workers)
        self.user = getpass.getuser()
        self.session = uuid.uuid4().hex[:8]
        self.count = 0
        self.thread = ""
        self.set_channel(channel)

    def set_channel(self, channel: str) -> None:
        """Talk in ``channel`` from now on, in a new thread."""
        self.adapter.channel = channel if channel.startswith("#") else f"#{channel}"
        self.thread = ""

    async def run(self) -> None:
        """Greet, then read lines until ``/quit`` or end of input."""
        team = self.core.team
        self.out.print(
            Text(
                f"Corral — {plural(len(team.agents), 'agent')} from {self.core.team_path}",
                style="bold",
            )
        )
        self.out.print(Text(f"Models: {self.core.models.status_line()}", style="dim"))
        self.out.print(Text(f"Logs: {CONSOLE_LOG} in this folder", style="dim"))
        self.out.print(Text(CONSOLE_HELP, style="dim"))
        self.workers.start()
        try:
            await self.scheduler.start()
            reader = _line_reader(self.out)
            while True:
                line = await reader(self._prompt())
                if line is None:
                    break
                line = line.strip()
                if not line:
                    continue
                if line in ("/quit", "/exit"):
                    break
                await self.handle_line(line)
        finally:
            await self.scheduler.stop()
            await self.workers.stop()

    def _prompt(self) -> str:
        return f"{self.adapter.channel} › "

    async def handle_line(self, line: str) -> None:
        """One line typed by the user: a console command, a slash command or a message.

        Whatever goes wrong, the user gets one line and the conversation goes on.
        """
        try:
            await self._handle_line(line)
        except Exception:
            log.exception("console line failed")
            self.out.print(
                Text("That did not work: internal error (the log has the details)", style="red")
            )

    async def _handle_line(self, line: str) -> None:
        if line.startswith("/"):
            await self._command(line)
            return
        unknown = self.core.coordinator.unknown_handles(line)
        if unknown:
            self._no_such_agent(unknown)
            return
        self.count += 1
        message_id = f"{self.session}-{self.count}"
        self.thread = self.thread or message_id
        inbound = Inbound(
            platform=PLATFORM,
            event_id=message_id,
            channel=self.adapter.channel,
            channel_name=self.adapter.channel,
            message_id=message_id,
            thread=self.thread,
            user=self.user,
            user_name=self.user,
            text=line,
            to_app=True,
        )
        inbox_id = await self.core.gateway.submit(inbound)
        if inbox_id is None:
            return
        await self.workers.wait(inbox_id)
        record = await self.core.storage.inbox.get(inbox_id)
        if record is not None and record.status == "ignored":
            self.out.print(
                Text(
                    "(not for the team: no agent is addressed and there is no "
                    "router agent; try @name)",
                    style="dim",
                )
            )

    async def _command(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        word = word.lower()
        if line.lower().split() in (["/help"], ["/corral", "help"]):
            print_command_reply(self.out, _help())
        elif word == "/new":
            self.thread = ""
            self.out.print(Text("New thread.", style="dim"))
        elif word == "/channel" and rest.strip():
            self.set_channel(rest.strip())
            self.out.print(Text(f"Now in {self.adapter.channel}, new thread.", style="dim"))
        elif word == "/channel":
            self.out.print(Text("Usage: /channel #name", style="yellow"))
        elif word in CONSOLE_VERDICTS and rest.strip():
            await self._decide(rest.strip(), CONSOLE_VERDICTS[word])
        elif word in CONSOLE_VERDICTS:
            await self._waiting(CONSOLE_VERDICTS[word])
        elif word[1:] not in children(()):
            print_command_reply(self.out, f"Unknown command `{word}`. Commands:\n{_help()}")
        else:
            ctx = self.core.command_context(self.user, PLATFORM, self.adapter.channel)
            reply = await dispatch(ctx, line)
            print_command_reply(self.out, reply.text)
            if reply.attachment is not None:
                filename, content = reply.attachment
                self.out.print(Text(f"── {filename} ──", style="dim"))
                self.out.print(content, markup=False, highlight=False)

    def _no_such_agent(self, handles: list[str]) -> None:
        """The message names ``@handles`` that are no agent's: say so, send nothing."""
        agents = self.core.team.agents
        lines = []
        for handle in handles:
            close = difflib.get_close_matches(handle, list(agents), n=1)
            guess = f" Did you mean @{close[0]}?" if close else ""
            lines.append(f"There is no agent @{handle}.{guess}")
        team = ", ".join(f"@{h} ({a.display_name})" for h, a in agents.items())
        lines.append(f"The agents: {team}.")
        lines.append("Nothing was sent; write the name without @ to send it as it is.")
        self.out.print(Text("\n".join(lines), style="yellow"))

    async def _waiting(self, verdict: Verdict) -> None:
        """``/approve`` (``/reject``, ``/resolve``) without an id: what it could decide."""
        kinds = KINDS_OF[verdict]
        waiting = [a for a in await self.core.storage.approvals.pending() if a.kind in kinds]
        usage = f"Usage: /{verdict} ID"
        if not waiting:
            nothing = "no escalation is open" if verdict == "resolve" else "nothing waits"
            self.out.print(Text(f"{usage} — {nothing}.", style="dim"))
            return
        now = datetime.now(UTC)
        lines = [f"{usage}. Waiting:"]
        lines += [
            f"• `{a.id}` from @{a.agent}, {format_age(now - a.created_at)} ago: {a.summary}"
            for a in waiting
        ]
        print_command_reply(self.out, "\n".join(lines))

    async def _decide(self, approval_id: str, verdict: Verdict) -> None:
        context = DecisionContext(
            self.core.team, self.core.storage.approvals, self.workers, PLATFORM, mention=str
        )
        result = await decide(context, approval_id, verdict, self.user)
        self.out.print(Text(result.text, style="dim" if result.ok else "yellow"))
        if not result.ok:
            return
        decided = await self.core.storage.approvals.get(approval_id)
        if decided is not None and decided.kind == "budget":
            return  # raised (or kept) at once: nothing runs after it
        # The terminal shows the run's continuation before the next prompt.
        item = work_id("resolve" if verdict == "resolve" else "decision", approval_id)
        await self.workers.wait(item)


def _help() -> str:
    """The console's commands, then the team's (the same as in Slack)."""
    own = [f"`{line}` — {what}" for line, what in CONSOLE_COMMANDS]
    return "\n".join(["*In the console*", *own, "*The team's commands*", help_text()])


def print_command_reply(out: Console, text: str) -> None:
    """Command replies are written line by line (as Slack shows them); render each line
    as Markdown of its own so that the lines are kept."""
    for line in text.splitlines():
        out.print(Markdown(line) if line.strip() else "")


LineReader = Callable[[str], Awaitable[str | None]]


def _line_reader(out: Console) -> LineReader:
    """An async ``prompt → line`` reader: prompt_toolkit with history on a terminal,
    plain lines from a pipe (scripts and tests).

    On a terminal, Ctrl-C drops the line being typed and the prompt stays; a second
    Ctrl-C on an empty line right after it leaves, as Ctrl-D does."""
    if sys.stdin.isatty():
        from prompt_toolkit import PromptSession
        from prompt_toolkit.history import FileHistory
        from prompt_toolkit.patch_stdout import patch_stdout

        session: PromptSession[str] = PromptSession(
            history=FileHistory(str(Path.home() / ".corral_history"))
        )

        #: Whether the last key at the prompt was a Ctrl-C.
        interrupted = False

        async def read_tty(prompt: str) -> str | None:
            nonlocal interrupted
            while True:
                # Scheduled fires post while the prompt waits: above it, not through it.
                try:
                    with patch_stdout(raw=True):
                        line = await session.prompt_async(prompt)
                except EOFError:
                    return None
                except KeyboardInterrupt:
                    typed = session.default_buffer.text.strip()
                    if interrupted and not typed:
                        return None
                    interrupted = True
                    out.print(Text(INTERRUPT_HINT, style="dim"))
                    continue
                interrupted = False
                return line

        return read_tty

    loop = asyncio.get_running_loop()

    async def read_pipe(prompt: str) -> str | None:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        return line if line else None

    return read_pipe
