"""The work queue: inbox ids waiting for a worker. In one process, this module's
in-process queue; shared by several (REDIS_URL), storage/stream_queue.py's."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol


class WorkQueue(Protocol):
    """Hands stored inbound messages (by inbox id) to workers."""

    #: True when what is put here is taken by this process's workers only.
    local: bool

    async def put(self, item_id: str, platform: str) -> None:
        """Queue ``item_id``, a message of ``platform``, for a worker."""
        ...

    async def get(self, platforms: Sequence[str]) -> str:
        """The next id of a message of ``platforms``; waits until there is one."""
        ...


class InProcessQueue:
    """A work queue inside this process, for a single-process deployment: every message
    it is given is of a platform this process serves, so platforms are not looked at."""

    local = True

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, item_id: str, platform: str = "") -> None:
        """Queue ``item_id`` for a worker."""
        await self._queue.put(item_id)

    async def get(self, platforms: Sequence[str] = ()) -> str:
        """The next id; waits until there is one."""
        return await self._queue.get()
