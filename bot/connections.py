"""Whether the database and Redis can be reached, said in one line: for ``corral check``
and for every command that starts on them. URLs are shown with their secrets masked."""

from __future__ import annotations

import asyncio
from pathlib import Path

from corral.storage.urls import scrubbed, shown_url

#: The longest reaching the database or Redis may take before it counts as unreachable.
REACH_TIMEOUT_S = 10.0


def one_line(exc: BaseException, url: str = "") -> str:
    """What ``exc`` says, on one line, with ``url``'s secrets masked."""
    # Without a closing full stop: the messages that quote it go on after it.
    text = " ".join(str(exc).split()).rstrip(".") or type(exc).__name__
    return scrubbed(text, url) if url else text


async def database_problem(url: str) -> str | None:
    """Why the database at ``url`` cannot be used (None: it answers ``SELECT 1``).

    A SQLite file that does not exist yet is not opened (that would create it): its
    folder must exist and be writable, for the first start to create it there. A URL
    SQLAlchemy cannot read is not reported here: the environment's check says so.
    """
    from sqlalchemy import text
    from sqlalchemy.exc import ArgumentError

    from corral.storage.db import Database

    try:
        db = Database(url)
    except ArgumentError:
        return None
    except Exception as exc:
        return f"DATABASE_URL is not usable ({one_line(exc, url)})"
    try:
        if db.is_sqlite and db.url.database and db.url.database != ":memory:":
            path = Path(db.url.database)
            if not await asyncio.to_thread(path.exists):
                return await asyncio.to_thread(_creatable, path)
        async with asyncio.timeout(REACH_TIMEOUT_S):
            async with db.reading() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as exc:
        return f"cannot reach the database at {shown_url(url)}: {one_line(exc, url)}"
    finally:
        await db.dispose()
    return None


async def redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used (None: it answers PING)."""
    from redis.asyncio import Redis

    try:
        client = Redis.from_url(url, socket_connect_timeout=REACH_TIMEOUT_S)
    except ValueError as exc:
        return f"REDIS_URL is not a Redis URL ({one_line(exc, url)})"
    try:
        async with asyncio.timeout(REACH_TIMEOUT_S):
            await client.ping()
    except Exception as exc:
        return f"cannot reach Redis at {shown_url(url)}: {one_line(exc, url)}"
    finally:
        await client.aclose()
    return None


def _creatable(path: Path) -> str | None:
    """Why the SQLite file ``path`` cannot be created (None: it can)."""
    import os

    folder = path.parent
    if folder.is_dir() and os.access(folder, os.W_OK | os.X_OK):
        return None
    return f"the SQLite database {path} cannot be created: {folder} is not a writable folder"
