"""Thread affinity: which agent owns a thread, so replies there go back to it."""

from __future__ import annotations

from sqlalchemy.sql.expression import Executable

from storage.db import Database
from storage.tables import ThreadRow, utcnow


class ThreadStore:
    """Who owns which thread."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def owner(self, platform: str, channel: str, thread: str) -> str | None:
        """The handle of the agent that owns the thread, if one does."""
        async with self.db.session() as session:
            row = await session.get(ThreadRow, (platform, channel, thread))
            return row.agent if row else None

    async def set_owner(self, platform: str, channel: str, thread: str, agent: str) -> None:
        """Make ``agent`` the thread's owner, whether or not it had one."""
        statement = set_owner_statement(self.db, platform, channel, thread, agent)
        async with self.db.session() as session, session.begin():
            await session.execute(statement)


def set_owner_statement(
    db: Database, platform: str, channel: str, thread: str, agent: str
) -> Executable:
    """The upsert that makes ``agent`` the thread's owner (for use in any transaction)."""
    now = utcnow()
    statement = db.insert(ThreadRow).values(
        platform=platform, channel=channel, thread=thread, agent=agent, updated_at=now
    )
    return statement.on_conflict_do_update(
        index_elements=[ThreadRow.platform, ThreadRow.channel, ThreadRow.thread],
        set_={"agent": agent, "updated_at": now},
    )
