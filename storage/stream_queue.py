"""The shared work queue: inbox ids in Redis Streams, for several processes on one
database (``corral run`` taking messages in, ``corral worker`` processes answering them).

Redis Streams with a consumer group hand each entry to exactly one reader among all the
processes (https://redis.io/docs/latest/develop/data-types/streams/), which is the whole
job here. There is one stream per platform, so that a process only reads the messages of
the platforms it can answer on.

The stream is a doorbell, not the record: the message itself, its claim and its lease are
in the database inbox. So an entry is acknowledged as soon as it is read; a worker that
dies afterwards loses nothing, because the sweep queues messages whose lease ran out
again. For the same reason a failed ``put`` is logged, not raised: the message is stored,
and the sweep queues it within seconds.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.typing import KeyT, StreamIdT

log = logging.getLogger("corral.queue")

STREAM_PREFIX = "corral:work:"
GROUP = "corral-workers"
#: Entries kept per stream (approximately): far more than can wait at once.
MAX_LENGTH = 100_000
#: How long one read waits for an entry, in ms; below the client's socket timeout.
BLOCK_MS = 500
#: Pause after a Redis error before reading again.
RETRY_AFTER_S = 1.0


class RedisStreamQueue:
    """Inbox ids in one Redis stream per platform, read through one consumer group."""

    #: Any process's workers may take what is put here.
    local = False

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = STREAM_PREFIX,
        group: str = GROUP,
        block_ms: int = BLOCK_MS,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.group = group
        self.block_ms = block_ms
        #: Unique per process: Redis tracks what each consumer read.
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        #: Streams whose consumer group this process has made sure of.
        self._groups: set[str] = set()
        #: Reads under way (held: the loop keeps only weak references to tasks).
        self._reads: set[asyncio.Future[str | None]] = set()

    def stream(self, platform: str) -> str:
        """The stream key of ``platform``'s messages."""
        return f"{self.prefix}{platform}"

    async def put(self, item_id: str, platform: str) -> None:
        """Queue ``item_id`` for a worker of a process that serves ``platform``."""
        try:
            await self.client.xadd(
                self.stream(platform), {"id": item_id}, maxlen=MAX_LENGTH, approximate=True
            )
        except RedisError as exc:
            log.warning("queueing %s in Redis failed (%s); the sweep queues it again", item_id, exc)

    async def get(self, platforms: Sequence[str]) -> str:
        """The next id of a message of ``platforms``; waits until there is one."""
        if not platforms:
            # Nothing this process may answer: wait for ever (until cancelled).
            await asyncio.Event().wait()
        while True:
            read = asyncio.ensure_future(self._read_one(platforms))
            self._reads.add(read)
            read.add_done_callback(self._read_done)
            try:
                # Shielded: cancelling a blocking read inside redis-py can wedge the
                # connection and the cancelled task with it (redis-py #2028, #2579). A
                # cancelled get lets its read end by itself (within block_ms); an id that
                # read takes is still pending in the database, and the sweep queues it.
                item = await asyncio.shield(read)
            except RedisError as exc:
                log.warning("reading the Redis work queue failed (%s); retrying", exc)
                # Redis may have restarted empty: make the groups again.
                self._groups.clear()
                await asyncio.sleep(RETRY_AFTER_S)
                continue
            if item is not None:
                return item

    def _read_done(self, read: asyncio.Future[str | None]) -> None:
        self._reads.discard(read)
        if not read.cancelled():
            read.exception()  # retrieved: a read nobody waits for any more may fail quietly

    async def _read_one(self, platforms: Sequence[str]) -> str | None:
        streams: dict[KeyT, StreamIdT] = {}
        for platform in platforms:
            stream = self.stream(platform)
            if stream not in self._groups:
                await self._make_group(stream)
            streams[stream] = ">"
        # redis-py types the reply loosely: [[stream, [(entry id, {field: value})]]].
        reply: Any = await self.client.xreadgroup(
            self.group, self.consumer, streams, count=1, block=self.block_ms
        )
        for stream, entries in reply or []:
            for entry_id, fields in entries:
                await self.client.xack(stream, self.group, entry_id)
                value = fields.get(b"id") or fields.get("id")
                if value is not None:
                    return value.decode() if isinstance(value, bytes) else str(value)
        return None

    async def _make_group(self, stream: str) -> None:
        try:
            # From the start of the stream ("0"): entries queued before any worker of
            # this platform ever ran are still handed out.
            await self.client.xgroup_create(stream, self.group, "0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)
