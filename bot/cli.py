"""The ``corral`` command line (DESIGN.md, "Command line"). Heavy imports happen inside
the commands so that ``corral --help`` starts fast."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import click

from corral.bot.schedule_cli import schedule

if TYPE_CHECKING:
    from corral.bot.app import Core
    from corral.bot.settings import Settings

T = TypeVar("T")

team_option = click.option(
    "--team",
    "team",
    type=click.Path(dir_okay=False),
    default=None,
    help="Path of team.yaml (default: $CORRAL_TEAM, else ./team.yaml).",
)


def _settings(default_level: str = "INFO", log_file: str | None = None) -> Settings:
    """Settings from the environment and .env, with logging set up from them.

    ``default_level`` applies when ``CORRAL_LOG_LEVEL`` is not set. The conversation
    commands keep the terminal for the conversation and log to ``log_file`` instead.
    """
    from corral.bot.logs import configure
    from corral.bot.settings import Settings

    settings = Settings()
    stream = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
    configure(settings.corral_log_format, settings.corral_log_level or default_level, stream)
    return settings


def _fail(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(1)


def _with_core(
    team: str | None,
    body: Callable[[Core], Awaitable[T]],
    log_file: str | None = None,
    log_level: str | None = None,
    own_queue: bool = False,
) -> T:
    """Build the core, run ``body`` with it, and turn start-up errors into one clear
    message and exit code 1 instead of a traceback."""
    from corral.agents.team_loader import TeamFileError
    from corral.bot.app import StartupError, build_core, resolve_team_path

    settings = _settings(log_level or ("WARNING" if log_file is None else "INFO"), log_file)

    async def main() -> T:
        core = await build_core(settings, resolve_team_path(team, settings), own_queue=own_queue)
        try:
            return await body(core)
        finally:
            await core.close()

    try:
        return asyncio.run(main())
    except TeamFileError as exc:
        _fail("the team file has problems:\n" + str(exc))
    except StartupError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        sys.exit(130)
    raise AssertionError("unreachable")


@click.group()
@click.version_option(package_name="corral")
def main() -> None:
    """Corral: a team of AI agents in chat."""


@main.command()
@team_option
@click.option(
    "--channel",
    default="#console",
    show_default=True,
    help="The channel the console talks in (channel defaults apply).",
)
def chat(team: str | None, channel: str) -> None:
    """Talk to the team in the terminal."""
    from rich.console import Console

    from corral.bot.console import CONSOLE_LOG, ConsoleChat

    async def body(core: Core) -> None:
        await ConsoleChat(core, Console(highlight=False), channel).run()

    _with_core(team, body, log_file=CONSOLE_LOG, own_queue=True)


@main.command()
@team_option
def run(team: str | None) -> None:
    """Run the service: Slack (Socket Mode with SLACK_APP_TOKEN, else HTTP on
    CORRAL_HTTP_PORT), the workers and the HTTP server, until stopped."""
    from corral.bot.service import serve

    _with_core(team, serve, log_level="INFO")


@main.command()
@team_option
def worker(team: str | None) -> None:
    """Answer messages only, for scale-out: take them from the shared Redis queue
    (REDIS_URL) that `corral run` fills, and post the answers on Slack and Discord."""
    from corral.bot.worker import work

    _with_core(team, work, log_level="INFO")


@main.command()
@team_option
def check(team: str | None) -> None:
    """Validate team.yaml and the environment; exit 1 on any error."""
    from corral.agents.team_check import check_environment
    from corral.agents.team_loader import TeamFileError, load_team
    from corral.bot.app import resolve_team_path

    settings = _settings()
    path = resolve_team_path(team, settings)
    try:
        loaded = load_team(path)
    except TeamFileError as exc:
        for problem in exc.problems:
            click.echo(click.style("error ", fg="red", bold=True) + str(problem))
        sys.exit(1)
    problems = check_environment(loaded, settings.variables())
    if settings.slack_bot_token and settings.slack_bot_token.startswith("xoxb-"):
        from corral.bot.slack.check import check_slack

        problems += check_slack(settings.slack_bot_token, settings.slack_api_url)
    if settings.discord_token:
        from corral.bot.discord.check import check_discord

        problems += check_discord(settings.discord_token, settings.discord_api_url)
    for problem in problems:
        if problem.severity == "error":
            click.echo(click.style("error ", fg="red", bold=True) + str(problem))
        else:
            click.echo(click.style(str(problem), fg="yellow"))
    if any(p.severity == "error" for p in problems):
        sys.exit(1)
    click.echo(f"{path}: {len(loaded.agents)} agents, {len(loaded.schedules)} schedules — ok")


def _command(team: str | None, line: str) -> None:
    """Run a slash command from the shell, as the local operator."""
    import getpass

    from rich.console import Console

    from corral.bot.commands.registry import dispatch
    from corral.bot.console import print_command_reply

    async def body(core: Core) -> None:
        reply = await dispatch(core.command_context(getpass.getuser(), "console"), line)
        if reply.attachment is None:
            print_command_reply(Console(highlight=False), reply.text)
            return
        # The document goes to stdout as it is, so that `> FILE` saves it; the note
        # about it to stderr.
        print_command_reply(Console(highlight=False, stderr=True), reply.text)
        click.echo(reply.attachment[1], nl=False)

    _with_core(team, body)


@main.command()
@team_option
def status(team: str | None) -> None:
    """The team's status (as /corral status)."""
    _command(team, "/corral status")


