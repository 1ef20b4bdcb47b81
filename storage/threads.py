"""Thread affinity: which agent owns a thread, so replies there go back to it."""

from __future__ import annotations

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.expression import Executable

from corral.storage.db import Database
from corral.storage.keys import ThreadKey
from corral.storage.tables import ThreadRow, utcnow

_OWNER = select(ThreadRow.agent).where(
    ThreadRow.platform == bindparam("platform"),
    ThreadRow.channel == bindparam("channel"),
    ThreadRow.thread == bindparam("thread"),
)


class ThreadStore:
    """Who owns which thread."""

    def __init__(self, db: Database) -> None:
        self.db = db
        # Built once: the upsert runs with every answer, and building it costs more than
        # running it.
        insert = db.insert(ThreadRow)
        self._set_owner: Executable = insert.on_conflict_do_update(
            index_elements=[ThreadRow.platform, ThreadRow.channel, ThreadRow.thread],
            set_={"agent": insert.excluded.agent, "updated_at": insert.excluded.updated_at},
        )

    async def owner(self, key: ThreadKey) -> str | None:
        """The handle of the agent that owns the thread ``key``, if one does."""
        params = {"platform": key.platform, "channel": key.channel, "thread": key.thread}
        async with self.db.reading() as connection:
            return (await connection.execute(_OWNER, params)).scalar_one_or_none()

    async def set_owner(
        self, key: ThreadKey, agent: str, *, on: AsyncConnection | None = None
    ) -> None:
        """Make ``agent`` the owner of the thread ``key``, whether or not it had one; with
        ``on``, in that connection's transaction."""
        params = {
            "platform": key.platform,
            "channel": key.channel,
            "thread": key.thread,
            "agent": agent,
            "updated_at": utcnow(),
        }
        async with self.db.transaction(on) as connection:
            await connection.execute(self._set_owner, params)
