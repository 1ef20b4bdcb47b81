"""``/corral schedule …``: the team's scheduled tasks — list, add, remove, pause, resume,
and run one now.

The scheduling modules are imported where they are used: the CLI loads this table on
every start (``corral --help`` included).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, tzinfo
from typing import TYPE_CHECKING, Protocol

from corral.bot.commands.permissions import refuse
from corral.bot.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandReply,
    Group,
    UsageError,
    Values,
)

if TYPE_CHECKING:
    from corral.storage.schedules import FireRecord, ScheduleRecord, ScheduleSpec, Source

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
#: A channel as Slack writes it in a command's text: <#C0123|general>.
_SLACK_CHANNEL_RE = re.compile(r"^<#([A-Z0-9]+)(?:\|[^>]*)?>$")
#: How a fire that was asked for by hand ends when it did not do its work.
_FAILED = ("failed", "interrupted", "skipped", "missed")


def _add_usage(ctx: CommandContext) -> str:
    add = ctx.command('/corral schedule add "0 9 * * 1-5" @agent #channel What to do')
    return (
        f"`{add}` (or `every 30m` instead of the cron line; `--tz Europe/Berlin` for the "
        "cron's time zone, `--name NAME` to name it)"
    )


def utcnow() -> datetime:
    """Now, in UTC, as the schedules' records keep their times."""
    return datetime.now(UTC)


class ScheduleControl(Protocol):
    """What the commands need from the scheduler of the process they run in."""

    async def run_now(self, name: str, by: str) -> FireRecord:
        """Fire ``name`` now; its record (``running`` while it still runs).
        Raises :class:`~bot.scheduling.runner.FireError` when it cannot start."""
        ...

    async def changed(self) -> None:
        """Schedules were added, removed, paused or resumed: take it into account."""
        ...


async def list_(ctx: CommandContext, values: Values) -> CommandReply:
    """Every schedule: source, agent, channel, next fire, last fire and how it ended."""
    records = await ctx.storage.schedules.all()
    if not records:
        return CommandReply(
            "No schedules yet. Declare them under `schedules:` in team.yaml, or add one: "
            + _add_usage(ctx)
        )
    latest = await ctx.storage.schedules.latest_fires()
    now = utcnow()
    lines = ["*Schedules*"]
    lines += [_line(record, latest.get(record.name), now) for record in records]
    return CommandReply("\n".join(lines))


async def add(ctx: CommandContext, values: Values) -> CommandReply:
    """Create a schedule (admins): it is stored, and survives restarts."""
    from corral.agents.cron import split_timing, zone
    from corral.storage.schedules import ScheduleSpec

    if not ctx.is_admin:
        return await refuse(ctx, "/corral schedule add", "add schedules")
    agent = values.text("agent").lower()
    if agent not in ctx.team.agents:
        raise UsageError(f"There is no agent `@{agent}`; the team: {_handles(ctx)}")
    name = values.text("name").lower() or None
    if name is not None and not _NAME_RE.fullmatch(name):
        raise UsageError(
            f"`{name}` is not a valid name: use lowercase letters, digits, `-` and `_`"
        )
    try:
        cron, every = split_timing(values.text("when"))
        timezone = values.text("tz") or "UTC"
        zone(timezone)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    # The console and the CLI post on the platform of whichever process runs the schedule.
    platform = "" if ctx.platform == "console" else ctx.platform
    written = values.text("channel")
    channel = _channel(written)
    await _allowed_in(ctx, agent, channel, written)
    spec = ScheduleSpec(agent, channel, values.text("prompt"), cron, every, timezone, platform)
    source: Source = "shell" if ctx.shell else "chat"
    record = await ctx.storage.schedules.add(
        spec, source=source, created_by=ctx.user, name=name, where=ctx.where
    )
    if record is None:
        return CommandReply(
            f"There is already a schedule `{name}`; choose another `--name`.", ok=False
        )
    await _changed(ctx)
    return CommandReply(
        f"Added `{record.name}`: @{agent} in {channel}, {_timing(spec)} — next "
        f"{_next(record, utcnow())}.",
        ephemeral=False,
    )


