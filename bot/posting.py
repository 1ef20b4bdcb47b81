"""Posting a work item's replies once each, even when the item is handled again after
its process died: each part of each post is recorded as it goes out (``storage.posts``),
and a post that was partly out continues from its next part."""

from __future__ import annotations

from collections.abc import Mapping

from corral.agents.conversation import Place, Reply
from corral.bot.adapter import ChatAdapter
from corral.storage.inbox import InboxRecord
from corral.storage.posts import PostLedger


class LedgerPoster:
    """The poster the worker hands the runtime for one work item.

    Posts are numbered in the order the handling makes them; handled again, the item
    makes the same posts in the same order, so post *n* of this attempt is post *n* of
    the last one, and what of it is on the platform already is not posted again.
    """

    def __init__(
        self,
        adapter: ChatAdapter,
        ledger: PostLedger,
        inbox_id: str,
        posted: Mapping[int, int] | None = None,
    ) -> None:
        self.adapter = adapter
        self.ledger = ledger
        self.inbox_id = inbox_id
        #: Post number → how many of its parts earlier attempts posted.
        self.posted = dict(posted or {})
        self._next = 0

    @classmethod
    async def open(
        cls, adapter: ChatAdapter, ledger: PostLedger, item: InboxRecord
    ) -> LedgerPoster:
        """The poster for ``item``; a first attempt has posted nothing, and asks nothing."""
        posted = await ledger.posted(item.id) if item.attempts > 1 else {}
        return cls(adapter, ledger, item.id, posted)

    async def __call__(self, place: Place, reply: Reply) -> None:
        """Post ``reply``'s parts that are not on the platform yet, recording each."""
        number = self._next
        self._next += 1

        async def on_part(index: int, message_id: str) -> None:
            await self.ledger.record(self.inbox_id, number, index, message_id)

        await self.adapter.post(place, reply, start=self.posted.get(number, 0), on_part=on_part)
