"""The stores, on SQLite and on PostgreSQL: deduplication, exclusivity, scoping, audit.
Memory and tasks have their own files: ``test_memory_*.py``, ``test_tasks.py``."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text, update

from corral.storage.db import Database, normalise_url
from corral.storage.ids import new_id
from corral.storage.inbox import NewInbound
from corral.storage.keys import ThreadKey
from corral.storage.queue import InProcessQueue
from corral.storage.store import Storage
from corral.storage.tables import InboxRow, RunRow


def inbound(event_id: str = "Ev1", message_id: str = "1700000000.000100", **kw: str) -> NewInbound:
    fields = {
        "platform": "slack",
        "channel": "C1",
        "thread": "1700000000.000100",
        "user": "U1",
        "text": "hello team",
    } | kw
    return NewInbound(event_id=event_id, message_id=message_id, payload={"dm": False}, **fields)


def aware_utc(value: datetime | None) -> bool:
    return value is not None and value.utcoffset() == timedelta(0)


# --- database and ids ---------------------------------------------------------------------


def test_urls_get_async_drivers_and_absolute_sqlite_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sqlite = normalise_url("sqlite:///corral.db")
    assert sqlite.drivername == "sqlite+aiosqlite"
    assert sqlite.database == str(tmp_path / "corral.db")
    assert normalise_url("sqlite:///:memory:").database == ":memory:"
    for url in ("postgresql://u@h/db", "postgres://u@h/db", "postgresql+asyncpg://u@h/db"):
        assert normalise_url(url).render_as_string() == "postgresql+asyncpg://u@h/db"
    with pytest.raises(ValueError, match="unsupported database"):
        Database("mysql://u@h/db")


async def test_relative_sqlite_path_is_under_the_working_directory_and_uses_wal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    storage = await Storage.open("sqlite:///relative.db")
    try:
        assert storage.db.is_sqlite
        async with storage.db.session() as session:
            mode = (await session.execute(text("PRAGMA journal_mode"))).scalar_one()
            timeout = (await session.execute(text("PRAGMA busy_timeout"))).scalar_one()
    finally:
        await storage.close()
    assert (tmp_path / "relative.db").is_file()
    assert mode == "wal"
    assert timeout > 0


def test_ids_are_prefixed_and_random() -> None:
    ids = {new_id("r") for _ in range(100)}
    assert len(ids) == 100
    assert all(re.fullmatch(r"r-[0-9a-f]{10}", i) for i in ids)


# --- inbox --------------------------------------------------------------------------------


async def test_inbox_stores_a_message_with_all_its_fields(storage: Storage) -> None:
    inbox_id = await storage.inbox.add(inbound())
    assert inbox_id is not None and inbox_id.startswith("in-")
    record = await storage.inbox.get(inbox_id)
    assert record is not None
    assert (record.platform, record.event_id, record.channel) == ("slack", "Ev1", "C1")
    assert (record.user, record.text, record.payload) == ("U1", "hello team", {"dm": False})
    assert (record.status, record.attempts) == ("pending", 0)
    assert aware_utc(record.received_at)
    assert record.claimed_at is None and record.finished_at is None
    assert await storage.inbox.get("in-missing") is None


async def test_inbox_dedupes_by_event_id_and_by_message(storage: Storage) -> None:
    first = await storage.inbox.add(inbound("Ev1", "m1"))
    assert first is not None
    # A redelivery of the same event.
    assert await storage.inbox.add(inbound("Ev1", "m2")) is None
    # The same message under another event id (Slack: app_mention and message).
    assert await storage.inbox.add(inbound("Ev2", "m1")) is None
    # The same message id elsewhere is another message.
    assert await storage.inbox.add(inbound("Ev3", "m1", channel="C2")) is not None
    assert await storage.inbox.add(inbound("Ev1", "m1", platform="discord")) is not None


async def test_inbox_concurrent_adds_of_one_message_store_it_once(storage: Storage) -> None:
    results = await asyncio.gather(
        *(storage.inbox.add(inbound(f"Ev{i}", "m-same")) for i in range(10))
    )
    assert len([r for r in results if r is not None]) == 1
    async with storage.db.session() as session:
        assert await session.scalar(select(func.count()).select_from(InboxRow)) == 1


async def test_inbox_claim_is_exclusive_under_concurrency(storage: Storage) -> None:
    inbox_id = await storage.inbox.add(inbound())
    assert inbox_id is not None
    claims = await asyncio.gather(*(storage.inbox.claim(inbox_id) for _ in range(10)))
    won = [c for c in claims if c is not None]
    assert len(won) == 1
    assert (won[0].status, won[0].attempts) == ("working", 1)
    assert aware_utc(won[0].claimed_at)

    await storage.inbox.finish(inbox_id, "done")
    record = await storage.inbox.get(inbox_id)
    assert record is not None and record.status == "done" and aware_utc(record.finished_at)
    assert await storage.inbox.claim(inbox_id) is None
    with pytest.raises(ValueError):
        await storage.inbox.finish(inbox_id, "working")


async def test_inbox_unfinished_returns_pending_and_stale_work(storage: Storage) -> None:
    ids = [await storage.inbox.add(inbound(f"Ev{i}", f"m{i}")) for i in range(4)]
    first, fresh, stale, finished = ids
    assert first and fresh and stale and finished
    for claimed in (fresh, stale, finished):
        assert await storage.inbox.claim(claimed) is not None
    await storage.inbox.finish(finished, "failed")
    # The worker that took ``stale`` died a minute ago.
    async with storage.db.session() as session, session.begin():
        minute_ago = datetime.now(UTC) - timedelta(seconds=60)
        await session.execute(
            update(InboxRow).where(InboxRow.id == stale).values(claimed_at=minute_ago)
        )

    assert await storage.inbox.unfinished(stale_after=30) == [first, stale]
    record = await storage.inbox.get(stale)
    assert record is not None and record.status == "pending"
    again = await storage.inbox.claim(stale)
    assert again is not None and again.attempts == 2
    assert await storage.inbox.unfinished(stale_after=30) == [first]


async def make_stale(storage: Storage, *inbox_ids: str) -> None:
    """Backdate the claims of ``inbox_ids`` by a minute, as if their workers had died."""
    async with storage.db.session() as session, session.begin():
        minute_ago = datetime.now(UTC) - timedelta(seconds=60)
        await session.execute(
            update(InboxRow).where(InboxRow.id.in_(inbox_ids)).values(claimed_at=minute_ago)
        )


async def test_inbox_release_puts_a_working_message_back(storage: Storage) -> None:
    inbox_id = await storage.inbox.add(inbound())
    assert inbox_id is not None
    assert await storage.inbox.claim(inbox_id) is not None
    await storage.inbox.release(inbox_id)
    record = await storage.inbox.get(inbox_id)
    assert record is not None
    assert (record.status, record.attempts, record.claimed_at) == ("pending", 1, None)
    assert await storage.inbox.unfinished() == [inbox_id]

    again = await storage.inbox.claim(inbox_id)
    assert again is not None and (again.status, again.attempts) == ("working", 2)
    # Releasing what is finished, or not there, changes nothing.
    await storage.inbox.finish(inbox_id, "done")
    await storage.inbox.release(inbox_id)
    await storage.inbox.release("in-missing")
    record = await storage.inbox.get(inbox_id)
    assert record is not None and record.status == "done"


async def test_inbox_renew_keeps_a_working_message_from_going_stale(storage: Storage) -> None:
    renewed = await storage.inbox.add(inbound("Ev1", "m1"))
    abandoned = await storage.inbox.add(inbound("Ev2", "m2"))
    assert renewed and abandoned
    for claimed in (renewed, abandoned):
        assert await storage.inbox.claim(claimed) is not None
    await make_stale(storage, renewed, abandoned)

    assert await storage.inbox.renew(renewed) is True
    assert await storage.inbox.unfinished(stale_after=30) == [abandoned]
    record = await storage.inbox.get(renewed)
    assert record is not None and record.status == "working"

    # Put back as stale, finished or missing: the worker no longer holds it.
    assert await storage.inbox.renew(abandoned) is False
    await storage.inbox.finish(renewed, "done")
    assert await storage.inbox.renew(renewed) is False
    assert await storage.inbox.renew("in-missing") is False
    record = await storage.inbox.get(renewed)
    assert record is not None and record.status == "done"


async def test_inbox_unfinished_can_keep_to_some_platforms(storage: Storage) -> None:
    slack_new = await storage.inbox.add(inbound("Ev1", "m1"))
    discord_new = await storage.inbox.add(inbound("Ev2", "m2", platform="discord"))
    slack_stale = await storage.inbox.add(inbound("Ev3", "m3"))
    discord_stale = await storage.inbox.add(inbound("Ev4", "m4", platform="discord"))
    assert slack_new and discord_new and slack_stale and discord_stale
    for claimed in (slack_stale, discord_stale):
        assert await storage.inbox.claim(claimed) is not None
    await make_stale(storage, slack_stale, discord_stale)

    assert await storage.inbox.unfinished(platforms=["slack"]) == [slack_new, slack_stale]
    # Discord's stale message is not this process's to take back.
    record = await storage.inbox.get(discord_stale)
    assert record is not None and record.status == "working"
    assert await storage.inbox.unfinished(platforms=[]) == []
    with pytest.raises(TypeError):
        await storage.inbox.unfinished(platforms="slack")
    assert await storage.inbox.unfinished(platforms={"discord", "console"}) == [
        discord_new,
        discord_stale,
    ]
    assert await storage.inbox.unfinished() == [slack_new, discord_new, slack_stale, discord_stale]


async def test_inbox_earlier_unfinished_lists_the_threads_waiting_messages(
    storage: Storage,
) -> None:
    async def add(n: int, **kw: str) -> str:
        inbox_id = await storage.inbox.add(inbound(f"Ev{n}", f"m{n}", **kw))
        assert inbox_id is not None
        return inbox_id

    first = await add(1)
    done = await add(2)
    await add(3, thread="other")
    await add(4, channel="C2")
    await add(5, platform="discord")
    working = await add(6)
    second = await add(7)
    current = await add(8)
    later = await add(9)
    for claimed in (done, working):
        assert await storage.inbox.claim(claimed) is not None
    await storage.inbox.finish(done, "done")

    thread = ThreadKey("slack", "C1", "1700000000.000100")
    earlier = storage.inbox.earlier_unfinished
    waiting = [(first, "pending"), (working, "working"), (second, "pending")]
    assert await earlier(thread, before=current) == waiting
    assert await earlier(thread, before=first) == []
    assert await earlier(thread, before=later) == [*waiting, (current, "pending")]
    assert await earlier(thread, before="in-missing") == []


async def test_inbox_earlier_unfinished_breaks_ties_one_way(storage: Storage) -> None:
    a = await storage.inbox.add(inbound("Ev1", "m1"))
    b = await storage.inbox.add(inbound("Ev2", "m2"))
    assert a and b
    # Received in the same microsecond: exactly one of the two goes first.
    async with storage.db.session() as session, session.begin():
        now = datetime.now(UTC)
        await session.execute(update(InboxRow).values(received_at=now))

    # The tie goes to the smaller id, as in ``unfinished``.
    first, second = sorted([a, b])
    thread = ThreadKey("slack", "C1", "1700000000.000100")
    assert await storage.inbox.earlier_unfinished(thread, before=first) == []
    assert await storage.inbox.earlier_unfinished(thread, before=second) == [(first, "pending")]
    assert await storage.inbox.unfinished() == [first, second]


async def test_inbox_claims_first_in_thread_only_with_nothing_unfinished_before(
    storage: Storage,
) -> None:
    first = await storage.inbox.add(inbound("Ev1", "m1"))
    second = await storage.inbox.add(inbound("Ev2", "m2"))
    elsewhere = await storage.inbox.add(inbound("Ev3", "m3", thread="other"))
    on_discord = await storage.inbox.add(inbound("Ev4", "m4", platform="discord"))
    assert first and second and elsewhere and on_discord
    claim = storage.inbox.claim

    # The second waits for the first, pending or working; nothing changes meanwhile.
    assert await claim(second, first_in_thread=["slack"]) is None
    assert (await storage.inbox.get(second)).status == "pending"  # type: ignore[union-attr]
    claimed = await claim(first, first_in_thread=["slack"])
    assert claimed is not None and (claimed.status, claimed.attempts) == ("working", 1)
    assert await claim(first, first_in_thread=["slack"]) is None
    assert await claim(second, first_in_thread=["slack"]) is None
    # Another thread, and another platform only when asked for.
    assert await claim(elsewhere, first_in_thread=["slack"]) is not None
    assert await claim(on_discord, first_in_thread=["slack"]) is None
    assert await claim(on_discord, first_in_thread=["slack", "discord"]) is not None
    # Once the first is finished, the second is first.
    await storage.inbox.finish(first, "done")
    assert await claim(second, first_in_thread=["slack"]) is not None


# --- transcript and threads ---------------------------------------------------------------


async def test_transcript_history_is_the_last_entries_oldest_first(storage: Storage) -> None:
    for i in range(5):
        await storage.transcript.append(ThreadKey("slack", "C1", "t1"), f"message {i}", user="U1")
    await storage.transcript.append(ThreadKey("slack", "C1", "t1"), "reply", agent="roo")
    await storage.transcript.append(ThreadKey("slack", "C1", "t2"), "another thread", user="U2")

    history = await storage.transcript.history(ThreadKey("slack", "C1", "t1"), limit=3)
    assert [e.text for e in history] == ["message 3", "message 4", "reply"]
    assert (history[-1].agent, history[-1].user) == ("roo", "")
    assert (history[0].agent, history[0].user) == ("", "U1")
    assert all(aware_utc(e.created_at) for e in history)
    assert len(await storage.transcript.history(ThreadKey("slack", "C1", "t1"))) == 6
    assert await storage.transcript.history(ThreadKey("discord", "C1", "t1")) == []


async def test_thread_owner_upserts(storage: Storage) -> None:
    assert await storage.threads.owner(ThreadKey("slack", "C1", "t1")) is None
    await storage.threads.set_owner(ThreadKey("slack", "C1", "t1"), "roo")
    await storage.threads.set_owner(ThreadKey("slack", "C1", "t1"), "beaver")
    await asyncio.gather(
        *(
            storage.threads.set_owner(ThreadKey("slack", "C1", "t2"), agent)
            for agent in ["roo", "owl"] * 5
        )
    )

    assert await storage.threads.owner(ThreadKey("slack", "C1", "t1")) == "beaver"
    assert await storage.threads.owner(ThreadKey("slack", "C1", "t2")) in {"roo", "owl"}
    assert await storage.threads.owner(ThreadKey("discord", "C1", "t1")) is None


# --- runs ---------------------------------------------------------------------------------


async def test_runs_start_finish_and_stats(storage: Storage) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    ok = await storage.runs.start(
        agent="roo", route_reason="@roo", platform="slack", channel="C1", thread="t1"
    )
    assert ok.startswith("r-")
    failed = await storage.runs.start(
        agent="roo",
        route_reason="default",
        platform="slack",
        channel="C1",
        thread="t2",
        inbox_id="in-1",
        run_id="r-given",
    )
    assert failed == "r-given"
    await storage.runs.start(
        agent="beaver", route_reason="thread", platform="slack", channel="C1", thread="t3"
    )
    running = await storage.runs.get(ok)
    assert running is not None and running.outcome == "running" and running.finished_at is None

    await storage.runs.finish(
        ok, outcome="ok", model="anthropic/claude", tokens_in=100, tokens_out=20, latency_ms=900
    )
    await storage.runs.finish(failed, outcome="failed", tokens_in=5, error="boom")
    done = await storage.runs.get(ok)
    assert done is not None
    assert (done.outcome, done.model, done.tokens_in, done.latency_ms) == (
        "ok",
        "anthropic/claude",
        100,
        900,
    )
    assert aware_utc(done.started_at) and aware_utc(done.finished_at)
    gave_up = await storage.runs.get("r-given")
    assert gave_up is not None and gave_up.error == "boom" and gave_up.inbox_id == "in-1"

    # A run from yesterday is outside today's numbers.
    async with storage.db.session() as session, session.begin():
        yesterday = datetime.now(UTC) - timedelta(days=1)
        await session.execute(
            update(RunRow).where(RunRow.agent == "beaver").values(started_at=yesterday)
        )
    stats = await storage.runs.stats_since(before)
    assert set(stats) == {"roo"}
    roo = stats["roo"]
    assert (roo.runs, roo.failures, roo.running, roo.tokens_in, roo.tokens_out) == (
        2,
        1,
        0,
        105,
        20,
    )
    everything = await storage.runs.stats_since(before.replace(tzinfo=None) - timedelta(days=2))
    assert everything["beaver"].running == 1

    recent = await storage.runs.recent(limit=2)
    assert len(recent) == 2 and all(r.agent == "roo" for r in recent)


# --- approvals and audit ------------------------------------------------------------------


async def test_approval_is_decided_once_under_concurrency(storage: Storage) -> None:
    created = await storage.approvals.create(
        kind="tool",
        agent="beaver",
        summary="post to #general",
        run_id="r-1",
        platform="slack",
        channel="C1",
        thread="t1",
        state={"pending": [{"id": "tu1"}]},
    )
    assert created.id.startswith("a-") and created.status == "pending"
    assert aware_utc(created.created_at) and created.decided_at is None
    assert [a.id for a in await storage.approvals.pending()] == [created.id]

    decisions = await asyncio.gather(
        *(
            storage.approvals.decide(created.id, status=status, by=f"U{i}")
            for i, status in enumerate(["approved", "rejected"] * 5)
        )
    )
    won = [d for d in decisions if d is not None]
    assert len(won) == 1
    stored = await storage.approvals.get(created.id)
    assert stored is not None
    assert (stored.status, stored.decided_by) == (won[0].status, won[0].decided_by)
    assert stored.state == {"pending": [{"id": "tu1"}]} and aware_utc(stored.decided_at)
    assert await storage.approvals.pending() == []
    assert await storage.approvals.decide(created.id, status="approved", by="U9") is None

    audit = await storage.audit.recent()
    assert [(e.action, e.subject, e.actor) for e in audit] == [
        ("approval.decide", created.id, won[0].decided_by)
    ]


async def test_escalations_are_open_until_resolved(storage: Storage) -> None:
    opened = await storage.approvals.create(
        kind="escalation", agent="roo", summary="help", status="open"
    )
    assert [a.id for a in await storage.approvals.pending()] == [opened.id]
    with pytest.raises(ValueError):
        await storage.approvals.decide(opened.id, status="pending", by="U1")
    with pytest.raises(ValueError):
        await storage.approvals.create(kind="tool", agent="roo", summary="x", status="approved")
    resolved = await storage.approvals.decide(opened.id, status="resolved", by="U1")
    assert resolved is not None and resolved.status == "resolved"
    assert await storage.approvals.get("a-missing") is None


async def test_decide_with_a_kind_leaves_other_kinds_undecided(storage: Storage) -> None:
    escalation = await storage.approvals.create(
        kind="escalation", agent="roo", summary="help", status="open"
    )
    tool = await storage.approvals.create(kind="tool", agent="roo", summary="post")

    assert (
        await storage.approvals.decide(escalation.id, status="approved", by="U1", kind="tool")
        is None
    )
    assert (
        await storage.approvals.decide(tool.id, status="resolved", by="U1", kind="escalation")
        is None
    )
    for untouched in (escalation, tool):
        stored = await storage.approvals.get(untouched.id)
        assert stored is not None
        assert (stored.status, stored.decided_by, stored.decided_at) == (untouched.status, "", None)
    assert [a.id for a in await storage.approvals.pending()] == [escalation.id, tool.id]
    assert await storage.audit.recent() == []

    approved = await storage.approvals.decide(tool.id, status="approved", by="U1", kind="tool")
    assert approved is not None and approved.status == "approved"
    resolved = await storage.approvals.decide(
        escalation.id, status="resolved", by="U2", kind="escalation"
    )
    assert resolved is not None and (resolved.status, resolved.decided_by) == ("resolved", "U2")
    assert await storage.approvals.pending() == []


async def test_audit_log_records_newest_first(storage: Storage) -> None:
    await storage.audit.record("U1", "schedule.add", "standup", "0 9 * * 1-5")
    await storage.audit.record("U2", "schedule.remove", "standup")
    entries = await storage.audit.recent(limit=1)
    assert [(e.actor, e.action, e.subject, e.detail) for e in entries] == [
        ("U2", "schedule.remove", "standup", "")
    ]


# --- work queue ---------------------------------------------------------------------------


async def test_in_process_queue_hands_out_ids_in_order_and_waits() -> None:
    queue = InProcessQueue()
    await queue.put("in-1")
    await queue.put("in-2")
    assert [await queue.get(), await queue.get()] == ["in-1", "in-2"]

    waiting = asyncio.create_task(queue.get())
    await asyncio.sleep(0.01)
    assert not waiting.done()
    await queue.put("in-3")
    assert await asyncio.wait_for(waiting, 1) == "in-3"


async def test_inbox_adds_at_once_are_committed_together_and_each_answered(
    storage: Storage,
) -> None:
    """A burst of deliveries: each new message gets its id, each duplicate None (also
    two deliveries of one message in one group commit), and a message that cannot be
    stored fails alone."""

    def item(k: int, event: str | None = None, payload: dict[str, Any] | None = None) -> NewInbound:
        return NewInbound(
            "slack", event or f"E{k}", "C1", f"{k}.0", f"{k}.0", "U1", f"m{k}", payload or {}
        )

    unstorable = item(99, payload={"not json": object()})
    adds = [storage.inbox.add(item(k)) for k in range(50)]
    adds += [storage.inbox.add(item(k, event=f"again-{k}")) for k in range(0, 50, 5)]
    results = await asyncio.gather(*adds, storage.inbox.add(unstorable), return_exceptions=True)
    *stored, failed = results
    assert isinstance(failed, Exception)
    assert all(isinstance(r, str) for r in stored[:50])
    assert stored[50:] == [None] * 10
    assert len(set(stored[:50])) == 50
    assert sorted(await storage.inbox.unfinished()) == sorted(stored[:50])
