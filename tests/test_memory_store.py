"""The memory store on SQLite and PostgreSQL: merging, word search and its ranking,
scopes, forget and promote (audited), batched adds."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from corral.storage.memory import MemoryRecord, NewMemory
from corral.storage.search import MAX_QUERY_WORDS, query_words, search_terms, words
from corral.storage.store import Storage
from corral.storage.tables import MemoryRow


def ids(records: list[MemoryRecord]) -> list[int]:
    return [m.id for m in records]


def aware_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


# --- words --------------------------------------------------------------------------------


def test_words_are_normalised_letters_and_digits() -> None:
    assert words("Set MAX_RETRIES to 3, not 99.9%!") == [
        "set",
        "max",
        "retries",
        "to",
        "3",
        "not",
        "99",
        "9",
    ]
    # Case folding goes beyond ASCII; NFKC folds compatibility forms (the ﬁ ligature).
    assert words("Straße ÜBER-Dashboard ﬁle") == ["strasse", "über", "dashboard", "file"]
    assert words("a a A") == ["a"]
    assert words("x" * 65 + " kept") == ["kept"]  # data, not a word
    assert search_terms("The deploy  window\nis Friday") == "the deploy window is friday"


def test_query_words_skip_stop_words_and_keep_the_longest() -> None:
    assert query_words("Where are the POSTGRES backups?") == ["postgres", "backups"]
    assert query_words("the and of a x") == []
    long = "alpha bravo charlie delta echo foxtrot golf hotel india juliett kilo"
    kept = query_words(long)
    assert len(kept) == MAX_QUERY_WORDS
    # The longest words, in the query's order: the short ones say least.
    assert kept == ["alpha", "bravo", "charlie", "delta", "foxtrot", "hotel", "india", "juliett"]


# --- adding -------------------------------------------------------------------------------


async def test_memory_merges_the_same_text_in_the_same_place(storage: Storage) -> None:
    first, new = await storage.memory.add("Deploys happen on  Fridays", scope="team", author="U1")
    assert new and first.scope == "team" and aware_utc(first.created_at)
    again, new = await storage.memory.add(
        "  deploys happen on\nfridays ", scope="team", author="agent:roo"
    )
    assert not new
    assert again.id == first.id and again.text == "Deploys happen on  Fridays"
    assert again.author == "U1" and again.updated_at >= first.updated_at
    # The same text in another agent's own memory is another memory.
    private, new = await storage.memory.add(
        "Deploys happen on Fridays", scope="agent", agent="roo", author="agent:roo"
    )
    assert new and private.id != first.id
    with pytest.raises(ValueError):
        await storage.memory.add("   ", scope="team", author="U1")
    with pytest.raises(ValueError):
        await storage.memory.add("whose?", scope="agent", author="U1")


async def test_memory_concurrent_adds_of_one_text_store_it_once(storage: Storage) -> None:
    results = await asyncio.gather(
        *(
            storage.memory.add("The VPN is vpn.example.com", scope="team", author="U1")
            for _ in range(10)
        )
    )
    assert len({record.id for record, _ in results}) == 1
    assert [new for _, new in results].count(True) == 1


async def test_add_many_merges_duplicates_and_keeps_the_times(storage: Storage) -> None:
    known, _ = await storage.memory.add("Invoices go out monthly", scope="team", author="U1")
    day = datetime(2026, 1, 1, tzinfo=UTC)
    later = day + timedelta(days=2)
    added = await storage.memory.add_many(
        [
            NewMemory("Backups run nightly", "team", "U2", created_at=day, updated_at=day),
            NewMemory("backups  run NIGHTLY", "team", "U3", created_at=day, updated_at=later),
            NewMemory("invoices go out monthly", "team", "U4", created_at=day, updated_at=day),
            NewMemory("Backups run nightly", "agent", "agent:owl", agent="owl"),
        ]
    )
    assert (added.added, added.merged) == (2, 2)
    team = {m.text: m for m in await storage.memory.list(scope="team")}
    assert set(team) == {"Invoices go out monthly", "Backups run nightly"}
    backups = team["Backups run nightly"]
    # The first of the duplicates is kept, with the later update time of the two.
    assert (backups.author, backups.created_at) == ("U2", day)
    assert backups.updated_at == later
    # What was there keeps its id, author and times: the import's are older.
    assert team["Invoices go out monthly"] == known
    assert ids(await storage.memory.search("backups")) == [backups.id]
    with pytest.raises(ValueError):
        await storage.memory.add_many(
            [NewMemory("fine", "team", "U1"), NewMemory(" ", "team", "U1")]
        )
    assert len(await storage.memory.list(limit=None)) == 3  # nothing of the refused batch


async def test_add_many_stores_large_batches(storage: Storage) -> None:
    batch = [NewMemory(f"Fact number {n} about kangaroos", "team", "U1") for n in range(1200)]
    assert (await storage.memory.add_many(batch)).added == 1200
    assert (await storage.memory.add_many(batch)).merged == 1200
    found = await storage.memory.search("kangaroos", limit=3)
    assert [m.text for m in found] == [
        f"Fact number {n} about kangaroos" for n in (1199, 1198, 1197)
    ]


# --- search -------------------------------------------------------------------------------


async def test_search_ranks_by_words_matched_then_newest(storage: Storage) -> None:
    postgres, _ = await storage.memory.add("Staging runs on Postgres", scope="team", author="U")
    backups, _ = await storage.memory.add("Nightly backups go to S3", scope="team", author="U")
    both, _ = await storage.memory.add(
        "Postgres backups are kept for 30 days", scope="team", author="U"
    )
    await storage.memory.add("Lunch is at noon", scope="team", author="U")

    query = "Where are the POSTGRES backups?"
    assert ids(await storage.memory.search(query)) == [both.id, backups.id, postgres.id]
    assert ids(await storage.memory.search("postgres")) == [both.id, postgres.id]
    assert ids(await storage.memory.search(query, limit=1)) == [both.id]
    assert await storage.memory.search("the and of a") == []
    assert await storage.memory.search("kubernetes") == []
    assert await storage.memory.search("postgres", limit=0) == []
    # Merging a duplicate does not make it newer: "newest" is the memory's age.
    await storage.memory.add("staging runs on  POSTGRES", scope="team", author="U")
    assert ids(await storage.memory.search(query)) == [both.id, backups.id, postgres.id]


async def test_search_matches_words_by_their_beginning(storage: Storage) -> None:
    deploys, _ = await storage.memory.add("Deploys need a green build", scope="team", author="U")
    deployment, _ = await storage.memory.add("The deployment runbook", scope="team", author="U")
    await storage.memory.add("We redeploy rarely", scope="team", author="U")
    retries, _ = await storage.memory.add("set MAX_RETRIES to 3", scope="team", author="U")
    umlaut, _ = await storage.memory.add("Über-Dashboard is Grafana", scope="team", author="U")
    street, _ = await storage.memory.add("The office is on Hauptstraße", scope="team", author="U")
    percent, _ = await storage.memory.add("SLA is 99.9% uptime", scope="team", author="U")

    assert ids(await storage.memory.search("deploy")) == [deployment.id, deploys.id]
    assert ids(await storage.memory.search("retries")) == [retries.id]
    assert ids(await storage.memory.search("max_retries")) == [retries.id]
    assert ids(await storage.memory.search("ÜBER-dashboard")) == [umlaut.id]
    assert ids(await storage.memory.search("HAUPTSTRASSE")) == [street.id]
    assert ids(await storage.memory.search("99.9%")) == [percent.id]
    # Characters with a meaning in FTS5 or tsquery syntax are only separators here.
    for odd in ('"deploy', "deploy*", "deploy:*", "deploy' | 'x", "NOT deploy", "(deploy)"):
        assert ids(await storage.memory.search(odd)) == [deployment.id, deploys.id], odd


async def test_search_never_shows_another_agents_memory(storage: Storage) -> None:
    team, _ = await storage.memory.add(
        "release checklist lives in Notion", scope="team", author="U"
    )
    roo, _ = await storage.memory.add(
        "release notes are my job", scope="agent", agent="roo", author="agent:roo"
    )
    owl, _ = await storage.memory.add(
        "release owl secrets", scope="agent", agent="owl", author="agent:owl"
    )
    ops, _ = await storage.memory.add(
        "release freeze in #ops", scope="channel", channel="C-ops", author="U"
    )

    assert set(ids(await storage.memory.search("release", agent="roo"))) == {team.id, roo.id}
    assert set(ids(await storage.memory.search("release", agent="owl", channel="C-ops"))) == {
        team.id,
        owl.id,
        ops.id,
    }
    assert ids(await storage.memory.search("release", channel="C-dev")) == [team.id]
    # Matching more words does not make another agent's memory visible.
    assert owl.id not in ids(await storage.memory.search("release owl secrets", agent="roo"))

    assert ids(await storage.memory.list(scope="agent", agent="roo")) == [roo.id]
    assert ids(await storage.memory.list()) == [ops.id, owl.id, roo.id, team.id]
    assert len(await storage.memory.list(limit=2)) == 2
    assert len(await storage.memory.list(limit=None)) == 4


async def test_search_fills_up_with_single_word_matches(storage: Storage) -> None:
    """The two stages of a search (two words or more, then one) join seamlessly."""
    one = [
        (await storage.memory.add(f"alpha note {n}", scope="team", author="U"))[0] for n in range(4)
    ]
    two, _ = await storage.memory.add("alpha and beta together", scope="team", author="U")
    hidden, _ = await storage.memory.add(
        "alpha beta private", scope="agent", agent="owl", author="agent:owl"
    )
    newer = [
        (await storage.memory.add(f"beta item {n}", scope="team", author="U"))[0] for n in range(2)
    ]
    found = await storage.memory.search("alpha beta", agent="roo", limit=5)
    assert ids(found) == [two.id, newer[1].id, newer[0].id, one[3].id, one[2].id]
    assert hidden.id not in ids(await storage.memory.search("alpha beta", agent="roo", limit=50))
    assert ids(await storage.memory.search("alpha beta", agent="owl", limit=2)) == [
        hidden.id,
        two.id,
    ]


# --- forget and promote -------------------------------------------------------------------


async def test_memory_forget_is_audited(storage: Storage) -> None:
    memory, _ = await storage.memory.add("temporary fact", scope="team", author="U1")
    forgotten = await storage.memory.forget(memory.id, by="U-admin")
    assert forgotten is not None and forgotten.text == "temporary fact"
    assert await storage.memory.get(memory.id) is None
    assert await storage.memory.forget(memory.id, by="U-admin") is None
    assert await storage.memory.search("temporary fact") == []

    entries = await storage.audit.recent()
    assert [(e.actor, e.action, e.subject, e.detail) for e in entries] == [
        ("U-admin", "memory.forget", str(memory.id), "temporary fact")
    ]
    assert aware_utc(entries[0].created_at)


async def test_memory_promote_moves_an_agent_memory_to_the_team(storage: Storage) -> None:
    private, _ = await storage.memory.add(
        "Customer X prefers email", scope="agent", agent="roo", author="agent:roo"
    )
    assert await storage.memory.search("customer email", agent="owl") == []
    promoted = await storage.memory.promote(private.id, by="U-admin")
    assert promoted is not None
    assert (promoted.id, promoted.scope, promoted.agent) == (private.id, "team", "")
    assert promoted.created_at == private.created_at
    assert ids(await storage.memory.search("customer email", agent="owl")) == [private.id]
    assert await storage.memory.promote(private.id, by="U-admin") is None

    # Promoting what the team already knows merges the two.
    team, _ = await storage.memory.add("Office closes at 6", scope="team", author="U1")
    duplicate, _ = await storage.memory.add(
        "office closes at 6", scope="agent", agent="owl", author="agent:owl"
    )
    merged = await storage.memory.promote(duplicate.id, by="U-admin")
    assert merged is not None and merged.id == team.id
    assert await storage.memory.get(duplicate.id) is None
    assert ids(await storage.memory.search("office closes", agent="owl")) == [team.id]
    async with storage.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(MemoryRow)) == 2

    actions = [(e.action, e.subject) for e in await storage.audit.recent()]
    assert actions == [
        ("memory.promote", str(duplicate.id)),
        ("memory.promote", str(private.id)),
    ]