@main.group()
def memory() -> None:
    """Shared memory (as /memory)."""


@memory.command("add")
@team_option
@click.option("--agent", default=None, help="Keep it as this agent's memory.")
@click.option("--channel", default=None, help="Keep it as this channel's memory.")
@click.argument("text", nargs=-1, required=True)
def memory_add(
    team: str | None, agent: str | None, channel: str | None, text: tuple[str, ...]
) -> None:
    """Remember TEXT (team-wide unless --agent or --channel)."""
    flags = (f" --agent {agent}" if agent else "") + (f" --channel {channel}" if channel else "")
    _command(team, "/memory add " + " ".join(text) + flags)


@memory.command("search")
@team_option
@click.argument("query", nargs=-1, required=True)
def memory_search(team: str | None, query: tuple[str, ...]) -> None:
    """Search memories for QUERY."""
    _command(team, "/memory search " + " ".join(query))


@memory.command("list")
@team_option
@click.option("--agent", default=None, help="Only this agent's memories.")
def memory_list(team: str | None, agent: str | None) -> None:
    """The newest memories."""
    _command(team, "/memory list" + (f" --agent {agent}" if agent else ""))


@memory.command("forget")
@team_option
@click.argument("memory_id")
def memory_forget(team: str | None, memory_id: str) -> None:
    """Delete memory MEMORY_ID (audited)."""
    _command(team, f"/memory forget {memory_id}")


@memory.command("promote")
@team_option
@click.argument("memory_id")
def memory_promote(team: str | None, memory_id: str) -> None:
    """Make an agent's memory MEMORY_ID the team's (audited)."""
    _command(team, f"/memory promote {memory_id}")


@memory.command("export")
@team_option
def memory_export(team: str | None) -> None:
    """Print the team memory as a MEMORY.md document (`> MEMORY.md` saves it)."""
    _command(team, "/memory export")


@memory.command("import")
@team_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def memory_import(team: str | None, path: str) -> None:
    """Load the team memories of a MEMORY.md file; those already known are not added
    again."""
    import getpass
    from pathlib import Path

    from rich.console import Console

    from corral.bot.commands.memory import import_document
    from corral.bot.console import print_command_reply

    try:
        document = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")

    async def body(core: Core) -> None:
        ctx = core.command_context(getpass.getuser(), "console")
        reply = await import_document(ctx, document, Path(path).name)
        print_command_reply(Console(highlight=False), reply.text)

    _with_core(team, body)


@memory.command("reindex")
@team_option
def memory_reindex(team: str | None) -> None:
    """Embed the memories stored before semantic search was on (CORRAL_EMBEDDINGS=1)."""
    from corral.storage.embeddings import EmbeddingsUnavailable, enabled
    from corral.storage.store import Storage

    settings = _settings()

    async def reindex() -> int:
        semantic = enabled(settings.corral_embeddings)
        storage = await Storage.open(settings.database_url, semantic=semantic)
        try:
            return await storage.memory.reindex()
        finally:
            await storage.close()

    try:
        count = asyncio.run(reindex())
    except EmbeddingsUnavailable as exc:
        _fail(str(exc))
    click.echo(f"{count} memories embedded")


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@team_option
def db_upgrade(team: str | None) -> None:
    """Apply the database migrations (they also run on every start)."""
    from corral.storage.store import Storage

    settings = _settings()

    async def upgrade() -> None:
        storage = await Storage.open(settings.database_url)
        await storage.close()

    try:
        asyncio.run(upgrade())
    except Exception as exc:
        _fail(f"cannot upgrade the database at {settings.database_url}: {exc}")
    click.echo(f"{settings.database_url}: up to date")


main.add_command(schedule)
