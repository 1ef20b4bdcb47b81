"""The durable inbox: every inbound message is stored, once, before anything handles it,
and so is every other piece of work the workers take (a decision on an approval, an
escalation resolved, a schedule fire): all of it has the same claim, lease and sweep, and
a thread's items are handled in the order they arrived."""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Select, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased
from sqlalchemy.sql.dml import ReturningUpdate

from corral.storage.db import Database, utc
from corral.storage.ids import new_id
from corral.storage.keys import ThreadKey
from corral.storage.tables import InboxRow, utcnow

#: Where a work item's handling stands: pending → working → done | failed | ignored.
InboxStatus = Literal["pending", "working", "done", "failed", "ignored"]
FINISHED: frozenset[InboxStatus] = frozenset({"done", "failed", "ignored"})
#: What a work item asks for: answer a message, continue a run after a decision on its
#: approval, tell a thread its escalation was resolved, run a schedule's fire.
WorkKind = Literal["message", "decision", "resolve", "fire"]
UNFINISHED: tuple[InboxStatus, ...] = ("pending", "working")
#: The most messages one group commit stores.
ADD_BATCH = 200


@dataclass(frozen=True)
class NewInbound:
    """A message to store: the platform's ids for deduplication, and what was said."""

    platform: str
    event_id: str
    channel: str
    message_id: str
    thread: str
    user: str
    text: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class NewWork:
    """A work item other than a message, in the thread it belongs to. ``ref`` names what
    it is about (an approval, a fire): one item per kind and ref, ever."""

    kind: WorkKind
    ref: str
    platform: str
    channel: str
    thread: str
    user: str
    payload: dict[str, Any]


def work_id(kind: WorkKind, ref: str) -> str:
    """The id of the work item of ``kind`` about ``ref`` (an approval's id, a fire's id):
    known in advance, so that the one who asked for the work can wait for it."""
    return f"{kind}:{ref}"


@dataclass(frozen=True)
class InboxRecord:
    """A stored work item and where its handling stands."""

    id: str
    kind: WorkKind
    platform: str
    event_id: str
    channel: str
    message_id: str
    thread: str
    user: str
    text: str
    payload: dict[str, Any]
    status: InboxStatus
    attempts: int
    received_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None

    @property
    def key(self) -> ThreadKey:
        """The thread the item belongs to."""
        return ThreadKey(self.platform, self.channel, self.thread)


def _record(row: Any) -> InboxRecord:
    """An inbox row (ORM object or Core row: both have the columns as attributes)."""
    return InboxRecord(
        id=row.id,
        kind=row.kind,
        platform=row.platform,
        event_id=row.event_id,
        channel=row.channel,
        message_id=row.message_id,
        thread=row.thread,
        user=row.user,
        text=row.text,
        payload=dict(row.payload),
        status=row.status,
        attempts=row.attempts,
        received_at=utc(row.received_at),
        claimed_at=utc(row.claimed_at) if row.claimed_at else None,
        finished_at=utc(row.finished_at) if row.finished_at else None,
    )


