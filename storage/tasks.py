"""The team's workspace: work one agent handed to another, and what became of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import select, update

from corral.storage.db import Database, utc
from corral.storage.search import WordIndex, query_words, search_terms
from corral.storage.tables import TaskRow, utcnow

#: How a task ended: answered, not finished, or passed on to yet another agent.
Outcome = Literal["done", "failed", "handed_off"]

_INDEX = WordIndex(TaskRow, TaskRow.id, "tasks")


@dataclass(frozen=True)
class TaskRecord:
    """A handed-off task. ``status`` is ``open`` until the receiving agent's run ends."""

    id: int
    from_agent: str
    to_agent: str
    task: str
    status: str
    result: str
    platform: str
    channel: str
    thread: str
    created_at: datetime
    updated_at: datetime


def _record(row: TaskRow) -> TaskRecord:
    return TaskRecord(
        id=row.id,
        from_agent=row.from_agent,
        to_agent=row.to_agent,
        task=row.task,
        status=row.status,
        result=row.result,
        platform=row.platform,
        channel=row.channel,
        thread=row.thread,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


def _terms(from_agent: str, to_agent: str, task: str, result: str) -> str:
    # The handles too, so that "what did owl do" finds Owl's tasks.
    return search_terms(f"{from_agent} {to_agent} {task} {result}")


class TaskStore:
    """Records tasks as agents hand them over and as the receivers finish them."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        from_agent: str,
        to_agent: str,
        task: str,
        platform: str,
        channel: str,
        thread: str,
    ) -> TaskRecord:
        """Record that ``from_agent`` handed ``task`` to ``to_agent`` in a thread."""
        now = utcnow()
        row = TaskRow(
            from_agent=from_agent,
            to_agent=to_agent,
            task=task,
            status="open",
            result="",
            platform=platform,
            channel=channel,
            thread=thread,
            terms=_terms(from_agent, to_agent, task, ""),
            created_at=now,
            updated_at=now,
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return _record(row)

    async def finish(self, task_id: int, *, outcome: Outcome, result: str) -> TaskRecord | None:
        """Close an open task with its result; None if it is unknown or already closed
        (a task ends once)."""
        async with self.db.session() as session, session.begin():
            row = await session.get(TaskRow, task_id)
            if row is None or row.status != "open":
                return None
            closed = (
                update(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.status == "open")
                .values(
                    status=outcome,
                    result=result,
                    terms=_terms(row.from_agent, row.to_agent, row.task, result),
                    updated_at=utcnow(),
                )
                .returning(TaskRow)
                .execution_options(synchronize_session=False, populate_existing=True)
            )
            finished = (await session.scalars(closed)).one_or_none()
            return _record(finished) if finished else None

    async def get(self, task_id: int) -> TaskRecord | None:
        """The task ``task_id``, if it exists."""
        async with self.db.session() as session:
            row = await session.get(TaskRow, task_id)
            return _record(row) if row else None

    async def open(self, limit: int = 50) -> list[TaskRecord]:
        """Open tasks, oldest first."""
        statement = select(TaskRow).where(TaskRow.status == "open").order_by(TaskRow.id)
        async with self.db.session() as session:
            rows = (await session.scalars(statement.limit(limit))).all()
        return [_record(row) for row in rows]

    async def recent(self, limit: int = 10) -> list[TaskRecord]:
        """Closed tasks, most recently closed first."""
        statement = (
            select(TaskRow)
            .where(TaskRow.status != "open")
            .order_by(TaskRow.updated_at.desc(), TaskRow.id.desc())
        )
        async with self.db.session() as session:
            rows = (await session.scalars(statement.limit(limit))).all()
        return [_record(row) for row in rows]

    async def search(self, query: str, *, limit: int = 5) -> list[TaskRecord]:
        """Up to ``limit`` tasks whose task, result or agents contain words of ``query``,
        ranked like memories: most words matched first, then the newest."""
        async with self.db.session() as session:
            rows = await _INDEX.search(
                session, query_words(query), limit=limit, sqlite=self.db.is_sqlite
            )
        return [_record(row) for row in rows]
