"""The seam between the gateway and a chat platform."""

from __future__ import annotations

from typing import Protocol

from agents.conversation import Place, Reply
from bot.coordinator import Route
from bot.inbound import Inbound


class ChatAdapter(Protocol):
    """A chat platform (console, Slack, Discord) as the workers see it."""

    platform: str

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        """Show that the message was taken (who answers and why)."""
        ...

    async def post(self, place: Place, reply: Reply) -> None:
        """Post a reply under the agent's persona."""
        ...
