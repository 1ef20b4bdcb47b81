"""How many runs of one agent go at once (``limits.concurrent_runs``), across every
process: a run takes one of its agent's slots before it starts and gives it back when it
ends. The rest wait, in their order of arrival within a process, without holding a worker
(:func:`~agents.waiting.waiting`); none is dropped. A process that dies while holding a
slot loses it when the slot's lease runs out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import TYPE_CHECKING

from corral.agents.waiting import waiting

if TYPE_CHECKING:
    from corral.storage.run_slots import RunSlots

#: How long a slot is held without renewal; a holder renews it every third of this.
LEASE_S = 30.0
#: How often a waiter asks again whether a slot is free (another process's run may end).
POLL_S = 0.1


class RunGate:
    """Slots of each agent whose ``limit_for`` is a number; others run freely."""

    def __init__(
        self,
        slots: RunSlots,
        limit_for: Callable[[str], int | None],
        *,
        lease_s: float = LEASE_S,
        poll_s: float = POLL_S,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.slots = slots
        self.limit_for = limit_for
        self.lease_s = lease_s
        self.poll_s = poll_s
        self.sleep = sleep
        #: One waiter of each agent asks at a time, the others queue behind it in order.
        self._lines: dict[str, asyncio.Lock] = {}

    @asynccontextmanager
    async def run(self, agent: str, holder: str) -> AsyncIterator[None]:
        """Hold one of ``agent``'s slots (as ``holder``, the run) while the block runs."""
        limit = self.limit_for(agent)
        if limit is None:
            yield
            return
        key = f"agent:{agent}"
        line = self._lines.setdefault(agent, asyncio.Lock())
        # Nobody waiting here: most runs take a slot at once. Otherwise, behind them.
        if line.locked() or not await self.slots.take(key, holder, limit, self.lease_s):
            async with waiting():
                await self._wait_for_slot(key, line, holder, limit)
        renewing = asyncio.create_task(self._renew(key, holder))
        try:
            yield
        finally:
            renewing.cancel()
            with suppress(asyncio.CancelledError):
                await renewing
            # Shielded: a run cancelled at shutdown must still free its slot.
            await asyncio.shield(self.slots.give_back(key, holder))

    async def _wait_for_slot(self, key: str, line: asyncio.Lock, holder: str, limit: int) -> None:
        async with line:
            delay = self.poll_s / 4
            while not await self.slots.take(key, holder, limit, self.lease_s):
                await self.sleep(delay)
                delay = min(delay * 2, self.poll_s)

    async def _renew(self, key: str, holder: str) -> None:
        while True:
            await self.sleep(self.lease_s / 3)
            await self.slots.renew(key, holder, self.lease_s)
