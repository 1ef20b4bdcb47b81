"""The work queue: inbox ids waiting for a worker."""

from __future__ import annotations

import asyncio
from typing import Protocol


class WorkQueue(Protocol):
    """Hands stored inbound messages (by inbox id) to workers."""

    async def put(self, item_id: str) -> None:
        """Queue ``item_id`` for a worker."""
        ...

    async def get(self) -> str:
        """The next id; waits until there is one."""
        ...


class InProcessQueue:
    """A work queue inside this process, for a single-process deployment."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[str] = asyncio.Queue()

    async def put(self, item_id: str) -> None:
        """Queue ``item_id`` for a worker."""
        await self._queue.put(item_id)

    async def get(self) -> str:
        """The next id; waits until there is one."""
        return await self._queue.get()