async def remove(ctx: CommandContext, values: Values) -> CommandReply:
    """Delete a schedule made in chat, and its record (admins)."""
    if not ctx.is_admin:
        return await refuse(ctx, "/corral schedule remove", "remove schedules")
    record = await _named(ctx, values)
    if record.source == "team.yaml":
        return CommandReply(
            f"`{record.name}` comes from team.yaml: delete it there (it goes when Corral "
            f"next starts), or pause it with "
            f"`{ctx.command('/corral schedule pause ' + record.name)}`.",
            ok=False,
        )
    await ctx.storage.schedules.remove(record.name, by=ctx.user, where=ctx.where)
    await _changed(ctx)
    return CommandReply(f"Removed `{record.name}`.", ephemeral=False)


async def pause(ctx: CommandContext, values: Values) -> CommandReply:
    """Stop firing a schedule until it is resumed (admins); its fire times meanwhile are
    not due."""
    if not ctx.is_admin:
        return await refuse(ctx, "/corral schedule pause", "pause schedules")
    record = await _named(ctx, values)
    if record.paused:
        return CommandReply(f"`{record.name}` is paused already.")
    await ctx.storage.schedules.set_paused(record.name, True, by=ctx.user, where=ctx.where)
    await _changed(ctx)
    return CommandReply(
        f"Paused `{record.name}`; `{ctx.command('/corral schedule resume ' + record.name)}` "
        "starts it again.",
        ephemeral=False,
    )


async def resume(ctx: CommandContext, values: Values) -> CommandReply:
    """Fire a paused schedule again, from its next fire time on (admins)."""
    if not ctx.is_admin:
        return await refuse(ctx, "/corral schedule resume", "resume schedules")
    record = await _named(ctx, values)
    if not record.paused:
        return CommandReply(f"`{record.name}` is not paused.")
    resumed = await ctx.storage.schedules.set_paused(
        record.name, False, by=ctx.user, where=ctx.where
    )
    await _changed(ctx)
    return CommandReply(
        f"Resumed `{record.name}` — next {_next(resumed or record, utcnow())}.", ephemeral=False
    )


async def run(ctx: CommandContext, values: Values) -> CommandReply:
    """Fire a schedule now, whatever its timing (paused ones too): an admin, or whoever
    made it."""
    record = await _named(ctx, values)
    if not ctx.is_admin and record.created_by != ctx.user:
        return await refuse(
            ctx,
            "/corral schedule run",
            f"run `{record.name}`, which someone else made",
            f"/corral schedule run {record.name}",
        )
    if ctx.scheduler is None:
        return CommandReply(
            f"No scheduler runs here; run it from a shell: `corral schedule run {record.name}`.",
            ok=False,
        )
    from corral.bot.scheduling.runner import FireError

    try:
        fire = await ctx.scheduler.run_now(record.name, ctx.user)
    except FireError as exc:
        return CommandReply(f"{exc}.", ok=False)
    if fire.outcome == "running":
        return CommandReply(
            f"Running `{record.name}` now: @{record.spec.agent} posts in "
            f"{record.spec.channel} (fire {fire.id}).",
            ephemeral=False,
        )
    return CommandReply(
        f"`{record.name}` ran: {_outcome(fire, _zone_of(record))}.",
        ok=fire.outcome not in _FAILED,
    )


async def _allowed_in(ctx: CommandContext, agent: str, channel: str, written: str) -> None:
    """Refuse (and audit) a schedule in a channel outside the agent's
    ``allowed_channels``."""
    config = ctx.team.agents[agent]
    if config.allowed_channels is None:
        return
    names = [channel]
    # Slack writes the channel's name in the link too: <#C0123|sales>.
    link = re.fullmatch(r"<#[A-Z0-9]+\|([^>]+)>", written)
    if link:
        names.append(link.group(1))
    if ctx.channel_aliases is not None:
        names += await ctx.channel_aliases(ctx.platform, channel)
    if not config.may_answer_in(*names):
        from corral.agents.permissions import REFUSED
        from corral.storage.audit import Where

        await ctx.storage.audit.record(
            ctx.user,
            REFUSED,
            f"schedule {channel}",
            f"{agent} may not post in {channel}",
            agent=agent,
            where=Where(ctx.platform, ctx.channel),
            outcome="refused",
        )
        raise UsageError(
            f"@{agent} may not post in {channel}; it may post only in "
            f"{', '.join(config.allowed_channels)} (`allowed_channels` in team.yaml)"
        )


def _channel(word: str) -> str:
    match = _SLACK_CHANNEL_RE.fullmatch(word)
    return match.group(1) if match else word


