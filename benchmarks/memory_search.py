"""Memory search and insert speed at scale, on SQLite and PostgreSQL.

For each database it creates an empty one (a SQLite file in a temporary folder; a
PostgreSQL database created on the server and dropped afterwards), migrates it, loads
``--memories`` memories through ``MemoryStore.add_many`` in batches of ``--batch`` (one
transaction each) and reports the insert throughput. Then it times ``MemoryStore.search``
as an agent in a channel (team + own + channel memories visible, ``--limit`` results)
for two kinds of query:

- *short*: 1–3 words, as people type in ``/memory search`` and agents pass to ``recall``;
- *message*: a chat message of 4–12 words with stop words, as the runtime searches
  before every turn.

It prints p50, p95, p99 and the maximum of each, and checks that both databases return
the same memories in the same order for every query (the data are identical and loaded
in the same order).

The memories are synthetic but shaped like text: a vocabulary of the stop words plus
30,000 made-up words, drawn with a Zipf distribution (the stop words are the most
frequent), 6–24 words each; 80 % team, 15 % one of five agents', 5 % one of three
channels'. Queries draw their words from the same distribution, so common words are
common in queries too. Made-up words are built from shared syllables, so prefix matches
reach more words than they would in English: a pessimistic case.

With ``--embeddings`` (needs ``.venv/bin/pip install -e '.[embeddings]'``), semantic search is
on: every memory is embedded as it is added (which bounds the insert rate: the model
makes a few hundred vectors a second on two cores, so load fewer memories), and each
search also embeds the query and compares it with every stored vector.

Run it from the repository root (PostgreSQL as in the test suite)::

    .venv/bin/python benchmarks/memory_search.py
    .venv/bin/python benchmarks/memory_search.py --memories 20000 --backends sqlite
    .venv/bin/python benchmarks/memory_search.py --embeddings --memories 20000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import random
import secrets
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402
from sqlalchemy import text  # noqa: E402

from corral.storage.memory import NewMemory, Scope, SqlMemoryStore  # noqa: E402
from corral.storage.search import STOP_WORDS  # noqa: E402
from corral.storage.store import Storage  # noqa: E402

POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
#: A memory as both databases can be compared on: (text, scope, agent, channel).
Found = tuple[str, str, str, str]
AGENTS = ("roo", "beaver", "owl", "otter", "lark")
CHANNELS = ("C0OPS", "C0DEV", "C0QA")
SYLLABLES: tuple[str, ...] = (
    "ka",
    "lo",
    "mi",
    "ten",
    "ser",
    "vor",
    "pla",
    "dex",
    "nu",
    "ro",
    "sta",
    "gin",
)
SYLLABLES += ("pod", "ber", "lux", "fi", "dra", "mon", "qui", "zel", "ar", "en", "is", "op", "ul")


@dataclass(frozen=True)
class Latency:
    """Milliseconds per search, sorted."""

    samples: list[float]

    def at(self, fraction: float) -> float:
        return self.samples[min(len(self.samples) - 1, int(len(self.samples) * fraction))]

    def line(self) -> str:
        return (
            f"p50 {self.at(0.50):6.2f} ms   p95 {self.at(0.95):6.2f} ms   "
            f"p99 {self.at(0.99):6.2f} ms   max {self.samples[-1]:6.2f} ms"
        )


class Words:
    """A Zipf-distributed vocabulary: stop words first, then made-up words."""

    def __init__(self, size: int, seed: int) -> None:
        rng = random.Random(seed)
        made_up: dict[str, None] = {}
        while len(made_up) < size:
            word = "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4)))
            if word not in STOP_WORDS:
                made_up[word] = None
        self.all = [*sorted(STOP_WORDS), *made_up]
        self.content = list(made_up)
        self._all_weights = list(itertools.accumulate(1 / r for r in range(1, len(self.all) + 1)))
        offset = len(STOP_WORDS)
        self._content_weights = list(
            itertools.accumulate(1 / (r + offset) for r in range(1, len(self.content) + 1))
        )

    def text(self, rng: random.Random, count: int) -> str:
        chosen = rng.choices(self.all, cum_weights=self._all_weights, k=count)
        return " ".join(chosen).capitalize() + "."

    def content_words(self, rng: random.Random, count: int) -> list[str]:
        return rng.choices(self.content, cum_weights=self._content_weights, k=count)


def memories(words: Words, count: int, seed: int) -> Iterator[NewMemory]:
    rng = random.Random(seed)
    for _ in range(count):
        text = words.text(rng, rng.randint(6, 24))
        kind = rng.random()
        scope: Scope = "team" if kind < 0.80 else "agent" if kind < 0.95 else "channel"
        yield NewMemory(
            text,
            scope=scope,
            author="U0BENCH",
            agent=rng.choice(AGENTS) if scope == "agent" else "",
            channel=rng.choice(CHANNELS) if scope == "channel" else "",
        )


def queries(words: Words, count: int, seed: int) -> dict[str, list[str]]:
    rng = random.Random(seed)
    stop = sorted(STOP_WORDS)
    short = [" ".join(words.content_words(rng, rng.randint(1, 3))) for _ in range(count)]
    messages = []
    for _ in range(count):
        said = words.content_words(rng, rng.randint(4, 12))
        said += rng.choices(stop, k=rng.randint(2, 6))
        rng.shuffle(said)
        messages.append(" ".join(said).capitalize() + "?")
    return {"short": short, "message": messages}


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, removed afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        return
    name = f"corral_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(POSTGRES_ADMIN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        admin = await asyncpg.connect(POSTGRES_ADMIN)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def bench(
    backend: str, args: argparse.Namespace, words: Words, asked: dict[str, list[str]]
) -> dict[str, list[list[Found]]]:
    """Load, then time searches; returns what each query found, for comparison."""
    async with database(backend) as url:
        storage = await Storage.open(url)
        if args.embeddings:
            storage.memory = SqlMemoryStore(storage.db, semantic=True)
        try:
            loaded = list(memories(words, args.memories, seed=2))
            started = time.perf_counter()
            for start in range(0, len(loaded), args.batch):
                await storage.memory.add_many(loaded[start : start + args.batch])
            seconds = time.perf_counter() - started
            count = len(loaded)
            # A server does not hold its memories as Python objects; neither do searches here.
            del loaded
            gc.collect()
            semantic = ", semantic search on" if args.embeddings else ""
            print(f"\n{backend}: {count:,} memories{semantic}")
            print(
                f"  insert   {count / seconds:8,.0f} memories/s "
                f"(add_many, batches of {args.batch}, {seconds:.1f} s)"
            )
            if backend == "postgresql":
                # Planner statistics, as autovacuum gathers them after a bulk load.
                async with storage.db.engine.begin() as connection:
                    await connection.execute(text("ANALYZE memories"))
            found: dict[str, list[list[Found]]] = {}
            rng = random.Random(4)
            for kind, texts in asked.items():
                for query in texts[: args.warmup]:
                    await storage.memory.search(query, agent="beaver", channel="C0DEV")
                timings, results = [], []
                for query in texts:
                    agent, channel = rng.choice(AGENTS), rng.choice(CHANNELS)
                    began = time.perf_counter()
                    hits = await storage.memory.search(
                        query, agent=agent, channel=channel, limit=args.limit
                    )
                    timings.append((time.perf_counter() - began) * 1000)
                    results.append([(m.text, m.scope, m.agent, m.channel) for m in hits])
                found[kind] = results
                empty = sum(1 for r in results if not r)
                print(
                    f"  search {kind:8} {Latency(sorted(timings)).line()}   "
                    f"({len(texts)} queries, {empty} with no result)"
                )
            return found
        finally:
            await storage.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--queries", type=int, default=1_000, help="per kind of query")
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--limit", type=int, default=10, help="results per search")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument(
        "--embeddings", action="store_true", help="semantic search on (the embeddings extra)"
    )
    args = parser.parse_args()
    words = Words(30_000, seed=1)
    asked = queries(words, args.queries, seed=3)
    results = {b: await bench(b, args, words, asked) for b in args.backends.split(",")}
    if len(results) == 2:
        first, second = results.values()
        differ = sum(
            a != b for kind in first for a, b in zip(first[kind], second[kind], strict=True)
        )
        print(f"\nsame results, same order on both databases: {'yes' if not differ else 'NO'}")
        if differ:
            print(f"  {differ} queries differ")


if __name__ == "__main__":
    asyncio.run(main())
