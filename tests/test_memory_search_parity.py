"""Word search gives the same results in the same order on SQLite and PostgreSQL, and
both agree with a plain-Python statement of the ranking."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from databases import new_database

from corral.storage.memory import MemoryRecord, Scope
from corral.storage.search import query_words, words
from corral.storage.store import Storage

#: Few words, so that memories share many of them and rankings have many ties.
VOCABULARY = [
    *("deploy", "deploys", "deployment", "staging", "production", "postgres", "backup"),
    *("backups", "nightly", "friday", "window", "release", "checklist", "owner", "login"),
    *("signup", "invoice", "customer", "email", "vpn", "grafana", "dashboard", "alert"),
    *("pager", "rotation", "budget", "quarter", "roadmap", "kangaroo", "beaver", "owl"),
    *("über", "straße", "s3", "k8s", "2fa", "api", "v2", "runbook", "incident", "retro"),
]
AGENTS = ("roo", "owl")
CHANNELS = ("C1", "C2")


@pytest.fixture
async def both(tmp_path: Path) -> AsyncIterator[tuple[Storage, Storage]]:
    """A new SQLite database and a new PostgreSQL database, side by side."""
    async with (
        new_database("sqlite", tmp_path) as sqlite_url,
        new_database("postgresql", tmp_path) as postgres_url,
    ):
        sqlite = await Storage.open(sqlite_url)
        postgres = await Storage.open(postgres_url)
        try:
            yield sqlite, postgres
        finally:
            await sqlite.close()
            await postgres.close()


def expected(
    memories: list[MemoryRecord], query: str, agent: str | None, channel: str | None, limit: int
) -> list[int]:
    """The ranking as documented: visible memories with a word that starts with a query
    word; most query words matched first, then the newest (highest id)."""
    asked = query_words(query)
    scored = []
    for m in memories:
        visible = (
            m.scope == "team"
            or (m.scope == "agent" and m.agent == agent)
            or (m.scope == "channel" and m.channel == channel)
        )
        have = words(m.text)
        score = sum(any(w.startswith(q) for w in have) for q in asked)
        if visible and score:
            scored.append((-score, -m.id))
    return [-negative_id for _, negative_id in sorted(scored)[:limit]]


async def test_search_order_is_the_same_on_sqlite_and_postgresql(
    both: tuple[Storage, Storage],
) -> None:
    rng = random.Random(20261130)
    texts = [
        " ".join(rng.choices(VOCABULARY, k=rng.randint(2, 8))).capitalize() for _ in range(250)
    ]
    texts += rng.sample(texts, 25)  # duplicates, merged
    for storage in both:
        added: list[int] = []
        order = random.Random(7)
        for text in texts:
            kind = order.random()
            scope: Scope = "team" if kind < 0.6 else "agent" if kind < 0.85 else "channel"
            record, _ = await storage.memory.add(
                text,
                scope=scope,
                author="U1",
                agent=order.choice(AGENTS) if scope == "agent" else "",
                channel=order.choice(CHANNELS) if scope == "channel" else "",
            )
            added.append(record.id)
        # Forgetting and promoting change the indexes too.
        for memory_id in order.sample(added, 20):
            await storage.memory.forget(memory_id, by="U0ADMIN")
        for memory_id in order.sample(added, 20):
            await storage.memory.promote(memory_id, by="U0ADMIN")

    sqlite, postgres = both
    # Ids differ (a PostgreSQL sequence skips the values of merged duplicates) but are in
    # the same order, so memories are compared by what they are.
    stored = {db: await db.memory.list(limit=None) for db in both}
    assert [_key(m) for m in stored[sqlite]] == [_key(m) for m in stored[postgres]]
    checked = 0
    for _ in range(200):
        chosen = rng.sample(VOCABULARY, rng.randint(1, 5))
        # Some words cut short: prefixes.
        query = " ".join(w[: rng.randint(2, len(w))] if len(w) > 2 else w for w in chosen)
        agent = rng.choice((*AGENTS, None))
        channel = rng.choice((*CHANNELS, None))
        limit = rng.randint(1, 15)
        found = {}
        for db in both:
            hits = await db.memory.search(query, agent=agent, channel=channel, limit=limit)
            assert [m.id for m in hits] == expected(stored[db], query, agent, channel, limit)
            found[db] = [_key(m) for m in hits]
        assert found[sqlite] == found[postgres], query
        checked += bool(found[sqlite])
    assert checked > 160  # the queries found things: the comparison is not vacuous


def _key(memory: MemoryRecord) -> tuple[str, str, str, str]:
    return (memory.text, memory.scope, memory.agent, memory.channel)
