"""The schedules table: team.yaml reconciled without touching chat's schedules, names,
pause and resume, and one record per slot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.storage.schedules import ScheduleSpec
from corral.storage.store import Storage

STANDUP = ScheduleSpec(
    "roo", "#general", "Summarise yesterday.", cron="0 9 * * 1-5", timezone="Europe/Berlin"
)
SWEEP = ScheduleSpec("owl", "C0QA", "List stale threads.", every="4h")
SLOT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_reconcile_adds_changes_and_removes_only_team_yaml_schedules(
    storage: Storage,
) -> None:
    store = storage.schedules
    digest = ScheduleSpec("beaver", "#dev", "Digest.", every="1d")
    await store.add(digest, source="chat", created_by="U1", name="digest")
    first = await store.reconcile({"standup": STANDUP, "sweep": SWEEP})
    assert (first.added, first.changed, first.removed) == (["standup", "sweep"], [], [])
    await store.set_paused("standup", True, by="U0ADMIN")
    before = await store.get("standup")
    assert before is not None

    reworded = ScheduleSpec(
        "roo", "#general", "Summarise the day.", cron="0 9 * * 1-5", timezone="Europe/Berlin"
    )
    report = ScheduleSpec("roo", "#ops", "Weekly report.", cron="0 8 * * 1")
    second = await store.reconcile({"standup": reworded, "report": report, "digest": SWEEP})
    assert second.added == ["report"] and second.changed == ["standup"]
    assert second.removed == ["sweep"] and second.conflicts == ["digest"]
    standup = await store.get("standup")
    assert standup is not None and standup.spec == reworded
    # Still paused; the timing did not change, so neither did when its slots start.
    assert standup.paused and standup.active_since == before.active_since
    kept = await store.get("digest")
    assert kept is not None and kept.source == "chat" and kept.spec == digest
    assert await store.get("sweep") is None

    retimed = ScheduleSpec("roo", "#general", "Summarise the day.", cron="30 8 * * 1-5")
    third = await store.reconcile({"standup": retimed, "report": report})
    assert third.changed == ["standup"]
    standup = await store.get("standup")
    assert standup is not None and standup.active_since > before.active_since
    again = await store.reconcile({"standup": retimed, "report": report})
    assert (again.added, again.changed, again.removed) == ([], [], [])


async def test_schedules_made_in_chat_are_numbered_per_agent(storage: Storage) -> None:
    store = storage.schedules
    names = []
    for _ in range(3):
        record = await store.add(SWEEP, source="chat", created_by="U1")
        assert record is not None
        names.append(record.name)
    assert names == ["owl-1", "owl-2", "owl-3"]
    assert await store.add(SWEEP, source="chat", created_by="U1", name="owl-2") is None
    audit = await storage.audit.recent()
    assert [(e.actor, e.action, e.subject) for e in audit][:1] == [("U1", "schedule.add", "owl-3")]


async def test_resume_starts_afresh(storage: Storage) -> None:
    store = storage.schedules
    record = await store.add(SWEEP, source="chat", created_by="U1", name="sweep")
    assert record is not None
    paused = await store.set_paused("sweep", True, by="U1")
    assert paused is not None and paused.paused
    resumed = await store.set_paused("sweep", False, by="U1")
    assert resumed is not None and not resumed.paused
    assert resumed.active_since > record.active_since
    actions = [e.action for e in await storage.audit.recent()]
    assert actions[:2] == ["schedule.resume", "schedule.pause"]


async def test_a_slot_is_recorded_once(storage: Storage) -> None:
    store = storage.schedules
    await store.add(SWEEP, source="chat", created_by="U1", name="sweep")
    running = await store.record_fire("sweep", slot=SLOT, outcome="running")
    assert running is not None and running.finished_at is None
    assert await store.record_fire("sweep", slot=SLOT, outcome="skipped") is None
    # A run by hand at the same instant is another record.
    manual = await store.record_fire("sweep", slot=SLOT, outcome="running", kind="manual")
    assert manual is not None
    await store.finish_fire(running.id, outcome="ran", run_id="r-1")
    missed = await store.record_fire(
        "sweep",
        slot=SLOT - timedelta(hours=4),
        first_slot=SLOT - timedelta(hours=12),
        count=3,
        outcome="missed",
        reason="down",
    )
    assert missed is not None
    assert await store.last_slot("sweep") == SLOT
    fires = await store.fires("sweep")
    assert [(f.kind, f.outcome, f.count) for f in fires] == [
        ("manual", "running", 1),
        ("slot", "ran", 1),
        ("slot", "missed", 3),
    ]
    # The manual run is still running: marked interrupted when nothing runs it any more.
    assert await store.interrupt_running("sweep", reason="stopped") == 1
    latest = (await store.latest_fires())["sweep"]
    assert latest.slot == SLOT


async def test_pruning_keeps_the_latest_record_and_remove_forgets_all(storage: Storage) -> None:
    store = storage.schedules
    await store.add(SWEEP, source="chat", created_by="U1", name="sweep")
    for days in (90, 60, 45):
        await store.record_fire("sweep", slot=SLOT - timedelta(days=days), outcome="ran")
    await store.prune("sweep", before=SLOT)
    assert [f.slot for f in await store.fires("sweep")] == [SLOT - timedelta(days=45)]
    removed = await store.remove("sweep", by="U1")
    assert removed is not None and await store.fires("sweep") == []
    assert await store.remove("sweep", by="U1") is None
