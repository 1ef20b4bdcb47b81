"""Storage: every store over one database, opened and closed together, and the few
writes that span stores, each in one transaction."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.approvals import ApprovalKind, ApprovalRecord, ApprovalStatus, ApprovalStore
from corral.storage.audit import AuditLog, Where
from corral.storage.db import Database
from corral.storage.inbox import InboxRecord, InboxStore, NewWork
from corral.storage.keys import ThreadKey
from corral.storage.memory import MemoryStore, SqlMemoryStore
from corral.storage.posts import PostLedger
from corral.storage.runs import RunOutcome, RunStore
from corral.storage.schedules import ScheduleStore
from corral.storage.spend import TEAM, CallRecord, SpendStore
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
    """How a run ended and what it used."""

    run_id: str
    platform: str
    channel: str
    thread: str
    outcome: RunOutcome
    model: str = ""
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: int = 0
    error: str = ""
    #: What the run's model calls cost in US dollars; None: unknown (a model without a
    #: known price).
    cost_usd: float | None = None
    cache_read: int = 0
    cache_write: int = 0
    #: Why the run used the model it did, when ``model: auto`` or a fire chose it.
    model_choice: str = ""
    #: Model calls of the run not written yet (agents without a budget), each with the
    #: day it counts on: written with the run's end, in the same transaction.
    calls: tuple[tuple[str, CallRecord], ...] = ()


class Storage:
    """The inbox, post ledger, transcript, threads, runs, memory, approvals, tasks,
    schedules, audit and spend of one database."""

    def __init__(self, db: Database, *, semantic: bool = False) -> None:
        """``semantic``: memory search by meaning too (``CORRAL_EMBEDDINGS``); raises
        ``EmbeddingsUnavailable`` when that cannot run."""
        self.db = db
        self.inbox = InboxStore(db)
        self.posts = PostLedger(db)
        self.threads = ThreadStore(db)
        self.transcript = TranscriptStore(db, self.threads)
        self.runs = RunStore(db)
        self.memory: MemoryStore = SqlMemoryStore(db, semantic=semantic)
        self.approvals = ApprovalStore(db)
        self.tasks = TaskStore(db)
        self.audit = AuditLog(db)
        self.schedules = ScheduleStore(db)
        self.spend = SpendStore(db)

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
                await self.transcript.append_lines(record.key, [line], on=connection)
        return record

    async def decide(
        self,
        approval_id: str,
        *,
        status: ApprovalStatus,
        by: str,
        kind: ApprovalKind,
    ) -> ApprovalRecord | None:
        """Decide the approval ``approval_id`` of ``kind`` (:meth:`ApprovalStore.decide`)
        and store what follows, in one transaction: for a tool call a ``decision`` work
        item (the paused run continues), for an escalation a ``resolve`` (the thread is
        told); a budget approved is raised by its step for its day. None, and nothing
        changes, when nothing waits for it."""
        async with self.db.transaction() as connection:
            record = await self.approvals.decide(
                approval_id, status=status, by=by, kind=kind, on=connection
            )
            if record is None:
                return None
            if kind == "budget":
                if status == "approved":
                    await self._raise_budget(record, by, connection)
                return record
            await self.inbox.add_work(
                NewWork(
                    kind="decision" if kind == "tool" else "resolve",
                    ref=approval_id,
                    platform=record.platform,
                    channel=record.channel,
                    thread=record.thread,
                    user=by,
                    payload={"approval_id": approval_id, "status": status, "by": by},
                ),
                on=connection,
            )
        return record

    async def _raise_budget(
        self, record: ApprovalRecord, by: str, connection: AsyncConnection
    ) -> None:
        """Raise the budget an approved request asked for, and audit it, in
        ``connection``'s transaction."""
        state = record.state
        day, scope, step = str(state["day"]), str(state["scope"]), float(state["step"])
        await self.spend.raise_cap(day, scope, step, on=connection)
        await self.audit.record(
            by,
            "budget.raise",
            scope,
            f"+{step:g} USD on {day} (approval {record.id})",
            agent="" if scope == TEAM else scope,
            where=Where(record.platform, record.channel, record.thread),
            outcome="ok",
            on=connection,
        )

    async def unfinished(
        self, stale_after: float = 30.0, platforms: Collection[str] | None = None
    ) -> list[str]:
        """:meth:`InboxStore.unfinished`, and the runs of the items whose worker died
        closed as ``interrupted`` (their items are handled again), in one transaction."""
        async with self.db.transaction() as connection:
            stale = await self.inbox.requeue_stale(stale_after, platforms, on=connection)
            await self.runs.interrupt(stale, on=connection)
            return await self.inbox.pending(platforms, on=connection)

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
                ThreadKey(start.platform, start.channel, start.thread), history, on=connection
            )
        return run_id, entries

    async def end_run(self, end: RunEnd, *, closing: str | None = None) -> None:
        """Record how a run ended; with ``closing``, close that work item as ``done`` in
        the same write (a worker's item whose last run this was)."""
        async with self.db.transaction() as connection:
            await self.runs.finish(
                end.run_id,
                outcome=end.outcome,
                model=end.model,
                tokens_in=end.tokens_in,
                tokens_out=end.tokens_out,
                latency_ms=end.latency_ms,
                error=end.error,
                cost_usd=end.cost_usd,
                cache_read=end.cache_read,
                cache_write=end.cache_write,
                model_choice=end.model_choice,
                on=connection,
            )
            await self.spend.record(end.calls, on=connection)
            if closing is not None:
                await self.inbox.finish(closing, "done", on=connection)

    async def close(self) -> None:
        """Close the database's connections."""
        await self.db.dispose()
