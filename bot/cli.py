"""The ``corral`` command line (DESIGN.md, "Command line"). Heavy imports happen inside
the commands so that ``corral --help`` starts fast."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NoReturn, TypeVar, cast

import click

from corral.bot.commands.registry import Command, UsageError, Values, bind, plural
from corral.bot.commands.table import commands, groups

if TYPE_CHECKING:
    from rich.console import Console

    from corral.agents.team import Team
    from corral.agents.team_loader import Problem
    from corral.bot.app import Core
    from corral.bot.settings import Settings
    from corral.storage.schedules import FireRecord

T = TypeVar("T")

_TEAM_HELP = "Path of team.yaml (default: $CORRAL_TEAM, else ./team.yaml)."
team_option = click.option(
    "--team", "team", type=click.Path(dir_okay=False), default=None, help=_TEAM_HELP
)


def _settings(default_level: str = "INFO", log_file: str | None = None) -> Settings:
    """Settings from the environment and .env, with logging set up from them; wrong
    ones end the command with what is wrong with each.

    ``default_level`` applies when ``CORRAL_LOG_LEVEL`` is not set. The conversation
    commands keep the terminal for the conversation and log to ``log_file`` instead.
    """
    from corral.bot.settings import SettingsError, read_settings

    try:
        settings = read_settings()
    except SettingsError as exc:
        _fail(*(str(w) for w in exc.wrong.values()))
    _configure_logs(settings, default_level, log_file)
    return settings


def _configure_logs(settings: Settings, default_level: str, log_file: str | None = None) -> None:
    from corral.bot.logs import configure

    stream = open(log_file, "a", encoding="utf-8") if log_file else None  # noqa: SIM115
    configure(settings.corral_log_format, settings.corral_log_level or default_level, stream)


def _fail(*messages: str) -> NoReturn:
    for message in messages:
        click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)
    sys.exit(1)


def _connection_errors(*more: type[BaseException]) -> tuple[type[BaseException], ...]:
    """What a lost database or Redis connection raises, and ``more``."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import InterfaceError, OperationalError

    return (
        OSError,
        OperationalError,
        InterfaceError,
        RedisConnectionError,
        RedisTimeoutError,
        *more,
    )


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
    from corral.bot.connections import one_line
    from corral.storage.urls import scrubbed

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
    except _connection_errors() as exc:
        # Reached at start, the database and Redis went away meanwhile.
        message = scrubbed(one_line(exc, settings.database_url), settings.redis_url or "")
        _fail(f"lost the connection to the database or Redis: {message}")


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
    from corral.bot.console import CONSOLE_LOG, ConsoleChat
    from corral.bot.terminal import output_console

    async def body(core: Core) -> None:
        await ConsoleChat(core, output_console(), channel).run()

    _with_core(team, body, log_file=CONSOLE_LOG, own_queue=True)


@main.command()
@team_option
def run(team: str | None) -> None:
    """Run the service until stopped: Slack (SLACK_BOT_TOKEN; Socket Mode with
    SLACK_APP_TOKEN, else events over HTTP), Discord (DISCORD_TOKEN), or both; the
    workers that answer, the schedules, and the HTTP server on CORRAL_HTTP_PORT
    (/healthz, /metrics, and /slack/events in HTTP mode)."""
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
@click.option(
    "--offline",
    is_flag=True,
    help="Reach nothing over the network: no database server, Redis, model provider, "
    "Slack or Discord.",
)
def check(team: str | None, offline: bool) -> None:
    """Validate team.yaml and the environment, and reach the database, Redis, each model
    of the team, Slack and Discord; exit 1 on any error (warnings alone: 0)."""
    from corral.agents.team_check import check_environment
    from corral.agents.team_loader import Problem, TeamFileError, read_team
    from corral.bot.app import resolve_team_path
    from corral.bot.settings import SettingsError, read_settings_leniently

    try:
        settings, wrong = read_settings_leniently()
    except SettingsError as exc:
        _fail(*(str(w) for w in exc.wrong.values()))
    _configure_logs(settings, "INFO")
    problems = [Problem(".env", None, w.problem, w.fix) for w in wrong]
    path = resolve_team_path(team, settings)
    loaded = None
    try:
        read = read_team(path)
        loaded = read.team
        problems += read.warnings
    except TeamFileError as exc:
        problems += exc.problems
    if loaded is not None:
        problems += check_environment(loaded, settings.variables())
    if offline:
        click.echo(
            "offline: the database server, Redis, the model providers, Slack and Discord "
            "were not reached"
        )
    else:
        problems += _reach_online(settings, loaded)
    for problem in problems:
        if problem.severity == "error":
            click.echo(click.style("error ", fg="red", bold=True) + str(problem))
        else:
            click.echo(click.style(str(problem), fg="yellow"))
    if loaded is None or any(p.severity == "error" for p in problems):
        sys.exit(1)
    agents, schedules = (
        plural(len(loaded.agents), "agent"),
        plural(len(loaded.schedules), "schedule"),
    )
    click.echo(f"{path}: {agents}, {schedules} — ok")


