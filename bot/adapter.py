"""The seam between the gateway and a chat platform."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from corral.agents.conversation import Place, Reply
from corral.bot.coordinator import Route
from corral.bot.inbound import Inbound

#: Told of each part of a post as it is on the platform: its index, the platform's id, and
#: whether it is the post's last part.
OnPart = Callable[[int, str, bool], Awaitable[None]]


@dataclass(frozen=True)
class ThreadLine:
    """A message of a thread as the platform has it: said by a person (``user``, a
    display name) or by one of the team's agents (``agent``, its handle)."""

    text: str
    user: str = ""
    agent: str = ""


class ChatAdapter(Protocol):
    """A chat platform (console, Slack, Discord) as the workers see it."""

    platform: str

    async def with_names(self, inbound: Inbound) -> Inbound:
        """The message with the channel's and sender's names filled in where the adapter
        left them to be asked of the platform here, off the path of the platform's ack."""
        ...

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        """Show that the message was taken (who answers and why)."""
        ...

    async def unanswered(self, inbound: Inbound) -> None:
        """The message gets no answer (it is not for the team): take back any sign
        shown that it was taken."""
        ...

    async def post(
        self, place: Place, reply: Reply, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        """Post a reply under the agent's persona, split into the messages the platform
        takes; only the parts from ``start`` on (the earlier ones are there already).
        ``on_part`` hears of each part as soon as it is posted. Returns the platform's
        ids of the messages posted."""
        ...

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        """The thread's messages older than message ``before``, oldest first, as far as
        the platform keeps threads (empty where Corral's own transcript is all there is)."""
        ...

    async def notice(self, inbound: Inbound, text: str) -> None:
        """The app itself (no agent's persona) tells the person who wrote ``inbound``
        something about it (a refusal, a redaction, a wait): only to that person where
        the platform can (Slack: ephemeral), else in the thread, addressed to them."""
        ...
