"""The audit log on SQLite and PostgreSQL: append-only in the database itself, read back
filtered and paged, and the rows of approval decisions and budget raises."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, delete, text, update
from sqlalchemy.exc import DBAPIError

from corral.storage.audit import AuditEntry, Where
from corral.storage.db import MIGRATIONS
from corral.storage.store import Storage
from corral.storage.tables import AuditRow


async def _rows(storage: Storage) -> list[tuple[int, str, str, str]]:
    return [(e.id, e.actor, e.action, e.detail) for e in await storage.audit.recent(limit=100)]


async def test_the_database_refuses_to_change_or_delete_an_audit_row(storage: Storage) -> None:
    await storage.audit.record("U1", "memory.forget", "7", "the deploy window")
    before = await _rows(storage)
    refused = [
        update(AuditRow).values(detail="nothing happened"),
        update(AuditRow).where(AuditRow.actor == "U1").values(actor="U2"),
        delete(AuditRow),
        delete(AuditRow).where(AuditRow.id == before[0][0]),
    ]
    if not storage.db.is_sqlite:
        refused.append(text("TRUNCATE audit"))
    for statement in refused:
        with pytest.raises(DBAPIError, match="audit is append-only"):
            async with storage.db.transaction() as connection:
                await connection.execute(statement)
    assert await _rows(storage) == before
    # Adding goes on as before.
    await storage.audit.record("U1", "memory.promote", "8")
    assert len(await _rows(storage)) == 2


def _migrate(connection: Connection, to: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    if to == "head":
        command.upgrade(config, to)
    else:
        command.downgrade(config, to)


async def test_downgrading_0015_lifts_the_refusal_and_upgrading_restores_it(
    storage: Storage,
) -> None:
    await storage.audit.record("U1", "schedule.add", "standup")
    async with storage.db.engine.begin() as connection:
        await connection.run_sync(_migrate, "0014")
    async with storage.db.transaction() as connection:
        await connection.execute(text("DELETE FROM audit"))
    async with storage.db.engine.begin() as connection:
        await connection.run_sync(_migrate, "head")
    await storage.audit.record("U1", "schedule.add", "standup")
    with pytest.raises(DBAPIError, match="audit is append-only"):
        async with storage.db.transaction() as connection:
            await connection.execute(text("DELETE FROM audit"))
    assert [r[2] for r in await _rows(storage)] == ["schedule.add"]


async def test_query_filters_by_agent_action_and_time_and_pages_by_id(storage: Storage) -> None:
    for n in range(7):
        await storage.audit.record(
            "agent:owl" if n % 2 else "U1",
            "tool.call" if n % 2 else "memory.add",
            f"s{n}",
            agent="owl" if n % 2 else "",
        )
    await storage.audit.record("U1", "tool_call", "a look-alike for a LIKE wildcard")
    everything = await storage.audit.query(limit=100)
    assert [e.subject for e in everything][:3] == ["a look-alike for a LIKE wildcard", "s6", "s5"]

    owl = await storage.audit.query(agent="owl")
    assert [e.subject for e in owl] == ["s5", "s3", "s1"]
    tools = await storage.audit.query(action_prefix="tool.")
    assert [e.subject for e in tools] == ["s5", "s3", "s1"]
    assert await storage.audit.count(action_prefix="tool.") == 3
    assert await storage.audit.count(action_prefix="memory") == 4

    first = await storage.audit.query(limit=3)
    after = await storage.audit.query(limit=3, before_id=first[-1].id)
    assert [e.subject for e in after] == ["s4", "s3", "s2"]

    future = datetime.now(UTC) + timedelta(minutes=5)
    assert await storage.audit.query(since=future) == []
    past = datetime.now(UTC) - timedelta(minutes=5)
    assert len(await storage.audit.query(since=past, limit=100)) == 8


async def test_each_reads_every_matching_row_a_page_at_a_time(storage: Storage) -> None:
    for n in range(11):
        await storage.audit.record("U1", "memory.add", f"m{n}")
    await storage.audit.record("U1", "schedule.add", "other")
    read: list[AuditEntry] = [e async for e in storage.audit.each(action_prefix="memory.", page=4)]
    assert [e.subject for e in read] == [f"m{n}" for n in reversed(range(11))]


async def test_an_approval_decision_is_audited_with_its_thread_and_agent(
    storage: Storage,
) -> None:
    created = await storage.approvals.create(
        kind="tool",
        agent="beaver",
        summary="Beaver wants to run `post_message`",
        run_id="r-1",
        platform="slack",
        channel="C1",
        thread="t1",
        state={},
    )
    await storage.decide(created.id, status="rejected", by="U0ADMIN", kind="tool")
    (entry,) = await storage.audit.recent()
    assert (entry.actor, entry.action, entry.subject, entry.outcome) == (
        "U0ADMIN",
        "approval.decide",
        created.id,
        "rejected",
    )
    assert entry.agent == "beaver"
    assert entry.where == Where("slack", "C1", "t1")
    assert entry.detail == "tool: Beaver wants to run `post_message`"


async def test_a_budget_raised_by_approval_is_audited_as_a_budget_raise(
    storage: Storage,
) -> None:
    created = await storage.approvals.create(
        kind="budget",
        agent="beaver",
        summary="Beaver spent its budget",
        platform="discord",
        channel="C2",
        thread="t2",
        state={"day": "2026-12-06", "scope": "beaver", "step": 10.0},
    )
    await storage.decide(created.id, status="approved", by="U0LEAD", kind="budget")
    raised, decided = await storage.audit.recent()
    assert (decided.action, decided.outcome) == ("approval.decide", "approved")
    assert (raised.actor, raised.action, raised.subject, raised.agent, raised.outcome) == (
        "U0LEAD",
        "budget.raise",
        "beaver",
        "beaver",
        "ok",
    )
    assert raised.detail == f"+10 USD on 2026-12-06 (approval {created.id})"
    assert raised.where == Where("discord", "C2", "t2")
    assert await storage.spend.raise_cap("2026-12-06", "beaver", 0.0) == 10.0
