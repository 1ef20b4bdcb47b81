"""What was said in each thread, by people and by agents."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, insert, select
from sqlalchemy.ext.asyncio import AsyncConnection

from corral.storage.db import Database, utc
from corral.storage.keys import ThreadKey
from corral.storage.tables import TranscriptRow, utcnow
from corral.storage.threads import ThreadStore


@dataclass(frozen=True)
class TranscriptEntry:
    """One message in a thread: ``user`` is set for people, ``agent`` for agents."""

    id: int
    platform: str
    channel: str
    thread: str
    user: str
    agent: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class Line:
    """A message to add to a thread's history: ``user`` for people, ``agent`` for agents."""

    text: str
    user: str = ""
    agent: str = ""


_APPEND = insert(TranscriptRow)
# Ids grow with every append, so they order the thread without clock ties.
_HISTORY = (
    select(TranscriptRow)
    .where(
        TranscriptRow.platform == bindparam("platform"),
        TranscriptRow.channel == bindparam("channel"),
        TranscriptRow.thread == bindparam("thread"),
    )
    .order_by(TranscriptRow.id.desc())
    .limit(bindparam("limit"))
)


class TranscriptStore:
    """Appends to and reads back the history of a thread."""

    def __init__(self, db: Database, threads: ThreadStore | None = None) -> None:
        self.db = db
        self.threads = threads or ThreadStore(db)

    async def append(
        self,
        key: ThreadKey,
        text: str,
        *,
        user: str = "",
        agent: str = "",
        owner: str | None = None,
        on: AsyncConnection | None = None,
    ) -> None:
        """Add a message to the end of the history of the thread ``key``; with ``owner``,
        make that agent the thread's owner in the same transaction (``on``'s, when given)."""
        await self.append_lines(key, [Line(text, user, agent)], owner=owner, on=on)

    async def append_lines(
        self,
        key: ThreadKey,
        lines: Sequence[Line],
        *,
        owner: str | None = None,
        on: AsyncConnection | None = None,
    ) -> None:
        """Add ``lines``, in order, to the end of the history of the thread ``key``, in one
        transaction (``on``'s, when given); with ``owner``, make that agent the thread's
        owner in it too."""
        now = utcnow()
        rows = [
            {
                "platform": key.platform,
                "channel": key.channel,
                "thread": key.thread,
                "user": line.user,
                "agent": line.agent,
                "text": line.text,
                "created_at": now,
            }
            for line in lines
        ]
        async with self.db.transaction(on) as connection:
            # One row at a time: an executemany may not keep the ids in the lines' order.
            for row in rows:
                await connection.execute(_APPEND, row)
            if owner is not None:
                await self.threads.set_owner(key, owner, on=connection)

    async def history(
        self, key: ThreadKey, limit: int = 50, *, on: AsyncConnection | None = None
    ) -> list[TranscriptEntry]:
        """The last ``limit`` messages of the thread ``key``, oldest first (read in
        ``on``'s transaction, when given)."""
        params: dict[str, Any] = {
            "platform": key.platform,
            "channel": key.channel,
            "thread": key.thread,
            "limit": limit,
        }
        if on is not None:
            rows = (await on.execute(_HISTORY, params)).all()
        else:
            async with self.db.reading() as connection:
                rows = (await connection.execute(_HISTORY, params)).all()
        return [
            TranscriptEntry(
                id=row.id,
                platform=row.platform,
                channel=row.channel,
                thread=row.thread,
                user=row.user,
                agent=row.agent,
                text=row.text,
                created_at=utc(row.created_at),
            )
            for row in reversed(rows)
        ]
