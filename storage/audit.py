"""The audit log: who did what, where, for which agent, and how it ended."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from corral.storage.db import Database, utc
from corral.storage.tables import AuditRow, utcnow


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
        actor=actor[:200],
        action=action[:64],
        subject=subject[:200],
        detail=detail,
        agent=agent[:64],
        platform=where.platform[:32],
        channel=where.channel[:200],
        thread=where.thread[:200],
        outcome=outcome[:32],
        created_at=utcnow(),
    )


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
    ) -> None:
        """Record that ``actor`` did ``action`` (dotted, e.g. ``memory.forget``) to
        ``subject``, for ``agent``, ``where``, ending in ``outcome``."""
        row = audit_row(actor, action, subject, detail, agent=agent, where=where, outcome=outcome)
        async with self.db.session() as session, session.begin():
            session.add(row)

    async def recent(self, limit: int = 50) -> list[AuditEntry]:
        """The last ``limit`` entries, newest first."""
        statement = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        async with self.db.session() as session:
            rows = (await session.scalars(statement)).all()
        return [
            AuditEntry(
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
            for row in rows
        ]