class InboxStore:
    """Stores inbound messages, deduplicated, and hands each to one worker at a time."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # The unique constraints decide, so two deliveries racing each other still store
        # one row. ON CONFLICT DO NOTHING swallows exactly those conflicts and no other
        # integrity error. Built once: it runs before every ack.
        self._add = db.insert(InboxRow).on_conflict_do_nothing().returning(InboxRow.id)
        self._waiting: list[tuple[dict[str, Any], asyncio.Future[str | None]]] = []
        self._storing: asyncio.Task[None] | None = None

    async def add(self, item: NewInbound) -> str | None:
        """Store ``item`` and return its id once it is committed; None when it was
        already stored, by the platform's event id or by its message (platform, channel,
        message id).

        Messages that arrive while others are being stored are committed together, in
        one transaction, after them (a group commit): under a burst each acknowledgement
        then waits for one commit, not for a queue of them."""
        params = {
            "id": new_id("in"),
            "kind": "message",
            "platform": item.platform,
            "event_id": item.event_id,
            "channel": item.channel,
            "message_id": item.message_id,
            "thread": item.thread,
            "user": item.user,
            "text": item.text,
            "payload": item.payload,
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        }
        stored: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._waiting.append((params, stored))
        if self._storing is None or self._storing.done():
            self._storing = asyncio.create_task(self._store_waiting())
        # Shielded: a caller that gives up must not cancel the commit of the others.
        return await asyncio.shield(stored)

    async def _store_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:ADD_BATCH], self._waiting[ADD_BATCH:]
            try:
                ids = await self._insert([params for params, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One bad row must not fail the others: each alone, so only it fails.
                for params, stored in batch:
                    try:
                        _settle(stored, params["id"] if await self._insert([params]) else None)
                    except Exception as one:
                        _settle(stored, one)
                continue
            except BaseException as exc:  # cancelled (shutdown): nobody may wait for ever
                for _, stored in (*batch, *self._waiting):
                    _settle(stored, RuntimeError(f"not stored: {exc!r}"))
                self._waiting = []
                raise
            for params, stored in batch:
                _settle(stored, params["id"] if params["id"] in ids else None)

    async def _insert(self, rows: list[dict[str, Any]]) -> set[str]:
        """Insert ``rows`` in one transaction; the ids of those that were new."""
        async with self.db.transaction() as connection:
            return set((await connection.execute(self._add, rows)).scalars().all())

    async def add_work(self, work: NewWork, *, on: AsyncConnection | None = None) -> str | None:
        """Store a work item (not a message) and return its id (:func:`work_id`); None
        when it was stored already. With ``on``, in that connection's transaction."""
        item_id = work_id(work.kind, work.ref)
        params = {
            "id": item_id,
            "kind": work.kind,
            "platform": work.platform,
            # Its own keys for deduplication: one item per kind and ref.
            "event_id": item_id,
            "channel": work.channel,
            "message_id": item_id,
            "thread": work.thread,
            "user": work.user,
            "text": "",
            "payload": work.payload,
            "status": "pending",
            "attempts": 0,
            "received_at": utcnow(),
        }
        async with self.db.transaction(on) as connection:
            added = (await connection.execute(self._add, [params])).scalars().all()
        return item_id if added else None

    async def get(self, inbox_id: str) -> InboxRecord | None:
        """The message stored as ``inbox_id``, if any."""
        async with self.db.reading() as connection:
            row = (await connection.execute(_GET, {"id": inbox_id})).one_or_none()
        return _record(row) if row else None

    async def claim(
        self,
        inbox_id: str,
        *,
        first_in_thread: Collection[str] | None = None,
        on: AsyncConnection | None = None,
    ) -> InboxRecord | None:
        """Take a pending message for handling; None when it is not pending (another
        worker has it, or it is finished). With ``on``, in that connection's transaction.

        With ``first_in_thread`` (platform names), only a message of one of those
        platforms that no earlier message of its thread is waiting before
        (:meth:`earlier_unfinished` is empty): the usual case, decided in the same
        statement as the claim; None otherwise, and nothing changes."""
        params: dict[str, Any] = {"inbox_id": inbox_id, "now": utcnow()}
        statement = _CLAIM
        if first_in_thread is not None:
            statement = _CLAIM_FIRST
            params["platforms"] = list(first_in_thread)
        async with self.db.transaction(on) as connection:
            row = (await connection.execute(statement, params)).one_or_none()
        return _record(row) if row else None

    async def finish(
        self, inbox_id: str, status: InboxStatus, *, on: AsyncConnection | None = None
    ) -> None:
        """Record how handling ended: ``done``, ``failed`` or ``ignored``; with ``on``, in
        that connection's transaction."""
        if status not in FINISHED:
            raise ValueError(f"status must be one of {sorted(FINISHED)}, not {status!r}")
        params = {"inbox_id": inbox_id, "new_status": status, "now": utcnow()}
        async with self.db.transaction(on) as connection:
            await connection.execute(_FINISH, params)

    async def count_by_status(self) -> dict[str, int]:
        """How many messages are in each status (for metrics)."""
        statement = select(InboxRow.status, func.count()).group_by(InboxRow.status)
        async with self.db.session() as session:
            return {status: count for status, count in (await session.execute(statement)).all()}

    async def release(self, inbox_id: str) -> None:
        """Put a message back in line after its worker stopped before finishing it
        (shutdown, cancellation): ``working`` becomes ``pending`` again. ``attempts`` is
        left as it is, since the claim happened. A no-op when the message is not
        ``working``: it was finished, or already put back."""
        # One conditional UPDATE: it cannot undo a ``finish`` that won the race.
        statement = (
            update(InboxRow)
            .where(InboxRow.id == inbox_id, InboxRow.status == "working")
            .values(status="pending", claimed_at=None)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(statement)

    async def renew(self, inbox_id: str) -> bool:
        """The lease heartbeat of a long-running worker: restart the message's claim
        clock so that :meth:`unfinished` does not take it for the work of a dead worker.
        False when the message is no longer ``working`` (it was finished, or found stale
        and put back), in which case the worker no longer holds it."""
        # RETURNING rather than rowcount: it says the same on every driver, and the
        # conditional UPDATE keeps a finished or released message from being revived.
        statement = (
            update(InboxRow)
            .where(InboxRow.id == inbox_id, InboxRow.status == "working")
            .values(claimed_at=utcnow())
            .returning(InboxRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            return (await session.execute(statement)).scalar_one_or_none() is not None

    async def unfinished(
        self, stale_after: float = 30.0, platforms: Collection[str] | None = None
    ) -> list[str]:
        """Ids of items waiting to be handled, oldest first: the pending ones, and the
        ones whose worker has held them for more than ``stale_after`` seconds (it died);
        those go back to pending so that they can be claimed again.

        With ``platforms``, only items of those platforms are put back and returned:
        a process serving some platforms must leave the others' items alone on a shared
        database. An empty collection matches nothing."""
        async with self.db.transaction() as connection:
            await self.requeue_stale(stale_after, platforms, on=connection)
            return await self.pending(platforms, on=connection)

    async def requeue_stale(
        self,
        stale_after: float,
        platforms: Collection[str] | None = None,
        *,
        on: AsyncConnection | None = None,
    ) -> list[str]:
        """Put back in line the items whose worker has held them for more than
        ``stale_after`` seconds (it died); their ids. ``platforms`` as in
        :meth:`unfinished`; with ``on``, in that connection's transaction."""
        cutoff = utcnow() - timedelta(seconds=stale_after)
        release = (
            update(InboxRow)
            .where(InboxRow.status == "working", InboxRow.claimed_at < cutoff)
            .values(status="pending")
            .returning(InboxRow.id)
            .execution_options(synchronize_session=False)
        )
        only = _on_platforms(platforms)
        if only is not None:
            release = release.where(only)
        async with self.db.transaction(on) as connection:
            return list((await connection.execute(release)).scalars().all())

    async def pending(
        self, platforms: Collection[str] | None = None, *, on: AsyncConnection | None = None
    ) -> list[str]:
        """Ids of the pending items (of ``platforms``, as in :meth:`unfinished`), oldest
        first; with ``on``, in that connection's transaction."""
        waiting = (
            select(InboxRow.id)
            .where(InboxRow.status == "pending")
            .order_by(InboxRow.received_at, InboxRow.id)
        )
        only = _on_platforms(platforms)
        if only is not None:
            waiting = waiting.where(only)
        async with self.db.transaction(on) as connection:
            return list((await connection.execute(waiting)).scalars().all())

    async def earlier_unfinished(
        self, key: ThreadKey, before: str
    ) -> list[tuple[str, InboxStatus]]:
        """(id, status) of the messages of the thread ``key`` that came before the message
        ``before`` and are not finished — waiting (``pending``) or being answered
        (``working``) — oldest first; empty when ``before`` does not exist. Workers use it
        to handle a thread's messages in the order they arrived, also across processes.

        "Before" is the order of :meth:`unfinished`: by ``received_at``, and for messages
        received in the same microsecond, by id. Ids are random, so that tie-break is
        arbitrary, but it is total and the same for every caller: of two messages of a
        thread, exactly one is earlier than the other, so two workers never both decide
        they go first (nor wait for each other)."""
        params = {
            "platform": key.platform,
            "channel": key.channel,
            "thread": key.thread,
            "before": before,
        }
        async with self.db.reading() as connection:
            rows = (await connection.execute(_EARLIER_UNFINISHED, params)).all()
        # The column is a plain string; this module writes only InboxStatus values to it.
        return [(str(row.id), cast(InboxStatus, row.status)) for row in rows]


def _on_platforms(platforms: Collection[str] | None) -> ColumnElement[bool] | None:
    if platforms is None:
        return None
    # A str is a Collection[str] too; "slack" would silently mean s, l, a, c, k.
    if isinstance(platforms, str):
        raise TypeError("platforms is a collection of platform names, not a str")
    return InboxRow.platform.in_(list(platforms))


def _settle(future: asyncio.Future[str | None], result: str | BaseException | None) -> None:
    if future.done():
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


def _before(earlier: Any, reference: Any) -> ColumnElement[bool]:
    """``earlier`` is an unfinished message of ``reference``'s thread that came before it
    (the order of :meth:`InboxStore.earlier_unfinished`)."""
    return and_(
        earlier.platform == reference.platform,
        earlier.channel == reference.channel,
        earlier.thread == reference.thread,
        earlier.status.in_(UNFINISHED),
        or_(
            earlier.received_at < reference.received_at,
            and_(earlier.received_at == reference.received_at, earlier.id < reference.id),
        ),
    )


def _earlier_unfinished() -> Select[str, str]:
    reference = aliased(InboxRow)
    # The reference row is joined in, not read first: one statement, so the answer is
    # from a single snapshot. Built once with bound parameters: every worker runs it for
    # every message, and building it costs more than running it.
    return (
        select(InboxRow.id, InboxRow.status)
        .join(reference, reference.id == bindparam("before"))
        .where(
            InboxRow.platform == bindparam("platform"),
            InboxRow.channel == bindparam("channel"),
            InboxRow.thread == bindparam("thread"),
            _before(InboxRow, reference),
        )
        .order_by(InboxRow.received_at, InboxRow.id)
    )


def _claim_first() -> ReturningUpdate[Any]:
    earlier = aliased(InboxRow)
    return _CLAIM.where(
        InboxRow.platform.in_(bindparam("platforms", expanding=True)),
        ~exists().where(_before(earlier, InboxRow)),
    )


_EARLIER_UNFINISHED = _earlier_unfinished()
_GET = select(InboxRow.__table__).where(InboxRow.id == bindparam("id"))
_CLAIM = (
    update(InboxRow)
    .where(InboxRow.id == bindparam("inbox_id"), InboxRow.status == "pending")
    .values(status="working", attempts=InboxRow.attempts + 1, claimed_at=bindparam("now"))
    .returning(*InboxRow.__table__.columns)
)
_CLAIM_FIRST = _claim_first()
_FINISH = (
    update(InboxRow)
    .where(InboxRow.id == bindparam("inbox_id"))
    .values(status=bindparam("new_status"), finished_at=bindparam("now"))
)
