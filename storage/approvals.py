"""Approvals: human decisions the team waits for (a tool call to allow, an escalation)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.audit import Where, audit_values
from corral.storage.db import Database, utc
from corral.storage.ids import new_id
from corral.storage.tables import ApprovalRow, AuditRow, utcnow

#: What waits for a person: a tool call to allow, or an escalation to resolve.
ApprovalKind = Literal["tool", "escalation", "budget"]
#: A tool call is ``pending`` until ``approved`` or ``rejected``; an escalation is
#: ``open`` until ``resolved``.
ApprovalStatus = Literal["pending", "open", "approved", "rejected", "resolved"]
#: Statuses that still wait for a person: ``pending`` for tool calls, ``open`` for
#: escalations.
UNDECIDED: tuple[ApprovalStatus, ...] = ("pending", "open")


@dataclass(frozen=True)
class ApprovalRecord:
    """A decision to make, or made: ``state`` is what the paused run needs to resume."""

    id: str
    kind: ApprovalKind
    agent: str
    run_id: str
    platform: str
    channel: str
    thread: str
    summary: str
    state: dict[str, Any]
    status: ApprovalStatus
    decided_by: str
    created_at: datetime
    decided_at: datetime | None
    #: The platform message that carries the request's buttons ("" until it is posted).
    message_channel: str = ""
    message_id: str = ""


def _record(row: Any) -> ApprovalRecord:
    """An approval row (ORM object or Core row: both have the columns as attributes)."""
    return ApprovalRecord(
        id=row.id,
        kind=row.kind,
        agent=row.agent,
        run_id=row.run_id,
        platform=row.platform,
        channel=row.channel,
        thread=row.thread,
        summary=row.summary,
        state=dict(row.state),
        status=row.status,
        decided_by=row.decided_by,
        created_at=utc(row.created_at),
        decided_at=utc(row.decided_at) if row.decided_at else None,
        message_channel=row.message_channel,
        message_id=row.message_id,
    )


class ApprovalStore:
    """Creates approvals and lets exactly one person decide each."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self,
        *,
        kind: ApprovalKind,
        agent: str,
        summary: str,
        run_id: str = "",
        platform: str = "",
        channel: str = "",
        thread: str = "",
        state: dict[str, Any] | None = None,
        status: ApprovalStatus = "pending",
    ) -> ApprovalRecord:
        """Record a decision to wait for; its id is ``a-…``."""
        if status not in UNDECIDED:
            raise ValueError(f"a new approval is {' or '.join(UNDECIDED)}, not {status!r}")
        row = ApprovalRow(
            id=new_id("a"),
            kind=kind,
            agent=agent,
            run_id=run_id,
            platform=platform,
            channel=channel,
            thread=thread,
            summary=summary,
            state=state or {},
            status=status,
            decided_by="",
            created_at=utcnow(),
            message_channel="",
            message_id="",
        )
        async with self.db.session() as session, session.begin():
            session.add(row)
        return _record(row)

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        """The approval ``approval_id``, if it exists."""
        async with self.db.session() as session:
            row = await session.get(ApprovalRow, approval_id)
            return _record(row) if row else None

    async def attach(self, approval_id: str, channel: str, message_id: str) -> None:
        """Record the platform message (``channel``, ``message_id``) that carries the
        buttons of ``approval_id``'s request; a click on any other message is refused."""
        statement = (
            update(ApprovalRow)
            .where(ApprovalRow.id == approval_id)
            .values(message_channel=channel, message_id=message_id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(statement)

    async def pending(self) -> list[ApprovalRecord]:
        """The approvals still waiting for a decision, oldest first."""
        statement = (
            select(ApprovalRow)
            .where(ApprovalRow.status.in_(UNDECIDED))
            .order_by(ApprovalRow.created_at, ApprovalRow.id)
        )
        async with self.db.session() as session:
            return [_record(row) for row in (await session.scalars(statement)).all()]

    async def decide(
        self,
        approval_id: str,
        *,
        status: ApprovalStatus,
        by: str,
        kind: ApprovalKind | None = None,
        on: AsyncConnection | None = None,
    ) -> ApprovalRecord | None:
        """Decide (``approved`` or ``rejected`` for tool calls, ``resolved`` for
        escalations …) and audit it. Only the first decision counts: None when the
        approval was already decided or does not exist. With ``kind``, only an approval
        of that kind is decided: None, and nothing changes, for one of another kind (an
        escalation id given where a tool approval is expected). With ``on``, in that
        connection's transaction (with the work the decision starts)."""
        if status in UNDECIDED:
            raise ValueError(f"{status!r} is not a decision")
        conditions = [ApprovalRow.id == approval_id, ApprovalRow.status.in_(UNDECIDED)]
        if kind is not None:
            # In the UPDATE itself, not checked after it: a row of the wrong kind must
            # stay undecided, not be decided and then reported as a mismatch.
            conditions.append(ApprovalRow.kind == kind)
        statement = (
            update(ApprovalRow)
            .where(*conditions)
            .values(status=status, decided_by=by, decided_at=utcnow())
            .returning(*ApprovalRow.__table__.columns)
        )
        async with self.db.transaction(on) as connection:
            row = (await connection.execute(statement)).one_or_none()
            if row is None:
                return None
            values = audit_values(
                by,
                "approval.decide",
                approval_id,
                f"{row.kind}: {row.summary}",
                agent=row.agent,
                where=Where(row.platform, row.channel, row.thread),
                outcome=status,
            )
            await connection.execute(insert(AuditRow).values(**values))
            return _record(row)
