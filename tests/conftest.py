"""Fixtures for the whole suite: a fresh database on SQLite and on PostgreSQL, the fake
model server, and the team wired end to end."""

from __future__ import annotations

import gc
import secrets
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from fakes.model_server import FakeModelServer
from harness import Harness

from corral.storage.store import Storage

#: The server CI provides; tests create and drop their own databases on it.
POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


@pytest.fixture(autouse=True)
def _thaw_the_heap() -> Iterator[None]:
    """``corral run`` freezes its heap once it is ready (bot/heap.py); after a test that
    ran it in this process, the collector gets those objects back."""
    yield
    if gc.get_freeze_count():
        gc.unfreeze()


def pytest_configure(config: pytest.Config) -> None:
    for backend in ("sqlite", "postgresql"):
        config.addinivalue_line("markers", f"{backend}: runs against a {backend} database")


async def _admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(POSTGRES_ADMIN_DSN)
    except (OSError, asyncpg.PostgresError) as exc:
        # Never skip: a suite that quietly ignores PostgreSQL proves nothing about it.
        raise RuntimeError(
            f"PostgreSQL is required at {POSTGRES_ADMIN_DSN} and is not reachable: {exc}"
        ) from exc


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.sqlite),
        pytest.param("postgresql", marks=pytest.mark.postgresql),
    ]
)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database: a SQLite file, or a PostgreSQL database created
    for this test and dropped after it."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'corral.db'}"
        return
    name = f"corral_t_{secrets.token_hex(6)}"
    admin = await _admin()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield POSTGRES_URL.format(name=name)
    admin = await _admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def storage(database_url: str) -> AsyncIterator[Storage]:
    """Storage on a migrated, empty database."""
    opened = await Storage.open(database_url)
    yield opened
    await opened.close()


@pytest.fixture
async def model_server() -> AsyncIterator[FakeModelServer]:
    """The fake Anthropic/OpenAI server, in the test's event loop."""
    async with FakeModelServer() as server:
        yield server


@pytest.fixture
async def harness(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Harness]:
    """The small test team wired end to end: gateway, workers, coordinator, runtime."""
    built = Harness.build(storage, model_server)
    built.workers.start()
    yield built
    await built.close()


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
async def redis_prefix() -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis; its keys are deleted after."""
    from redis.asyncio import Redis

    prefix = f"corral-test:{uuid.uuid4().hex}:"
    yield prefix
    client = Redis.from_url(REDIS_URL)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()
