"""The gateway: every inbound message is stored (deduplicated) before it is queued, and
workers take it from the queue to route, run and post (DESIGN.md, "One message").

Messages are one kind of work item; decisions on approvals, escalations resolved and
schedule fires are the others, stored in the same inbox and taken by the same workers,
so all of them survive a process that dies and keep their thread's order."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, nullcontext, suppress
from dataclasses import replace

from corral.agents.conversation import Place, Poster, Reply
from corral.agents.redaction import BUILTIN, Redactor
from corral.agents.runtime import Runtime, Turn
from corral.agents.waiting import waiting, while_waiting
from corral.bot.adapter import ChatAdapter
from corral.bot.coordinator import Coordinator, Route
from corral.bot.inbound import Inbound
from corral.bot.intake import Intake
from corral.bot.permissions import Gatekeeper
from corral.bot.posting import LedgerPoster
from corral.bot.scheduling.fires import run_fire
from corral.storage.approvals import ApprovalKind, ApprovalRecord, ApprovalStatus
from corral.storage.dedupe import Delivered, delivery_keys
from corral.storage.inbox import (
    FINISHED,
    InboxRecord,
    InboxStatus,
    NewInbound,
    NewWork,
    work_id,
)
from corral.storage.keys import ThreadKey
from corral.storage.queue import WorkQueue
from corral.storage.store import RunEnd, Storage
from corral.storage.transcript import Line

log = logging.getLogger("corral.gateway")

#: How long a message waits before it is tried again while another process answers an
#: earlier message of its thread.
WAIT_FOR_EARLIER_S = 0.5
#: Items a process holds at once per unit of concurrency, most of them waiting (for a
#: channel's pace, a rate limit, a slot): enough that waiting ones never keep the
#: queue's next item from a free worker, bounded so one process does not take the
#: whole queue from the others.
IN_FLIGHT_PER_WORKER = 64
RECENTLY_FINISHED = 1024
#: Where a stored message keeps the kinds of secret redacted from it (``Inbound.extra``).
REDACTED = "redacted"


class Gateway:
    """Stores and enqueues inbound messages; the adapters' one entry point.

    With ``delivered`` (Redis, shared by every process), a redelivery of a stored message
    is refused without touching the database; the database's unique keys decide the rest.
    A message is stored redacted by ``redactor``, with the kinds of secret found in it.
    """

    def __init__(
        self,
        storage: Storage,
        queue: WorkQueue,
        delivered: Delivered | None = None,
        intake: Intake | None = None,
        redactor: Redactor = BUILTIN,
    ) -> None:
        self.storage = storage
        self.queue = queue
        self.delivered = delivered
        self.redactor = redactor
        #: Counts the messages being stored, for the workers to give acks the way.
        self.intake = intake or Intake()

    async def submit(self, inbound: Inbound) -> str | None:
        """Store ``inbound`` and queue it; None when it was already received."""
        with self.intake.taking():
            return await self._submit(inbound)

    async def _submit(self, inbound: Inbound) -> str | None:
        keys = delivery_keys(
            inbound.platform, inbound.event_id, inbound.channel, inbound.message_id
        )
        if self.delivered is not None and await self.delivered.known(keys):
            log.info("duplicate %s event %s ignored", inbound.platform, inbound.event_id)
            return None
        inbound = self._redacted(inbound)
        inbox_id = await self.storage.inbox.add(
            NewInbound(
                platform=inbound.platform,
                event_id=inbound.event_id,
                channel=inbound.channel,
                message_id=inbound.message_id,
                thread=inbound.thread,
                user=inbound.user,
                text=inbound.text,
                payload=inbound.payload(),
            )
        )
        if self.delivered is not None:
            # Also after a refusal by the database: the next redelivery is then cheap too.
            await self.delivered.remember(keys)
        if inbox_id is None:
            log.info("duplicate %s event %s ignored", inbound.platform, inbound.event_id)
            return None
        await self.queue.put(inbox_id, inbound.platform)
        return inbox_id

    def _redacted(self, inbound: Inbound) -> Inbound:
        """``inbound`` as it may be stored: its secrets replaced, their kinds noted for
        the worker to tell the person."""
        found = self.redactor.redaction(inbound.text)
        if not found.kinds:
            return inbound
        extra = {**inbound.extra, REDACTED: ", ".join(found.kinds)}
        return replace(inbound, text=found.text, extra=extra)


class Workers:
    """Take work items from the queue and handle each: answer a message, continue a run
    after a decision, tell a thread its escalation was resolved, run a schedule's fire.

    A thread's items are handled one at a time and in the order they arrived, so an
    agent never runs twice in parallel on a thread and answers never cross. A worker holds
    an item under a lease it renews; an item whose lease ran out (its process died) is
    queued again by the sweep, and its run is closed as interrupted.

    ``concurrency`` items are worked on at once. An item that waits (for its channel's
    posting pace, a rate limit, an agent's concurrency cap, its thread's earlier items)
    gives its capacity back while it waits (:func:`~agents.waiting.waiting`), so no
    channel, person or agent can hold the workers that would answer someone else.
    """

    def __init__(
        self,
        storage: Storage,
        queue: WorkQueue,
        coordinator: Coordinator,
        runtime: Runtime,
        adapters: Mapping[str, ChatAdapter],
        concurrency: int = 4,
        *,
        stale_after: float = 30.0,
        sweep_every: float = 10.0,
        intake: Intake | None = None,
        redactor: Redactor = BUILTIN,
        gatekeeper: Gatekeeper | None = None,
    ) -> None:
        self.storage = storage
        self.queue = queue
        self.coordinator = coordinator
        #: Turns away a message its routed agent may not answer (``allowed_channels``,
        #: ``allowed_users``); None: every route is answered.
        self.gatekeeper = gatekeeper
        self.runtime = runtime
        self.adapters = adapters
        self.concurrency = concurrency
        self.stale_after = stale_after
        self.sweep_every = sweep_every
        #: This process's intake, which new work gives the way to (see :class:`Intake`).
        self.intake = intake
        #: What a thread's lines brought in from the platform are stored through.
        self.redactor = redactor
        self._tasks: list[asyncio.Task[None]] = []
        #: The items being handled, working or waiting.
        self._items: set[asyncio.Task[None]] = set()
        self._capacity = asyncio.Semaphore(concurrency)
        self._in_flight = asyncio.Semaphore(concurrency * IN_FLIGHT_PER_WORKER)
        self._locks: dict[ThreadKey, asyncio.Lock] = {}
        self._lock_users: Counter[ThreadKey] = Counter()
        self._waiters: dict[str, asyncio.Event] = {}
        #: Ids the sweep put in the queue, and when, that no worker here has taken yet.
        self._requeued: dict[str, float] = {}
        #: Items waiting to be queued again (see :meth:`_queue_later`).
        self._later: set[asyncio.Task[None]] = set()
        #: Ids this process finished lately (insertion-ordered, bounded), for :meth:`wait`.
        self._finished: dict[str, None] = {}

    def start(self) -> None:
        """Start taking work, and the sweep, on the running loop."""
        self._tasks = [
            asyncio.create_task(self._take_work(), name="corral-workers"),
            asyncio.create_task(self._sweep(), name="corral-sweep"),
        ]

    async def stop(self) -> None:
        """Stop the workers; an item in progress goes back to the inbox for the next
        start (its run is recorded as interrupted)."""
        # An item waiting to be queued again stays pending: the next start takes it.
        tasks = [*self._tasks, *self._items, *self._later]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._items.clear()

    async def recover(self) -> int:
        """Queue this process's platforms' items that were stored but not finished; the
        runs of those whose worker died are closed as interrupted."""
        now = time.monotonic()
        # Forget what is long gone (taken by another process, or finished).
        self._requeued = {i: at for i, at in self._requeued.items() if now - at < self.stale_after}
        queued = 0
        for platform in self.adapters:
            ids = await self.storage.unfinished(stale_after=self.stale_after, platforms=[platform])
            for inbox_id in ids:
                # What this process queued lately is in line already, unless a worker
                # (here or, with a shared queue, elsewhere) took it and then died.
                if now - self._requeued.get(inbox_id, -self.stale_after) < self.stale_after:
                    continue
                self._requeued[inbox_id] = now
                await self.queue.put(inbox_id, platform)
                queued += 1
        if queued:
            log.info("queued %d unfinished work items again", queued)
        return queued

    async def wait(self, inbox_id: str) -> None:
        """Wait until the work item ``inbox_id`` has been handled, by this process (it
        says so at once) or by another one (seen in the database within a second)."""
        while inbox_id not in self._finished:
            event = self._waiters.setdefault(inbox_id, asyncio.Event())
            try:
                await asyncio.wait_for(event.wait(), timeout=1.0)
            except TimeoutError:
                record = await self.storage.inbox.get(inbox_id)
                if record is None or record.status in FINISHED:
                    self._waiters.pop(inbox_id, None)
                    return

    async def decide(
        self, approval_id: str, approved: bool, by: str, kind: ApprovalKind = "tool"
    ) -> ApprovalRecord | None:
        """Record ``by``'s decision on the tool call ``approval_id`` and queue the paused
        run's continuation as work of its thread (in one transaction with the decision);
        returns at once with the decided approval. None when nothing waits for it: an
        unknown id, an escalation, or decided already. The caller checks that ``by`` may
        decide. Its work item is ``work_id("decision", approval_id)``, for :meth:`wait`.
        A ``budget`` request is raised (approved) or kept as it is, with nothing queued."""
        status: ApprovalStatus = "approved" if approved else "rejected"
        record = await self.storage.decide(approval_id, status=status, by=by, kind=kind)
        if record is not None and kind == "tool":
            await self.queue.put(work_id("decision", approval_id), record.platform)
        return record

    async def resolve(self, escalation_id: str, by: str) -> ApprovalRecord | None:
        """Record that ``by`` resolved the escalation ``escalation_id`` and queue the
        notice in its thread; None when no open escalation has that id. Its work item is
        ``work_id("resolve", escalation_id)``."""
        record = await self.storage.decide(
            escalation_id, status="resolved", by=by, kind="escalation"
        )
        if record is not None:
            await self.queue.put(work_id("resolve", escalation_id), record.platform)
        return record

    async def enqueue(self, work: NewWork) -> str | None:
        """Store ``work`` and queue it; its id, or None when it was stored already."""
        inbox_id = await self.storage.inbox.add_work(work)
        if inbox_id is not None:
            await self.queue.put(inbox_id, work.platform)
        return inbox_id

    def _notify(self, inbox_id: str, finished: bool = False) -> None:
        if finished:
            self._finished[inbox_id] = None
            if len(self._finished) > RECENTLY_FINISHED:
                self._finished.pop(next(iter(self._finished)))
        event = self._waiters.pop(inbox_id, None)
        if event is not None:
            event.set()

    @asynccontextmanager
    async def _thread_lock(self, key: ThreadKey) -> AsyncIterator[None]:
        """One holder per thread; the lock is dropped when nobody holds or waits for it."""
        self._lock_users[key] += 1
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            if lock.locked():
                async with waiting():
                    await lock.acquire()
            else:
                await lock.acquire()
            try:
                yield
            finally:
                lock.release()
        finally:
            self._lock_users[key] -= 1
            if not self._lock_users[key]:
                del self._lock_users[key]
                del self._locks[key]

    async def _sweep(self) -> None:
        while True:
            try:
                await self.recover()
            except Exception:  # the database may be briefly away; try again next round
                log.exception("sweep failed")
            await asyncio.sleep(self.sweep_every)

    async def _take_work(self) -> None:
        """Take the next item whenever a worker is free, and handle it in a task of its own."""
        while True:
            await self._in_flight.acquire()
            try:
                inbox_id = await self.queue.get(list(self.adapters))
                # Capacity after the item, not before: waiting for the queue must not hold
                # capacity that an item back from a wait needs. Cancelled here, the item
                # stays in the inbox, and the sweep queues it again.
                await self._capacity.acquire()
            except BaseException:
                self._in_flight.release()
                raise
            task = asyncio.create_task(self._work(inbox_id), name=f"corral-item-{inbox_id}")
            self._items.add(task)
            task.add_done_callback(self._items.discard)

    async def _work(self, inbox_id: str) -> None:
        """Handle one item on the capacity taken for it, given back while it waits."""
        token = while_waiting.set(self._give_back)
        try:
            self._requeued.pop(inbox_id, None)
            if self.intake is not None:
                await self.intake.yield_to_acks()
            try:
                await self.process(inbox_id)
            except Exception:  # one bad item must not stop the workers
                log.exception("work item %s could not be handled", inbox_id)
            finally:
                self._notify(inbox_id)
        finally:
            while_waiting.reset(token)
            self._capacity.release()
            self._in_flight.release()

    @asynccontextmanager
    async def _give_back(self) -> AsyncIterator[None]:
        """While an item waits, its capacity serves another; it takes it back after."""
        self._capacity.release()
        try:
            yield
        finally:
            await self._capacity.acquire()

    async def process(self, inbox_id: str) -> None:
        """Handle one stored work item, after the earlier items of its thread."""
        # Most items have nothing before them in their thread: one statement checks
        # that and claims. The rest take the long way, which waits its turn.
        record = await self.storage.claim(
            inbox_id, _first_line, first_in_thread=list(self.adapters)
        )
        if record is not None:
            await self._handle_claimed(record, lock=True)
            return
        record = await self.storage.inbox.get(inbox_id)
        if record is None or record.status != "pending" or record.platform not in self.adapters:
            return
        async with self._thread_lock(record.key):
            earlier = await self.storage.inbox.earlier_unfinished(record.key, before=inbox_id)
            for item, status in earlier:
                if status == "pending" and await self._claim_and_handle(item):
                    continue
                if status == "working" or await self._being_answered(item):
                    # Another process handles an earlier item of the thread (this one
                    # holds the thread): ours waits its turn, or answers would cross.
                    self._queue_later(inbox_id, record.platform)
                    return
            await self._claim_and_handle(inbox_id)

    async def _being_answered(self, inbox_id: str) -> bool:
        record = await self.storage.inbox.get(inbox_id)
        return record is not None and record.status == "working"

    def _queue_later(self, inbox_id: str, platform: str) -> None:
        async def later() -> None:
            await asyncio.sleep(WAIT_FOR_EARLIER_S)
            await self.queue.put(inbox_id, platform)

        task = asyncio.create_task(later())
        # The loop keeps only weak references to tasks: hold one until it is done.
        self._later.add(task)
        task.add_done_callback(self._later.discard)

    async def _claim_and_handle(self, inbox_id: str) -> bool:
        """Claim and handle an item; False when it was not ours to take."""
        record = await self.storage.claim(inbox_id, _first_line)
        if record is None:
            return False
        await self._handle_claimed(record)
        return True

    async def _handle_claimed(self, record: InboxRecord, *, lock: bool = False) -> None:
        """Handle an item this worker claimed, holding its lease, and close it; with
        ``lock``, once nothing else in this process holds its thread."""
        inbox_id = record.id
        closing = _Closing(self.storage, inbox_id)
        lease = asyncio.create_task(self._keep_lease(inbox_id))
        try:
            async with self._thread_lock(record.key) if lock else nullcontext():
                status = await self._handle(record, closing)
        except asyncio.CancelledError:
            await self.storage.inbox.release(inbox_id)
            raise
        finally:
            lease.cancel()
        if not (closing.closed and status == "done"):
            await self.storage.inbox.finish(inbox_id, status)
        self._notify(inbox_id, finished=True)

    async def _handle(self, record: InboxRecord, closing: _Closing) -> InboxStatus:
        """Handle the item; how it ended for the inbox (done, failed or ignored)."""
        adapter = self.adapters[record.platform]
        post = await LedgerPoster.open(adapter, self.storage.posts, record)
        if record.kind == "message":
            return await self._answer(record, adapter, post, closing)
        place = Place(record.platform, record.channel, record.thread)
        try:
            if record.kind == "decision":
                await self._continue(record, post, closing)
            elif record.kind == "resolve":
                await self._resolved(record, place, post)
            else:
                may_post = self.gatekeeper.may_post if self.gatekeeper else None
                await run_fire(self.runtime, self.storage, record, post, may_post)
        except Exception:  # never a silent failure: the thread hears of it
            log.exception("work item %s (%s) failed", record.id, record.kind)
            text = f"Corral could not finish this {record.kind}: internal error ({record.id})"
            with suppress(Exception):
                await post(place, Reply("corral", text, kind="error"))
            return "failed"
        return "done"

    async def _continue(self, record: InboxRecord, post: Poster, closing: _Closing) -> None:
        """Continue the run that waited for the decided approval."""
        approval = await self.storage.approvals.get(str(record.payload["approval_id"]))
        if approval is None or approval.kind != "tool":
            raise LookupError(f"{record.payload['approval_id']} is no decided tool call")
        # Its run is this item's now: the sweep closes it if this process dies.
        await self.storage.runs.reopen(approval.run_id, record.id)
        await self.runtime.resume(approval, post, inbox_id=record.id, end_last=closing)

    async def _resolved(self, record: InboxRecord, place: Place, post: Poster) -> None:
        """Tell the escalation's thread who resolved it."""
        approval = await self.storage.approvals.get(str(record.payload["approval_id"]))
        by = str(record.payload["by"])
        # Slack and Discord both render <@id> as the person's name.
        who = f"<@{by}>" if record.platform in ("slack", "discord") else by
        agent = approval.agent if approval is not None else "corral"
        await post(place, Reply(agent, f"Resolved by {who}.", kind="notice"))

    async def _backfill(self, adapter: ChatAdapter, inbound: Inbound) -> None:
        """A reply in a thread Corral has not seen (it started before Corral was there, or
        without Corral): bring in what the platform has of the thread, as context."""
        place = inbound.place
        if inbound.thread == inbound.message_id:
            return
        if await self.storage.transcript.history(place.key, limit=1):
            return
        lines = await adapter.thread_history(place, before=inbound.message_id)
        redact = self.redactor.redact
        await self.storage.transcript.append_lines(
            place.key,
            [Line(redact(line.text), user=line.user, agent=line.agent) for line in lines],
        )

    async def _keep_lease(self, inbox_id: str) -> None:
        while True:
            await asyncio.sleep(self.stale_after / 3)
            await self.storage.inbox.renew(inbox_id)

    async def _answer(
        self, record: InboxRecord, adapter: ChatAdapter, post: Poster, closing: _Closing
    ) -> InboxStatus:
        """Route, run and post a message; how it ended for the inbox."""
        inbound = Inbound.from_stored(
            platform=record.platform,
            event_id=record.event_id,
            channel=record.channel,
            message_id=record.message_id,
            thread=record.thread,
            user=record.user,
            text=record.text,
            payload=dict(record.payload),
        )
        place = inbound.place
        route: Route | None = None
        try:
            inbound = await adapter.with_names(inbound)
            place = inbound.place
            if record.attempts == 1 and REDACTED in inbound.extra:
                await _tell_redacted(adapter, inbound)
            # A message taken up again after a stop is in the thread's history already;
            # one that starts its thread went in with its claim.
            if record.attempts == 1 and _first_line(record) is None:
                await self._backfill(adapter, inbound)
                line = Line(record.text, user=inbound.user_name or record.user)
                await self.storage.transcript.append_lines(place.key, [line])
            route = await self.coordinator.route(inbound)
            if route is None:
                log.info("not for the team: %s/%s", inbound.platform, inbound.message_id)
                await adapter.unanswered(inbound)
                return "ignored"
            gatekeeper = self.gatekeeper
            if gatekeeper is not None and await gatekeeper.turned_away(adapter, inbound, route):
                return "ignored"
            await adapter.picked_up(inbound, route)
            await self.runtime.handle(
                Turn(
                    place,
                    route.agent,
                    route.reason,
                    inbound.text,
                    inbox_id=record.id,
                    difficulty=route.difficulty,
                ),
                post,
                end_last=closing,
            )
        except Exception:  # never a silent failure: the thread hears of it, in plain words
            log.exception("message %s failed", record.id)
            who = route.agent if route else "corral"
            text = f"Corral could not handle this message: internal error (message {record.id})"
            with suppress(Exception):
                await post(place, Reply(who, text, kind="error"))
            return "failed"
        return "done"


