"""One holder at a time per key (a thread, a person), first come first served, with locks
that exist only while someone holds or waits for them."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Hashable
from contextlib import asynccontextmanager
from typing import Generic, TypeVar

from corral.agents.waiting import waiting

K = TypeVar("K", bound=Hashable)


class KeyedLocks(Generic[K]):
    """A lock per key; waiting for one gives the worker's capacity to other work."""

    def __init__(self) -> None:
        self._locks: dict[K, asyncio.Lock] = {}
        self._users: Counter[K] = Counter()

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        """Hold ``key``'s lock (asyncio's locks wake their waiters in order); the lock is
        dropped when nobody holds or waits for it."""
        self._users[key] += 1
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
            self._users[key] -= 1
            if not self._users[key]:
                del self._users[key]
                del self._locks[key]

    def __len__(self) -> int:
        """How many keys are held or waited for."""
        return len(self._locks)
