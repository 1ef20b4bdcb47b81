"""The gateway: every inbound message is stored (deduplicated) before it is queued, and
workers take it from the queue to route, run and post (DESIGN.md, "One message")."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from contextlib import suppress

from agents.conversation import Reply
from agents.runtime import Runtime, Turn
from bot.adapter import ChatAdapter
from bot.coordinator import Coordinator
from bot.inbound import Inbound
from storage.inbox import NewInbound
from storage.queue import WorkQueue
from storage.store import Storage

log = logging.getLogger("corral.gateway")

#: A message claimed by a worker that has not finished after this long is taken up again.
STALE_AFTER_S = 30.0


class Gateway:
    """Stores and enqueues inbound messages; the adapters' one entry point."""

    def __init__(self, storage: Storage, queue: WorkQueue) -> None:
        self.storage = storage
        self.queue = queue

    async def submit(self, inbound: Inbound) -> str | None:
        """Store ``inbound`` and queue it; None when it was already received."""
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
        if inbox_id is None:
            log.info("duplicate %s event %s ignored", inbound.platform, inbound.event_id)
            return None
        await self.queue.put(inbox_id)
        return inbox_id

    async def recover(self) -> int:
        """Queue again what was stored but never finished (a worker or process died)."""
        ids = await self.storage.inbox.unfinished(stale_after=STALE_AFTER_S)
        for inbox_id in ids:
            await self.queue.put(inbox_id)
        if ids:
            log.info("re-queued %d unfinished messages", len(ids))
        return len(ids)


class Workers:
    """Take messages from the queue; route, run and post each one.

    Messages of one thread are handled one at a time, so an agent never runs twice in
    parallel on the same thread.
    """

    def __init__(
        self,
        storage: Storage,
        queue: WorkQueue,
        coordinator: Coordinator,
        runtime: Runtime,
        adapters: Mapping[str, ChatAdapter],
        concurrency: int = 4,
    ) -> None:
        self.storage = storage
        self.queue = queue
        self.coordinator = coordinator
        self.runtime = runtime
        self.adapters = adapters
        self.concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []
        self._thread_locks: dict[tuple[str, str, str], asyncio.Lock] = {}
        self._done: dict[str, asyncio.Event] = {}

    def start(self) -> None:
        """Start the worker tasks on the running loop."""
        self._tasks = [
            asyncio.create_task(self._work(), name=f"corral-worker-{i}")
            for i in range(self.concurrency)
        ]

    async def stop(self) -> None:
        """Cancel the workers; what they held is re-queued on the next start."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def wait(self, inbox_id: str) -> None:
        """Wait until the message ``inbox_id`` has been handled."""
        await self._event(inbox_id).wait()
        self._done.pop(inbox_id, None)

    def _event(self, inbox_id: str) -> asyncio.Event:
        return self._done.setdefault(inbox_id, asyncio.Event())

    async def _work(self) -> None:
        while True:
            inbox_id = await self.queue.get()
            try:
                await self.process(inbox_id)
            except Exception:  # one bad message must not stop the worker
                log.exception("message %s could not be handled", inbox_id)
            finally:
                self._event(inbox_id).set()

    async def process(self, inbox_id: str) -> None:
        """Handle one stored message, unless another worker already has it."""
        record = await self.storage.inbox.claim(inbox_id)
        if record is None:
            return
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
        key = (inbound.platform, inbound.channel, inbound.thread)
        lock = self._thread_locks.setdefault(key, asyncio.Lock())
        async with lock:
            status = "failed"
            try:
                status = await self._handle(inbound, inbox_id)
            finally:
                await self.storage.inbox.finish(inbox_id, status)

    async def _handle(self, inbound: Inbound, inbox_id: str) -> str:
        place = inbound.place
        await self.storage.transcript.append(
            place.platform,
            place.channel,
            place.thread,
            inbound.text,
            user=inbound.user_name or inbound.user,
        )
        route = await self.coordinator.route(inbound)
        if route is None:
            log.info("not for the team: %s/%s", inbound.platform, inbound.message_id)
            return "ignored"
        adapter = self.adapters[inbound.platform]
        await adapter.picked_up(inbound, route)
        try:
            await self.runtime.handle(
                Turn(place, route.agent, route.reason, inbound.text, inbox_id=inbox_id),
                adapter.post,
            )
        except Exception as exc:
            log.exception("turn for %s failed", route.agent)
            name = self.runtime.team.agent(route.agent).display_name
            await adapter.post(
                place, Reply(route.agent, f"{name} could not finish: {exc}", kind="error")
            )
            return "failed"
        return "done"
