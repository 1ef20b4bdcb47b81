"""``/corral audit``: who did what, where, for which agent and how it ended — for
admins, newest first; and ``corral audit --json``, the export of every matching entry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from corral.bot.commands.permissions import refuse
from corral.bot.commands.registry import (
    Arg,
    Command,
    CommandContext,
    CommandReply,
    UsageError,
    Values,
    plural,
)

if TYPE_CHECKING:
    from corral.storage.audit import AuditEntry

#: The most entries a reply shows; it says how many more match.
SHOWN = 50
_HEADINGS = ("when", "who", "action", "subject", "agent", "where", "outcome")
#: The widest each column gets; longer values are cut. Where fits a platform, a channel
#: id and a Slack thread's timestamp.
_WIDEST = (16, 28, 24, 28, 20, 40, 12)


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to show: one agent's, since when, actions starting with what."""

    agent: str = ""
    since: datetime | None = None
    action_prefix: str = ""


def audit_filter(ctx: CommandContext, values: Values) -> AuditFilter:
    """The filter ``--agent``, ``--since`` (an age such as 2d, 12h or 30m) and
    ``--action`` ask for."""
    from corral.agents.team_loader import parse_every

    since = None
    if "since" in values:
        try:
            age = parse_every(values.text("since"))
        except ValueError as exc:
            raise UsageError(f"--since: {exc}") from None
        try:
            since = datetime.fromtimestamp(ctx.clock(), UTC) - age
        except OverflowError:
            since = None  # further back than any date: everything
    return AuditFilter(values.text("agent").lower(), since, values.text("action"))


def _cell(text: str, widest: int) -> str:
    # One line, no backtick: each row is shown as inline code.
    flat = " ".join(text.replace("`", "'").split()) or "-"
    return flat if len(flat) <= widest else flat[: widest - 1] + "…"


def _where(entry: AuditEntry) -> str:
    where = entry.where
    return " ".join(part for part in (where.platform, where.channel, where.thread) if part)


def _rows(ctx: CommandContext, entries: list[AuditEntry]) -> list[str]:
    cells = [
        (
            e.created_at.astimezone(ctx.timezone).strftime("%Y-%m-%d %H:%M"),
            e.actor,
            e.action,
            e.subject,
            e.agent,
            _where(e),
            e.outcome,
        )
        for e in entries
    ]
    table = [
        _HEADINGS,
        *(tuple(_cell(c, w) for c, w in zip(row, _WIDEST, strict=True)) for row in cells),
    ]
    widths = [max(len(row[n]) for row in table) for n in range(len(_HEADINGS))]
    return [
        "`" + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "`"
        for row in table
    ]


async def audit(ctx: CommandContext, values: Values) -> CommandReply:
    """The latest audit entries as a table (admins only; a refusal is audited too)."""
    if not ctx.is_admin:
        return await refuse(ctx, "/corral audit", "read the audit")
    chosen = audit_filter(ctx, values)
    log = ctx.storage.audit
    entries = await log.query(
        agent=chosen.agent, since=chosen.since, action_prefix=chosen.action_prefix, limit=SHOWN
    )
    if not entries:
        return CommandReply("No audit entries match.")
    total = len(entries)
    if total == SHOWN:
        total = await log.count(
            agent=chosen.agent, since=chosen.since, action_prefix=chosen.action_prefix
        )
    head = f"*Audit*, newest first: {plural(total, 'entry', 'entries')}"
    if total > len(entries):
        head += (
            f"; the latest {len(entries)} shown, {total - len(entries):,} more. Narrow it "
            "with --agent, --since or --action, or export all of it with `corral audit --json`"
        )
    return CommandReply("\n".join([head, *_rows(ctx, entries)]))


async def export_lines(ctx: CommandContext, values: Values) -> AsyncIterator[str]:
    """Every entry the filter in ``values`` matches, newest first, one JSON object a
    line, read from the database a page at a time."""
    chosen = audit_filter(ctx, values)
    async for e in ctx.storage.audit.each(
        agent=chosen.agent, since=chosen.since, action_prefix=chosen.action_prefix
    ):
        yield json.dumps(
            {
                "id": e.id,
                "at": e.created_at.isoformat(),
                "actor": e.actor,
                "action": e.action,
                "subject": e.subject,
                "detail": e.detail,
                "agent": e.agent,
                "platform": e.where.platform,
                "channel": e.where.channel,
                "thread": e.where.thread,
                "outcome": e.outcome,
            },
            ensure_ascii=False,
        )


AUDIT = Command(
    ("corral", "audit"),
    "who did what, where and how it ended (admins)",
    audit,
    (
        Arg("agent", flag=True, metavar="NAME", prefix="@", help="one agent's entries only"),
        Arg("since", flag=True, metavar="AGE", help="only the last AGE, e.g. 2d, 12h or 30m"),
        Arg("action", flag=True, metavar="PREFIX", help="actions starting with PREFIX, e.g. tool."),
    ),
)
