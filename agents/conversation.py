"""Where a turn happens and what the runtime asks to be posted: platform-neutral values
that the gateway hands down and the adapters render."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from corral.storage.keys import ThreadKey

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncConnection

ReplyKind = Literal["answer", "handoff", "escalation", "approval", "notice", "error"]


@dataclass(frozen=True)
class Place:
    """A thread on a platform. ``thread`` is the id of the thread's first message."""

    platform: str
    channel: str
    thread: str
    channel_name: str = ""

    @property
    def key(self) -> ThreadKey:
        """The thread's key in storage (its platform, channel and thread)."""
        return ThreadKey(self.platform, self.channel, self.thread)

    def elsewhere(self, channel: str) -> Place:
        """A new conversation in another channel of the same platform."""
        return Place(self.platform, channel, "", channel)


@dataclass(frozen=True)
class Reply:
    """Something an agent says, or something said about an agent's run."""

    agent: str
    text: str
    kind: ReplyKind = "answer"
    run_id: str = ""
    #: For approval requests: the approval's id (adapters render buttons for it).
    approval_id: str = ""


#: Records what a post said, given the transaction that records the post's last part as
#: posted (None where the poster keeps no such record), so that both are one write.
Recorder = Callable[["AsyncConnection | None"], Awaitable[None]]


class Poster(Protocol):
    """Posts a reply at a place under the agent's persona (the adapter's job)."""

    async def __call__(self, place: Place, reply: Reply, *, record: Recorder | None = None) -> None:
        """Post ``reply``; then ``record`` it, once, unless an earlier attempt did."""
        ...
