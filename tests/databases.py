"""More databases for tests that need two: a new, empty one of a given kind."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from conftest import POSTGRES_ADMIN_DSN, POSTGRES_URL


@asynccontextmanager
async def new_database(backend: str, folder: Path) -> AsyncIterator[str]:
    """The URL of a new, empty database: a SQLite file in ``folder``, or a PostgreSQL
    database dropped afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / f'{secrets.token_hex(4)}.db'}"
        return
    name = f"corral_t_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield POSTGRES_URL.format(name=name)
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN_DSN)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
