"""Posting a work item's replies once each, even when the item is handled again after
its process died: each part of each post is recorded as it goes out (``storage.posts``),
and a post that was partly out continues from its next part."""

from __future__ import annotations

from collections.abc import Mapping

from corral.agents.conversation import Place, Recorder, Reply
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

    async def __call__(self, place: Place, reply: Reply, *, record: Recorder | None = None) -> None:
        """Post ``reply``'s parts that are not on the platform yet, recording each;
        ``record`` goes in the write of the last part, so an earlier attempt that posted
        every part recorded it too."""
        number = self._next
        self._next += 1
        start = self.posted.get(number, 0)
        recorded = False

        async def on_part(index: int, message_id: str, last: bool) -> None:
            nonlocal recorded
            also = record if last else None
            await self.ledger.record(self.inbox_id, number, index, message_id, also=also)
            recorded = also is not None

        await self.adapter.post(place, reply, start=start, on_part=on_part)
        # Nothing was posted: the platform took no part (say, an empty text) this time,
        # or, with ``start``, every part was out before and recorded with the last.
        if record is not None and not recorded and start == 0:
            await record(None)
