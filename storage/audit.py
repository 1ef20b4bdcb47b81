"""The audit log: who did what, where, for which agent, and how it ended.

It is append-only: rows are added, never changed or deleted, and the database refuses
UPDATE, DELETE and TRUNCATE on it (triggers of migration 0015)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database, utc
from corral.storage.tables import AuditRow, utcnow

#: Rows read per query when every matching row is read (an export): the log may hold
#: millions, and a page at a time keeps memory flat.
PAGE = 500


@dataclass(frozen=True)
class Where:
    """Where an audited action happened: a platform, channel and thread (any may be
    empty: a command run from a shell happened nowhere in a chat)."""

    platform: str = ""
    channel: str = ""
    thread: str = ""


NOWHERE = Where()


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action: ``actor`` did ``action`` to ``subject``."""

    id: int
    actor: str
    action: str
    subject: str
    detail: str
    created_at: datetime
    agent: str = ""
    where: Where = NOWHERE
    outcome: str = ""


def audit_values(
    actor: str,
    action: str,
    subject: str = "",
    detail: str = "",
    *,
    agent: str = "",
    where: Where = NOWHERE,
    outcome: str = "",
) -> dict[str, Any]:
    """An audit row's columns, for a Core ``insert(AuditRow)`` (each string column fits
    its value to its size: :mod:`corral.storage.storable`)."""
    return {
        "actor": actor,
        "action": action,
        "subject": subject,
        "detail": detail,
        "agent": agent,
        "platform": where.platform,
        "channel": where.channel,
        "thread": where.thread,
        "outcome": outcome,
        "created_at": utcnow(),
    }


def audit_row(
    actor: str,
    action: str,
    subject: str = "",
    detail: str = "",
    *,
    agent: str = "",
    where: Where = NOWHERE,
    outcome: str = "",
) -> AuditRow:
    """An audit row to add to a session, so that the record commits with the change."""
    return AuditRow(
        **audit_values(actor, action, subject, detail, agent=agent, where=where, outcome=outcome)
    )


def _entry(row: AuditRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        actor=row.actor,
        action=row.action,
        subject=row.subject,
        detail=row.detail,
        created_at=utc(row.created_at),
        agent=row.agent,
        where=Where(row.platform, row.channel, row.thread),
        outcome=row.outcome,
    )


def _matching(agent: str, since: datetime | None, action_prefix: str) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if agent:
        conditions.append(AuditRow.agent == agent)
    if since is not None:
        conditions.append(AuditRow.created_at >= since)
    if action_prefix:
        # Escaped: an action prefix is a literal, and "_" is a LIKE wildcard.
        conditions.append(AuditRow.action.startswith(action_prefix, autoescape=True))
    return conditions


class AuditLog:
    """Writes and reads the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(
        self,
        actor: str,
        action: str,
        subject: str = "",
        detail: str = "",
        *,
        agent: str = "",
        where: Where = NOWHERE,
        outcome: str = "",
        on: AsyncConnection | None = None,
    ) -> None:
        """Record that ``actor`` did ``action`` (dotted, e.g. ``memory.forget``) to
        ``subject``, for ``agent``, ``where``, ending in ``outcome``; with ``on``, in that
        connection's transaction (with the change it records)."""
        values = audit_values(
            actor, action, subject, detail, agent=agent, where=where, outcome=outcome
        )
        async with self.db.transaction(on) as connection:
            await connection.execute(insert(AuditRow).values(**values))

    async def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The last ``limit`` entries, newest first."""
        return await self.query(limit=limit)

    async def query(
        self,
        *,
        agent: str = "",
        since: datetime | None = None,
        action_prefix: str = "",
        before_id: int | None = None,
        limit: int = 50,
    ) -> list[AuditEntry]:
        """Up to ``limit`` entries, newest first: for ``agent`` only, from ``since`` on,
        of actions starting with ``action_prefix`` (``memory.`` for every memory
        action), older than the entry ``before_id`` (the next page)."""
        conditions = _matching(agent, since, action_prefix)
        if before_id is not None:
            conditions.append(AuditRow.id < before_id)
        statement = select(AuditRow).where(*conditions).order_by(AuditRow.id.desc()).limit(limit)
        async with self.db.session() as session:
            return [_entry(row) for row in (await session.scalars(statement)).all()]

    async def count(
        self, *, agent: str = "", since: datetime | None = None, action_prefix: str = ""
    ) -> int:
        """How many entries :meth:`query` would find with these filters and no limit."""
        conditions = _matching(agent, since, action_prefix)
        statement = select(func.count()).select_from(AuditRow).where(*conditions)
        async with self.db.session() as session:
            return int(await session.scalar(statement) or 0)

    async def each(
        self,
        *,
        agent: str = "",
        since: datetime | None = None,
        action_prefix: str = "",
        page: int = PAGE,
    ) -> AsyncIterator[AuditEntry]:
        """Every matching entry, newest first, read ``page`` rows at a time."""
        before: int | None = None
        while True:
            found = await self.query(
                agent=agent, since=since, action_prefix=action_prefix, before_id=before, limit=page
            )
            for entry in found:
                yield entry
            if len(found) < page:
                return
            before = found[-1].id
