"""The audit log: who changed shared state, on a person's say."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select

from corral.storage.db import Database, utc
from corral.storage.tables import AuditRow, utcnow


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action: ``actor`` did ``action`` to ``subject``."""

    id: int
    actor: str
    action: str
    subject: str
    detail: str
    created_at: datetime


def audit_row(actor: str, action: str, subject: str = "", detail: str = "") -> AuditRow:
    """An audit row to add to a session, so that the record commits with the change."""
    return AuditRow(actor=actor, action=action, subject=subject, detail=detail, created_at=utcnow())


class AuditLog:
    """Writes and reads the audit log."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def record(self, actor: str, action: str, subject: str = "", detail: str = "") -> None:
        """Record that ``actor`` did ``action`` (dotted, e.g. ``memory.forget``)."""
        async with self.db.session() as session, session.begin():
            session.add(audit_row(actor, action, subject, detail))

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
            )
            for row in rows
        ]
