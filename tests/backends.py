"""Backends for the conformance suites (tests/test_conformance_*.py): each suite runs
against every implementation of its contract, handed out as several handles on one shared
state, as several processes of one deployment would hold them."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from conftest import REDIS_URL
from databases import new_database
from redis.asyncio import Redis

from corral.storage.db import Database

DATABASES = [
    pytest.param("sqlite", marks=pytest.mark.sqlite),
    pytest.param("postgresql", marks=pytest.mark.postgresql),
]


class Clock:
    """A clock that moves only when told, for limits whose refill a test steps through,
    until it is set ``running`` (then it is the real clock)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.running = False

    def __call__(self) -> float:
        return time.time() if self.running else self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@asynccontextmanager
async def databases(backend: str, folder: Path) -> AsyncIterator[Callable[[], Database]]:
    """A new, migrated ``backend`` database, and a function that opens another
    connection pool on it (another process) each time it is called; all closed after."""
    async with new_database(backend, folder) as url:
        opened = [Database(url)]
        await opened[0].upgrade()

        def another() -> Database:
            opened.append(Database(url))
            return opened[-1]

        try:
            yield another
        finally:
            for db in opened:
                await db.dispose()


@asynccontextmanager
async def redis_clients() -> AsyncIterator[tuple[Callable[[], Redis], str]]:
    """A function making clients of the test Redis (another process each), and a key
    prefix of this test's own, deleted at the end."""
    prefix = f"corral-test:{uuid.uuid4().hex}:"
    clients: list[Redis] = []

    def another() -> Redis:
        clients.append(Redis.from_url(REDIS_URL, socket_timeout=5.0))
        return clients[-1]

    try:
        yield another, prefix
    finally:
        cleaner = another()
        keys = [key async for key in cleaner.scan_iter(match=prefix + "*")]
        if keys:
            await cleaner.delete(*keys)
        for client in clients:
            await client.aclose()
