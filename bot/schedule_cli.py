"""``corral schedule …``: the ``/corral schedule`` commands from a shell.

They act on the database, after bringing team.yaml's schedules into it; a running
``corral run`` picks their changes up within seconds. ``run`` fires the schedule in this
process and shows its posts in the terminal. Only click is imported up front, so that
``corral --help`` stays fast.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from rich.console import Console

    from corral.bot.app import Core
    from corral.storage.schedules import FireRecord

_team_option = click.option(
    "--team",
    "team",
    type=click.Path(dir_okay=False),
    default=None,
    help="Path of team.yaml (default: $CORRAL_TEAM, else ./team.yaml).",
)


@click.group()
def schedule() -> None:
    """Scheduled tasks (as /corral schedule)."""


@schedule.command("list")
@_team_option
def list_(team: str | None) -> None:
    """Every schedule: source, agent, channel, next fire, last fire and its outcome."""
    _run(team, ["list"])


@schedule.command("add")
@_team_option
@click.option("--tz", default=None, help="Time zone of the cron line (default UTC).")
@click.option("--name", default=None, help="The schedule's name (default: AGENT-N).")
@click.argument("words", nargs=-1, required=True)
def add(team: str | None, tz: str | None, name: str | None, words: tuple[str, ...]) -> None:
    """Add a schedule: WHEN @AGENT #CHANNEL PROMPT.

    WHEN is a quoted cron line ("0 9 * * 1-5": 09:00 Monday to Friday) or `every 30m`.
    Quote '#CHANNEL': in a shell, # starts a comment.
    """
    flags = [*(("--tz", tz) if tz else ()), *(("--name", name) if name else ())]
    _run(team, ["add", *words, *flags])


@schedule.command("remove")
@_team_option
@click.argument("name")
def remove(team: str | None, name: str) -> None:
    """Delete the schedule NAME (made in chat or here; team.yaml's go with the file)."""
    _run(team, ["remove", name])


@schedule.command("pause")
@_team_option
@click.argument("name")
def pause(team: str | None, name: str) -> None:
    """Stop firing the schedule NAME until it is resumed."""
    _run(team, ["pause", name])


@schedule.command("resume")
@_team_option
@click.argument("name")
def resume(team: str | None, name: str) -> None:
    """Fire the schedule NAME again, from its next fire time on."""
    _run(team, ["resume", name])


@schedule.command("run")
@_team_option
@click.argument("name")
def run(team: str | None, name: str) -> None:
    """Fire the schedule NAME now, here; its posts are shown in the terminal."""
    _run(team, ["run", name])


def _run(team: str | None, words: list[str]) -> None:
    """Run ``/corral schedule WORDS`` as the local operator and print the reply."""
    import getpass

    from rich.console import Console

    # Imported when run, not when this module is: bot.cli adds this group to itself.
    from corral.bot.cli import _with_core
    from corral.bot.commands.registry import dispatch
    from corral.bot.console import print_command_reply
    from corral.bot.scheduling.reconcile import reconcile

    out = Console(highlight=False)

    async def body(core: Core) -> None:
        await reconcile(core.team, core.storage)
        ctx = core.command_context(getpass.getuser(), "console", scheduler=_HereAndNow(core, out))
        # Quoted so that the words survive the command line's split on spaces.
        reply = await dispatch(ctx, "/corral schedule " + shlex.join(words))
        print_command_reply(out, reply.text)

    _with_core(team, body)


class _HereAndNow:
    """Runs a fire in this process and waits for it; its posts go to the terminal."""

    def __init__(self, core: Core, out: Console) -> None:
        from corral.bot.console import PLATFORM, ConsoleAdapter

        self.runner = core.fire_runner({PLATFORM: ConsoleAdapter(core, out)})

    async def run_now(self, name: str, by: str) -> FireRecord:
        """Fire ``name`` and return its final record."""
        _, run = await self.runner.begin_manual(name, by)
        return await run

    async def changed(self) -> None:
        """Nothing runs here to be told: a running ``corral run`` syncs by itself."""
