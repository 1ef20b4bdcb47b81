"""The ledger of posted parts: what of a work item's posts is on the platform already.

A work item handled again after its process died posts the same things in the same
order; the ledger says, per post of the item (numbered in order) and per part of it (an
answer split into several messages), which are there, so that only the rest is posted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database
from corral.storage.tables import PostPartRow, utcnow

_POSTED = (
    select(PostPartRow.post, func.max(PostPartRow.part))
    .where(PostPartRow.inbox_id == bindparam("inbox_id"))
    .group_by(PostPartRow.post)
)


class PostLedger:
    """Records each part as it is posted, and what was posted of an item's posts."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # A part recorded twice (two workers raced for a dead item) is one part.
        self._record = db.insert(PostPartRow).on_conflict_do_nothing()

    async def posted(self, inbox_id: str) -> dict[int, int]:
        """For each post of the work item ``inbox_id`` with parts on the platform: the
        number of parts posted (the next part to post)."""
        async with self.db.reading() as connection:
            rows = (await connection.execute(_POSTED, {"inbox_id": inbox_id})).all()
        return {int(post): int(last) + 1 for post, last in rows}

    async def record(
        self,
        inbox_id: str,
        post: int,
        part: int,
        message_id: str,
        *,
        also: Callable[[AsyncConnection], Awaitable[None]] | None = None,
    ) -> None:
        """Part ``part`` of post ``post`` of the work item is on the platform; ``also``
        writes more in the same transaction (what the post said, with its last part)."""
        params = {
            "inbox_id": inbox_id,
            "post": post,
            "part": part,
            "message_id": message_id,
            "posted_at": utcnow(),
        }
        async with self.db.transaction() as connection:
            await connection.execute(self._record, params)
            if also is not None:
                await also(connection)
