"""Storage: every store over one database, opened and closed together."""

from __future__ import annotations

from storage.approvals import ApprovalStore
from storage.audit import AuditLog
from storage.db import Database
from storage.inbox import InboxStore
from storage.memory import MemoryStore, SqlMemoryStore
from storage.runs import RunStore
from storage.schedules import ScheduleStore
from storage.tasks import TaskStore
from storage.threads import ThreadStore
from storage.transcript import TranscriptStore


class Storage:
    """The inbox, transcript, threads, runs, memory, approvals, tasks, schedules and audit
    of one database."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.inbox = InboxStore(db)
        self.transcript = TranscriptStore(db)
        self.threads = ThreadStore(db)
        self.runs = RunStore(db)
        self.memory: MemoryStore = SqlMemoryStore(db)
        self.approvals = ApprovalStore(db)
        self.tasks = TaskStore(db)
        self.audit = AuditLog(db)
        self.schedules = ScheduleStore(db)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True) -> Storage:
        """Connect to ``url`` and, when ``migrate``, bring the schema up to date."""
        db = Database(url)
        if migrate:
            try:
                await db.upgrade()
            except BaseException:
                await db.dispose()
                raise
        return cls(db)

    async def close(self) -> None:
        """Close the database's connections."""
        await self.db.dispose()
