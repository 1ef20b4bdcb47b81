"""The seam between the gateway and a chat platform."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corral.agents.conversation import Place, Reply
from corral.bot.coordinator import Route
from corral.bot.inbound import Inbound


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

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        """Show that the message was taken (who answers and why)."""
        ...

    async def unanswered(self, inbound: Inbound) -> None:
        """The message gets no answer (it is not for the team): take back any sign
        shown that it was taken."""
        ...

    async def post(self, place: Place, reply: Reply) -> None:
        """Post a reply under the agent's persona."""
        ...

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        """The thread's messages older than message ``before``, oldest first, as far as
        the platform keeps threads (empty where Corral's own transcript is all there is)."""
        ...