def _reach_online(settings: Settings, team: Team | None) -> list[Problem]:
    """The database, Redis, each model the team uses, Slack and Discord, reached."""
    problems = _reach(settings)
    if team is not None:
        from corral.agents.llm.probe import models_in_use, probe_models
        from corral.bot.app import provider_settings

        providers = provider_settings(settings)
        problems += asyncio.run(probe_models(models_in_use(team), providers))
    if settings.slack_bot_token and settings.slack_bot_token.startswith("xoxb-"):
        from corral.bot.slack.check import check_slack

        problems += check_slack(settings.slack_bot_token, settings.slack_api_url)
    if settings.discord_token:
        from corral.bot.discord.check import check_discord

        problems += check_discord(settings.discord_token, settings.discord_api_url)
    return problems


def _reach(settings: Settings) -> list[Problem]:
    """The database (``SELECT 1``) and Redis (``PING``, when REDIS_URL is set), reached
    at once; a problem for each that does not answer."""
    from corral.agents.team_loader import Problem
    from corral.bot.connections import database_problem, redis_problem

    checks = [
        (
            database_problem(settings.database_url),
            "start the database, or check DATABASE_URL (default: sqlite+aiosqlite:///corral.db)",
        )
    ]
    if settings.redis_url:
        checks.append(
            (
                redis_problem(settings.redis_url),
                "start Redis, or check REDIS_URL (unset: Corral runs in one process, "
                "without Redis)",
            )
        )

    async def reach() -> list[str | None]:
        return list(await asyncio.gather(*(check for check, _ in checks)))

    found = asyncio.run(reach())
    return [
        Problem(".env", None, problem, fix)
        for problem, (_, fix) in zip(found, checks, strict=True)
        if problem is not None
    ]


def _shell_user() -> str:
    """Who runs the command: the operating system's user name."""
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment or the password file
        return "shell"


def _run_command(team: str | None, command: Command, values: Values) -> None:
    """Run a command of the table from the shell, as the local operator, and print its
    reply: to stderr with exit code 1 when the command did not do what was asked. A
    usage error is raised as :class:`UsageError`, for the caller to show with the
    shell's usage line."""
    from corral.bot.console import print_command_reply
    from corral.bot.scheduling.reconcile import reconcile
    from corral.bot.terminal import output_console

    out = output_console()

    async def body(core: Core) -> bool:
        scheduler = None
        if command.path[:2] == ("corral", "schedule"):
            # The shell acts on the database: team.yaml's schedules go into it first, and
            # `run` fires here, its posts shown in the terminal.
            await reconcile(core.team, core.storage)
            scheduler = _HereAndNow(core, out)
        ctx = core.command_context(_shell_user(), "console", scheduler=scheduler, shell=True)
        reply = await command.handler(ctx, values)
        if not reply.ok:
            print_command_reply(output_console(stderr=True), "error: " + reply.text)
            return False
        if reply.attachment is None:
            print_command_reply(out, reply.text)
            return True
        # The document goes to stdout as it is, so that `> FILE` saves it; the note
        # about it to stderr.
        print_command_reply(output_console(stderr=True), reply.text)
        click.echo(reply.attachment[1], nl=False)
        return True

    if not _with_core(team, body):
        sys.exit(1)


class _HereAndNow:
    """Runs a fire in this process and waits for it; its posts go to the terminal."""

    def __init__(self, core: Core, out: Console) -> None:
        from corral.bot.console import PLATFORM, ConsoleAdapter

        self.workers = core.workers({PLATFORM: ConsoleAdapter(core, out)}, concurrency=1)
        self.runner = core.fire_runner(self.workers)

    async def run_now(self, name: str, by: str) -> FireRecord:
        """Fire ``name`` and return its final record."""
        self.workers.start()
        try:
            _, run = await self.runner.begin_manual(name, by)
            return await run
        finally:
            await self.workers.stop()

    async def changed(self) -> None:
        """Nothing runs here to be told: a running ``corral run`` syncs by itself."""


def _click_command(command: Command, name: str) -> click.Command:
    """``command`` for the shell: its flags as options, its positional arguments as the
    words after them. The values go to the command as given: a word with ``--agent`` in
    it is text, not a flag."""
    positional = [a for a in command.args if not a.flag]
    params: list[click.Parameter] = [
        click.Option(["--team"], type=click.Path(dir_okay=False), help=_TEAM_HELP),
        *(
            click.Option([f"--{a.name}"], metavar=a.label, help=a.help)
            for a in command.args
            if a.flag
        ),
    ]
    if positional:
        params.append(
            click.Argument(
                ["words"],
                nargs=-1,
                required=any(not a.optional for a in positional),
                metavar=" ".join(a.usage() for a in positional),
            )
        )

    def callback(team: str | None, words: tuple[str, ...] = (), **options: str | None) -> None:
        try:
            _run_command(team, command, bind(command, options, words))
        except UsageError as exc:
            raise click.UsageError(str(exc), click.get_current_context()) from None

    summary = f"{command.help[:1].upper()}{command.help[1:]} (as /{' '.join(command.path)})"
    # \b keeps click from re-wrapping the list of arguments into one paragraph.
    text = summary + "."
    if positional:
        text += "\n\n\b\n" + "\n".join(f"{a.label}: {a.help}" for a in positional)
    return click.Command(name, callback=callback, params=params, help=text, short_help=summary)


