"""What was said in each thread, by people and by agents."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select

from storage.db import Database, utc
from storage.tables import TranscriptRow, utcnow
from storage.threads import set_owner_statement


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


class TranscriptStore:
    """Appends to and reads back the history of a thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(
        self,
        platform: str,
        channel: str,
        thread: str,
        text: str,
        *,
        user: str = "",
        agent: str = "",
        owner: str | None = None,
    ) -> None:
        """Add a message to the end of the thread's history; with ``owner``, make that
        agent the thread's owner in the same transaction."""
        statement = insert(TranscriptRow).values(
            platform=platform,
            channel=channel,
            thread=thread,
            user=user,
            agent=agent,
            text=text,
            created_at=utcnow(),
        )
        async with self.db.session() as session, session.begin():
            await session.execute(statement)
            if owner is not None:
                await session.execute(
                    set_owner_statement(self.db, platform, channel, thread, owner)
                )

    async def history(
        self, platform: str, channel: str, thread: str, limit: int = 50
    ) -> list[TranscriptEntry]:
        """The last ``limit`` messages of the thread, oldest first."""
        # Ids grow with every append, so they order the thread without clock ties.
        statement = (
            select(TranscriptRow)
            .where(
                TranscriptRow.platform == platform,
                TranscriptRow.channel == channel,
                TranscriptRow.thread == thread,
            )
            .order_by(TranscriptRow.id.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            rows = (await session.scalars(statement)).all()
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
