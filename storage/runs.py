"""The record of agent runs: who ran, why, on which model, at what cost, with what outcome."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

from sqlalchemy import bindparam, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database, utc
from corral.storage.ids import new_id
from corral.storage.tables import RunRow, utcnow

#: How a run stands or ended: ``running`` until it finishes; then ``ok`` (it answered),
#: ``handoff`` (it passed the work on), ``waiting`` (for a human's approval),
#: ``escalated``, ``failed``, ``no_model``, ``over_budget`` (a daily budget is spent) or
#: ``interrupted`` (Corral stopped during it).
RunOutcome = Literal[
    "running",
    "ok",
    "handoff",
    "waiting",
    "escalated",
    "failed",
    "no_model",
    "over_budget",
    "interrupted",
]


@dataclass(frozen=True)
class RunRecord:
    """One agent turn. ``outcome`` is ``running`` until the run finishes."""

    id: str
    inbox_id: str | None
    agent: str
    route_reason: str
    platform: str
    channel: str
    thread: str
    model: str
    tokens_in: int
    tokens_out: int
    latency_ms: int
    outcome: RunOutcome
    error: str
    started_at: datetime
    finished_at: datetime | None
    #: In USD; None when a model's price is unknown.
    cost_usd: float | None = None
    cache_read: int = 0
    cache_write: int = 0
    #: How the model was picked (``model: auto``) and why; empty otherwise.
    model_choice: str = ""


@dataclass(frozen=True)
class AgentStats:
    """One agent's runs over a period."""

    runs: int
    failures: int
    running: int
    tokens_in: int
    tokens_out: int


def _record(row: RunRow) -> RunRecord:
    return RunRecord(
        id=row.id,
        inbox_id=row.inbox_id,
        agent=row.agent,
        route_reason=row.route_reason,
        platform=row.platform,
        channel=row.channel,
        thread=row.thread,
        model=row.model,
        tokens_in=row.tokens_in,
        tokens_out=row.tokens_out,
        latency_ms=row.latency_ms,
        # The column is a plain string; only this module's writes fill it.
        outcome=cast(RunOutcome, row.outcome),
        error=row.error,
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at) if row.finished_at else None,
        cost_usd=row.cost_usd,
        cache_read=row.tokens_cache_read,
        cache_write=row.tokens_cache_write,
        model_choice=row.model_choice,
    )


_START = insert(RunRow)
# Built once with bound parameters: it runs for every run.
_FINISH = (
    update(RunRow)
    .where(RunRow.id == bindparam("run_id"))
    .values(
        {
            # Not named like the columns: SQLAlchemy keeps those names for itself.
            column: bindparam(f"new_{column}")
            for column in (
                "outcome",
                "model",
                "tokens_in",
                "tokens_out",
                "latency_ms",
                "error",
                "finished_at",
                "cost_usd",
                "tokens_cache_read",
                "tokens_cache_write",
                "model_choice",
            )
        }
    )
)


class RunStore:
    """Records runs as they start and finish, and sums them up per agent."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def start(
        self,
        *,
        agent: str,
        route_reason: str,
        platform: str,
        channel: str,
        thread: str,
        inbox_id: str | None = None,
        run_id: str | None = None,
        on: AsyncConnection | None = None,
    ) -> str:
        """Record a run that begins now and return its id (``r-…`` unless given); with
        ``on``, in that connection's transaction."""
        run_id = run_id or new_id("r")
        params = {
            "id": run_id,
            "inbox_id": inbox_id,
            "agent": agent,
            "route_reason": route_reason,
            "platform": platform,
            "channel": channel,
            "thread": thread,
            "model": "",
            "tokens_in": 0,
            "tokens_out": 0,
            "latency_ms": 0,
            "cost_usd": None,
            "tokens_cache_read": 0,
            "tokens_cache_write": 0,
            "model_choice": "",
            "outcome": "running",
            "error": "",
            "started_at": utcnow(),
        }
        async with self.db.transaction(on) as connection:
            await connection.execute(_START, params)
        return run_id

    async def finish(
        self,
        run_id: str,
        *,
        outcome: RunOutcome,
        model: str = "",
        tokens_in: int = 0,
        tokens_out: int = 0,
        latency_ms: int = 0,
        error: str = "",
        cost_usd: float | None = None,
        cache_read: int = 0,
        cache_write: int = 0,
        model_choice: str = "",
        on: AsyncConnection | None = None,
    ) -> None:
        """Record how the run ended and what it used (``cost_usd`` None: unknown, a
        model's price is); with ``on``, in that connection's transaction."""
        params = {
            "run_id": run_id,
            "new_outcome": outcome,
            "new_model": model,
            "new_tokens_in": tokens_in,
            "new_tokens_out": tokens_out,
            "new_latency_ms": latency_ms,
            "new_error": error,
            "new_finished_at": utcnow(),
            "new_cost_usd": cost_usd,
            "new_tokens_cache_read": cache_read,
            "new_tokens_cache_write": cache_write,
            "new_model_choice": model_choice,
        }
        async with self.db.transaction(on) as connection:
            await connection.execute(_FINISH, params)

    async def interrupt(
        self, inbox_ids: Collection[str], *, on: AsyncConnection | None = None
    ) -> None:
        """Close the runs still ``running`` for the work items ``inbox_ids`` as
        ``interrupted``: their process died (the sweep found the items stale). With
        ``on``, in that connection's transaction."""
        if not inbox_ids:
            return
        statement = (
            update(RunRow)
            .where(RunRow.inbox_id.in_(list(inbox_ids)), RunRow.outcome == "running")
            .values(
                outcome="interrupted",
                error="Corral stopped during this run; its work is taken up again",
                finished_at=utcnow(),
            )
        )
        async with self.db.transaction(on) as connection:
            await connection.execute(statement)

    async def reopen(self, run_id: str, inbox_id: str) -> None:
        """A paused run continues for the work item ``inbox_id`` (a decision on its
        approval): it is ``running`` again, on that item's account."""
        statement = (
            update(RunRow)
            .where(RunRow.id == run_id)
            .values(outcome="running", inbox_id=inbox_id, finished_at=None)
        )
        async with self.db.transaction() as connection:
            await connection.execute(statement)

    async def get(self, run_id: str) -> RunRecord | None:
        """The run ``run_id``, if recorded."""
        async with self.db.session() as session:
            row = await session.get(RunRow, run_id)
            return _record(row) if row else None

    async def recent(self, limit: int = 20) -> list[RunRecord]:
        """The last ``limit`` runs, newest first."""
        statement = select(RunRow).order_by(RunRow.started_at.desc(), RunRow.id).limit(limit)
        async with self.db.session() as session:
            return [_record(row) for row in (await session.scalars(statement)).all()]

    async def stats_since(self, since: datetime) -> dict[str, AgentStats]:
        """Per agent, the runs started at or after ``since`` (naive means UTC)."""
        statement = (
            select(
                RunRow.agent,
                func.count(),
                func.sum(case((RunRow.outcome == "failed", 1), else_=0)),
                func.sum(case((RunRow.outcome == "running", 1), else_=0)),
                func.sum(RunRow.tokens_in),
                func.sum(RunRow.tokens_out),
            )
            .where(RunRow.started_at >= utc(since))
            .group_by(RunRow.agent)
        )
        async with self.db.session() as session:
            rows = (await session.execute(statement)).all()
        return {
            agent: AgentStats(
                runs=runs,
                failures=int(failures),
                running=int(running),
                tokens_in=int(tokens_in),
                tokens_out=int(tokens_out),
            )
            for agent, runs, failures, running, tokens_in, tokens_out in rows
        }
