"""A process that starts Corral's storage on SQLite files it is given, one a line on
stdin: it opens the database, migrates it and answers ``ok``, or the error on one line.
Two of these fed the same new file at once start as two Corral processes would."""

from __future__ import annotations

import asyncio
import sys

from corral.storage.db import Database


async def _start(path: str) -> str:
    db = Database(f"sqlite+aiosqlite:///{path}")
    try:
        await db.upgrade()
    except Exception as error:
        return f"{type(error).__name__}: {error}".replace("\n", " ")
    finally:
        await db.dispose()
    return "ok"


def main() -> None:
    print("ready", flush=True)
    for line in sys.stdin:
        print(asyncio.run(_start(line.strip())), flush=True)


if __name__ == "__main__":
    main()