def _subgroup(parent: click.Group, name: str, help: str) -> click.Group:
    found = parent.commands.get(name)
    if isinstance(found, click.Group):
        return found
    group = click.Group(name, help=help)
    parent.add_command(group)
    return group


def _add_table(root: click.Group) -> None:
    """The table's commands, ``/corral X`` as ``corral X`` and ``/memory X`` as
    ``corral memory X``."""
    helps = {g.path: g.help for g in groups()}
    for command in commands():
        if not command.cli:
            continue
        skip = 1 if command.path[0] == "corral" else 0
        parent = root
        for depth in range(skip + 1, len(command.path)):
            path = command.path[:depth]
            parent = _subgroup(parent, path[-1], f"{helps[path]} (as /{' '.join(path)}).")
        parent.add_command(_click_command(command, command.name))


_add_table(main)
# The table made the group; the shell's own memory commands join it.
memory = cast(click.Group, main.commands["memory"])


def _add_audit_export(audit: click.Command) -> None:
    """``corral audit --json``: every matching entry as JSON lines, streamed from the
    database, instead of the table of the latest."""
    show = audit.callback
    assert show is not None
    audit.params.append(
        click.Option(
            ["--json", "as_json"],
            is_flag=True,
            help="Every matching entry, one JSON object a line (an export), not the latest "
            "as a table.",
        )
    )

    def callback(team: str | None, as_json: bool, **options: str | None) -> None:
        if not as_json:
            show(team=team, **options)
            return
        from corral.bot.commands.audit import AUDIT, export_lines

        async def body(core: Core) -> None:
            ctx = core.command_context(_shell_user(), "console", shell=True)
            async for line in export_lines(ctx, bind(AUDIT, options)):
                click.echo(line)

        try:
            _with_core(team, body)
        except UsageError as exc:
            raise click.UsageError(str(exc), click.get_current_context()) from None

    audit.callback = callback


_add_audit_export(main.commands["audit"])


@memory.command("import")
@team_option
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def memory_import(team: str | None, path: str) -> None:
    """Load the team memories of a MEMORY.md file; those already known are not added
    again."""
    from pathlib import Path

    from corral.bot.commands.memory import import_document
    from corral.bot.console import print_command_reply
    from corral.bot.terminal import output_console

    try:
        document = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        _fail(f"cannot read {path}: {exc}")

    async def body(core: Core) -> None:
        ctx = core.command_context(_shell_user(), "console", shell=True)
        reply = await import_document(ctx, document, Path(path).name)
        print_command_reply(output_console(), reply.text)

    _with_core(team, body)


@memory.command("reindex")
@team_option
def memory_reindex(team: str | None) -> None:
    """Embed the memories stored before semantic search was on (CORRAL_EMBEDDINGS=1)."""
    from sqlalchemy.exc import ArgumentError

    from corral.bot.connections import one_line
    from corral.storage.embeddings import EmbeddingsUnavailable, enabled
    from corral.storage.store import Storage
    from corral.storage.urls import shown_url

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
    except _connection_errors(ArgumentError, ValueError) as exc:
        url = settings.database_url
        _fail(f"cannot open the database at {shown_url(url)}: {one_line(exc, url)}")
    click.echo(f"{plural(count, 'memory', 'memories')} embedded")


@main.group()
def db() -> None:
    """The database."""


@db.command("upgrade")
@team_option
def db_upgrade(team: str | None) -> None:
    """Apply the database migrations (they also run on every start)."""
    from corral.bot.connections import one_line
    from corral.storage.db import Database
    from corral.storage.urls import shown_url

    settings = _settings()
    url = settings.database_url

    async def upgrade() -> list[str]:
        db = Database(url)
        try:
            return await db.upgrade()
        finally:
            await db.dispose()

    try:
        applied = asyncio.run(upgrade())
    except Exception as exc:
        _fail(f"cannot upgrade the database at {shown_url(url)}: {one_line(exc, url)}")
    if not applied:
        click.echo(f"{shown_url(url)}: already up to date")
        return
    revisions = applied[0] if len(applied) == 1 else f"{applied[0]} to {applied[-1]}"
    click.echo(f"{shown_url(url)}: applied {plural(len(applied), 'migration')} ({revisions})")
