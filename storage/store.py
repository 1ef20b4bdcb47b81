"""Storage: every store over one database, opened and closed together, and the few
writes that span stores, each in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from corral.storage.approvals import ApprovalStore
from corral.storage.audit import AuditLog
from corral.storage.db import Database
from corral.storage.inbox import InboxRecord, InboxStore
from corral.storage.memory import MemoryStore, SqlMemoryStore
from corral.storage.runs import RunStore
from corral.storage.schedules import ScheduleStore
from corral.storage.tasks import TaskStore
from corral.storage.threads import ThreadStore
from corral.storage.transcript import Line, TranscriptEntry, TranscriptStore


@dataclass(frozen=True)
class RunStart:
    """Where a run begins: what the run records, and which thread it reads."""

    agent: str
    route_reason: str
    platform: str
    channel: str
    thread: str
    inbox_id: str | None = None


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, what it used, and the inbox message it finished."""

    run_id: str
    platform: str
    channel: str
    thread: str
    outcome: str
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    error: str = ""
    #: The inbox message to mark ``done`` with the run: the last run of its turn.
    inbox_done: str | None = None


class Storage:
    """The inbox, transcript, threads, runs, memory, approvals, tasks, schedules and audit
    of one database."""

    def __init__(self, db: Database, *, semantic: bool = False) -> None:
        """``semantic``: memory search by meaning too (``CORRAL_EMBEDDINGS``); raises
        ``EmbeddingsUnavailable`` when that cannot run."""
        self.db = db
        self.inbox = InboxStore(db)
        self.threads = ThreadStore(db)
        self.transcript = TranscriptStore(db, self.threads)
        self.runs = RunStore(db)
        self.memory: MemoryStore = SqlMemoryStore(db, semantic=semantic)
        self.approvals = ApprovalStore(db)
        self.tasks = TaskStore(db)
        self.audit = AuditLog(db)
        self.schedules = ScheduleStore(db)

    @classmethod
    async def open(cls, url: str, *, migrate: bool = True, semantic: bool = False) -> Storage:
        """Connect to ``url`` and, when ``migrate``, bring the schema up to date;
        ``semantic`` as for the constructor."""
        db = Database(url)
        try:
            if migrate:
                await db.upgrade()
            return cls(db, semantic=semantic)
        except BaseException:
            await db.dispose()
            raise

    async def claim(
        self,
        inbox_id: str,
        first_line: Callable[[InboxRecord], Line | None],
        *,
        first_in_thread: Collection[str] | None = None,
    ) -> InboxRecord | None:
        """Take a pending message (:meth:`InboxStore.claim`, with ``first_in_thread``
        as there) and, in the same transaction, add ``first_line(record)`` to its
        thread's history unless that is None."""
        async with self.db.transaction() as connection:
            record = await self.inbox.claim(
                inbox_id, first_in_thread=first_in_thread, on=connection
            )
            line = first_line(record) if record is not None else None
            if record is not None and line is not None:
                await self.transcript.append_lines(
                    record.platform, record.channel, record.thread, [line], on=connection
                )
        return record

    async def start_run(self, start: RunStart, history: int) -> tuple[str, list[TranscriptEntry]]:
        """Record a run that begins now and read the last ``history`` messages of its
        thread, in one transaction; returns the run's id and the messages."""
        async with self.db.transaction() as connection:
            run_id = await self.runs.start(
                agent=start.agent,
                route_reason=start.route_reason,
                platform=start.platform,
                channel=start.channel,
                thread=start.thread,
                inbox_id=start.inbox_id,
                on=connection,
            )
            entries = await self.transcript.history(
                start.platform, start.channel, start.thread, history, on=connection
            )
        return run_id, entries

    async def end_run(self, end: RunEnd) -> None:
        """Record how a run ended and the inbox message it finished, in one transaction:
        both, or neither."""
        async with self.db.transaction() as connection:
            await self.runs.finish(
                end.run_id,
                outcome=end.outcome,
                model=end.model,
                tokens_in=end.tokens_in,
                tokens_out=end.tokens_out,
                latency_ms=end.latency_ms,
                error=end.error,
                on=connection,
            )
            if end.inbox_done is not None:
                await self.inbox.finish(end.inbox_done, "done", on=connection)

    async def close(self) -> None:
        """Close the database's connections."""
        await self.db.dispose()