async def _tell_redacted(adapter: ChatAdapter, inbound: Inbound) -> None:
    """Tell the person who pasted a secret, once (a message taken up again after a stop
    is not told again), that it was taken out before any agent saw it."""
    text = (
        f"Your message contained a secret ({inbound.extra[REDACTED]}). Corral removed it "
        "before any agent saw or stored it, but it was sent to the chat: treat it as "
        "exposed and rotate it."
    )
    try:
        await adapter.notice(inbound, text)
    except Exception:  # the message is answered all the same
        log.warning("could not tell %s about a redacted secret", inbound.user, exc_info=True)


class _Closing:
    """Records how a work item's last run ended and closes the item as done, in one
    write: a turn then costs one transaction less. A fire is not closed this way, since
    its own record is written after its run."""

    def __init__(self, storage: Storage, inbox_id: str) -> None:
        self.storage = storage
        self.inbox_id = inbox_id
        #: The item is closed (done) already.
        self.closed = False

    async def __call__(self, end: RunEnd) -> None:
        await self.storage.end_run(end, closing=self.inbox_id)
        self.closed = True


def _first_line(record: InboxRecord) -> Line | None:
    """The message's line in its thread's history, to add with its first claim; None
    for a retry (it is there already), for a reply, whose thread may need to be brought
    in from the platform first, for work that is not a message, and for a message whose
    sender's name the worker is still to ask the platform for."""
    if record.kind != "message" or record.attempts != 1 or record.thread != record.message_id:
        return None
    name = str(record.payload.get("user_name") or "")
    return Line(record.text, user=name) if name else None
