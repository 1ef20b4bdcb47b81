"""Flood limits (``limits.messages_per_minute``): how many messages one person, and one
channel, may send the team in a minute, so that one person or a runaway integration
cannot spend the team's budget.

A message over a limit is not refused: it is stored already (the gateway stores before
anything), and it waits its turn at the worker that took it, without holding that
worker (:func:`~corral.agents.waiting.waiting`), then is answered. Its thread's later
messages wait behind it, and one person's waiting messages go in the order they were
taken. The person is told once per burst, by the app and not by an agent, that they will
be answered in a moment. Only people's messages count: approvals, schedule fires and
handoffs are other kinds of work and never pass here.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from corral.agents.llm.retry import Sleep
from corral.agents.rate_limits import MINUTE_S
from corral.agents.team import MessageLimits
from corral.agents.waiting import waiting
from corral.bot.inbound import Inbound
from corral.bot.keyed_locks import KeyedLocks
from corral.storage.limiter import Grant, Limiter, Need

log = logging.getLogger("corral.flood")

#: Says something to the person who sent the message (``ChatAdapter.notice``).
Tell = Callable[[str], Awaitable[None]]


def person_key(inbound: Inbound) -> str:
    """The limiter key of the person who sent ``inbound``."""
    return f"messages:person:{inbound.platform}:{inbound.user}"


def channel_key(inbound: Inbound) -> str:
    """The limiter key of the channel ``inbound`` was sent in."""
    return f"messages:channel:{inbound.platform}:{inbound.channel}"


class FloodGate:
    """Lets each person's message through once it fits both of its limits, kept in a
    shared :class:`Limiter` (in this process, the database or Redis) so that every
    process counts the same minute. ``window_s``, ``clock`` (the limiter's) and ``sleep``:
    a test's."""

    def __init__(
        self,
        limiter: Limiter,
        limits: MessageLimits,
        *,
        window_s: float = MINUTE_S,
        clock: Callable[[], float] = time.time,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.limiter = limiter
        self.limits = limits
        self.window_s = window_s
        self.clock = clock
        self.sleep = sleep
        #: When each person's last held message was let through: a burst goes on while
        #: the person is held again within a window of it, and is told of once.
        self._held_until: dict[str, float] = {}
        #: One waiter at a time per person, first come first served.
        self._lines: KeyedLocks[str] = KeyedLocks()

    def _needs(self, inbound: Inbound) -> list[Need]:
        needs = []
        if self.limits.person is not None and inbound.user:
            needs.append(Need(person_key(inbound), 1, self.limits.person, self.window_s))
        if self.limits.channel is not None and inbound.channel:
            needs.append(Need(channel_key(inbound), 1, self.limits.channel, self.window_s))
        return needs

    async def admit(self, inbound: Inbound, tell: Tell) -> None:
        """Return when ``inbound`` may be answered: at once under its limits, else when
        a minute's window has room for it, the person told (with ``tell``) when their
        burst begins."""
        needs = self._needs(inbound)
        if not needs:
            return
        person = person_key(inbound)
        async with self._lines.hold(person):
            waited = await self.limiter.acquire(needs)
            if isinstance(waited, Grant):
                return
            if not self._in_burst(person):
                await self._tell(tell, inbound)
            while not isinstance(waited, Grant):
                async with waiting():
                    await self.sleep(waited)
                waited = await self.limiter.acquire(needs)
            self._held_until[person] = self.clock()

    def _in_burst(self, person: str) -> bool:
        """Whether ``person`` was held less than a window ago (told of it then)."""
        now = self.clock()
        # Forget bursts that are over, so the map holds only people flooding now.
        self._held_until = {k: t for k, t in self._held_until.items() if now - t < self.window_s}
        return person in self._held_until

    async def _tell(self, tell: Tell, inbound: Inbound) -> None:
        limits = [
            f"{n} a minute from one {who}"
            for n, who in ((self.limits.person, "person"), (self.limits.channel, "channel"))
            if n is not None
        ]
        text = (
            f"Messages are coming in faster than the team takes them ({' and '.join(limits)}). "
            "Nothing is lost: yours will be answered in a moment, in order."
        )
        try:
            await tell(text)
        except Exception:  # the message still waits and is answered; only the word is lost
            log.warning("could not tell %s that their messages wait", inbound.user)