async def _named(ctx: CommandContext, values: Values) -> ScheduleRecord:
    """The schedule named by ``values``."""
    name = values.text("name")
    record = await ctx.storage.schedules.get(name.lower())
    if record is None:
        raise UsageError(
            f"There is no schedule `{name}` (see `{ctx.command('/corral schedule list')}`)"
        )
    return record


async def _changed(ctx: CommandContext) -> None:
    if ctx.scheduler is not None:
        await ctx.scheduler.changed()


def _handles(ctx: CommandContext) -> str:
    return ", ".join(f"@{h}" for h in ctx.team.agents)


def _line(record: ScheduleRecord, fire: FireRecord | None, now: datetime) -> str:
    spec = record.spec
    source = (
        "team.yaml" if record.source == "team.yaml" else f"{record.source}, by {record.created_by}"
    )
    last = "never fired" if fire is None else f"last {_outcome(fire, _zone_of(record))}"
    return (
        f"• `{record.name}` ({source}): @{spec.agent} in {spec.channel}, {_timing(spec)} — "
        f"next {_next(record, now)}; {last}"
    )


def _timing(spec: ScheduleSpec) -> str:
    when = f"`{spec.cron}`" if spec.cron else f"every {spec.every}"
    return f"{when} ({spec.timezone})"


def _next(record: ScheduleRecord, now: datetime) -> str:
    from corral.agents.cron import first_after
    from corral.bot.scheduling.plan import trigger_of

    if record.paused:
        return "none: paused"
    try:
        upcoming = first_after(trigger_of(record.spec), now)
    except ValueError as exc:
        return f"none: {exc}"
    return _when(upcoming, _zone_of(record)) if upcoming else "none: the cron line matches no date"


def _outcome(fire: FireRecord, where: tzinfo) -> str:
    from corral.bot.scheduling.plan import COUNT_CAP

    if fire.count > 1:
        many = f"{fire.count}+" if fire.count >= COUNT_CAP else str(fire.count)
        when = f"{many} fires from {_when(fire.first_slot, where)} to {_when(fire.slot, where)}"
    else:
        when = _when(fire.slot, where)
    if fire.kind == "manual":
        when += " (run by hand)"
    text = f"{when}: {fire.outcome}"
    if fire.reason:
        text += f" — {fire.reason}"
    if fire.run_id:
        text += f" (run {fire.run_id})"
    return text


def _zone_of(record: ScheduleRecord) -> tzinfo:
    from corral.agents.cron import zone

    try:
        return zone(record.spec.timezone)
    except ValueError:
        return zone("UTC")


def _when(moment: datetime, where: tzinfo) -> str:
    local = moment.astimezone(where)
    year = "" if local.year == utcnow().year else f" {local.year}"
    clock = f"{local:%H:%M:%S}" if local.second else f"{local:%H:%M}"
    return f"{local:%a %d %b}{year} {clock} {local:%Z}"


_WHAT = "Say when, which agent, where and what"
_NAME = Arg("name", help="The schedule's name", hint="Name the schedule")

GROUPS = [Group(("corral", "schedule"), "Scheduled tasks: list, add, remove, pause, resume, run")]

COMMANDS = [
    Command(
        ("corral", "schedule", "list"),
        "every schedule, its next fire and how the last ended",
        list_,
    ),
    Command(
        ("corral", "schedule", "add"),
        "a new schedule (admins)",
        add,
        (
            Arg("when", "text", 'A cron line ("0 9 * * 1-5") or "every 30m"', hint=_WHAT),
            Arg("agent", metavar="@AGENT", prefix="@", help="The agent that does it", hint=_WHAT),
            Arg("channel", metavar="#CHANNEL", help="Where it posts", hint=_WHAT),
            Arg("prompt", "text", "What the agent is asked", hint=_WHAT),
            Arg("tz", flag=True, metavar="ZONE", help="The cron line's time zone (default UTC)"),
            Arg("name", flag=True, help="Its name (default: the agent's, numbered)"),
        ),
    ),
    Command(("corral", "schedule", "remove"), "delete one made in chat (admins)", remove, (_NAME,)),
    Command(("corral", "schedule", "pause"), "stop one until resumed (admins)", pause, (_NAME,)),
    Command(("corral", "schedule", "resume"), "fire a paused one again (admins)", resume, (_NAME,)),
    Command(("corral", "schedule", "run"), "fire one now", run, (_NAME,)),
]
