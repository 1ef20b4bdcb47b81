"""Schedules and their fires: what runs when, and what became of every fire time."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy import delete, func, select, update

from corral.storage.audit import NOWHERE, Where, audit_row
from corral.storage.db import Database, utc
from corral.storage.ids import new_id
from corral.storage.tables import ScheduleFireRow, ScheduleRow, utcnow

#: Where a schedule was made: declared in team.yaml, or added in a chat or from a shell.
Source = Literal["team.yaml", "chat", "shell"]
#: ``slot``: a fire time of the schedule; ``manual``: a run asked for by hand.
FireKind = Literal["slot", "manual"]
#: ``running`` until it ends as ``ran`` (posted), ``nothing`` (the agent had nothing to
#: post), ``waiting`` (for an approval), ``failed`` or ``interrupted`` (Corral stopped).
#: Slots that did not run are ``skipped`` (e.g. the previous fire was still running) or
#: ``missed`` (Corral was not running, or the slot was coalesced into a later one).
FireOutcome = Literal[
    "running", "ran", "nothing", "waiting", "failed", "interrupted", "skipped", "missed"
]

#: How many numbered names (``lark-1``, ``lark-2`` …) to try when others take them first.
_NAME_ATTEMPTS = 20


@dataclass(frozen=True)
class ScheduleSpec:
    """What a schedule runs, where, and when: exactly one of ``cron`` and ``every``."""

    agent: str
    channel: str
    prompt: str
    cron: str | None = None
    every: str | None = None
    timezone: str = "UTC"
    #: The platform it posts on; empty for the first one the running process serves.
    platform: str = ""
    #: The model tier its fires use; empty: the agent's own model.
    tier: str = ""

    def timing(self) -> tuple[str | None, str | None, str]:
        """What decides the fire times."""
        return self.cron, self.every, self.timezone


@dataclass(frozen=True)
class ScheduleRecord:
    """A stored schedule."""

    name: str
    source: str
    spec: ScheduleSpec
    paused: bool
    created_by: str
    created_at: datetime
    active_since: datetime
    updated_at: datetime


@dataclass(frozen=True)
class FireRecord:
    """What became of one slot (or of ``count`` slots from ``first_slot`` to ``slot``)."""

    id: str
    schedule: str
    kind: str
    slot: datetime
    first_slot: datetime
    count: int
    outcome: str
    reason: str
    run_id: str
    started_at: datetime
    finished_at: datetime | None


@dataclass
class Reconciled:
    """What reconciling team.yaml's schedules changed, by name."""

    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: Declared in team.yaml, but a schedule made in chat has the name: left alone.
    conflicts: list[str] = field(default_factory=list)


def _schedule(row: ScheduleRow) -> ScheduleRecord:
    spec = ScheduleSpec(
        agent=row.agent,
        channel=row.channel,
        prompt=row.prompt,
        cron=row.cron,
        every=row.every,
        timezone=row.timezone,
        platform=row.platform,
        tier=row.tier,
    )
    return ScheduleRecord(
        name=row.name,
        source=row.source,
        spec=spec,
        paused=row.paused,
        created_by=row.created_by,
        created_at=utc(row.created_at),
        active_since=utc(row.active_since),
        updated_at=utc(row.updated_at),
    )


def _fire(row: ScheduleFireRow) -> FireRecord:
    return FireRecord(
        id=row.id,
        schedule=row.schedule,
        kind=row.kind,
        slot=utc(row.slot),
        first_slot=utc(row.first_slot),
        count=row.count,
        outcome=row.outcome,
        reason=row.reason,
        run_id=row.run_id,
        started_at=utc(row.started_at),
        finished_at=utc(row.finished_at) if row.finished_at else None,
    )


def _spec_values(spec: ScheduleSpec) -> dict[str, str | None]:
    return {
        "agent": spec.agent,
        "channel": spec.channel,
        "prompt": spec.prompt,
        "cron": spec.cron,
        "every": spec.every,
        "timezone": spec.timezone,
        "platform": spec.platform,
        "tier": spec.tier,
    }


class ScheduleStore:
    """Stores schedules, reconciles team.yaml's with them, and records every fire."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def all(self) -> list[ScheduleRecord]:
        """Every schedule, by name."""
        statement = select(ScheduleRow).order_by(ScheduleRow.name)
        async with self.db.session() as session:
            return [_schedule(row) for row in (await session.scalars(statement)).all()]

    async def get(self, name: str) -> ScheduleRecord | None:
        """The schedule ``name``, if there is one."""
        async with self.db.session() as session:
            row = await session.get(ScheduleRow, name)
            return _schedule(row) if row else None

    async def add(
        self,
        spec: ScheduleSpec,
        *,
        source: Source,
        created_by: str,
        name: str | None = None,
        where: Where = NOWHERE,
    ) -> ScheduleRecord | None:
        """Store a new schedule (audited as made ``where``, unless from team.yaml); None
        when ``name`` is taken. Without a name it is called after its agent and numbered:
        ``lark-1``, ``lark-2`` …"""
        if name is not None:
            return await self._insert(name, spec, source, created_by, where)
        for _ in range(_NAME_ATTEMPTS):
            next_name = await self._next_name(spec.agent)
            record = await self._insert(next_name, spec, source, created_by, where)
            if record is not None:
                return record
        raise RuntimeError(f"could not find a free name for a schedule of {spec.agent}")

    async def _next_name(self, prefix: str) -> str:
        statement = select(ScheduleRow.name).where(ScheduleRow.name.startswith(f"{prefix}-"))
        async with self.db.session() as session:
            names = (await session.scalars(statement)).all()
        numbers = [int(n[len(prefix) + 1 :]) for n in names if n[len(prefix) + 1 :].isdigit()]
        return f"{prefix}-{max(numbers, default=0) + 1}"

    async def _insert(
        self, name: str, spec: ScheduleSpec, source: Source, created_by: str, where: Where
    ) -> ScheduleRecord | None:
        now = utcnow()
        values = {
            "name": name,
            "source": source,
            **_spec_values(spec),
            "paused": False,
            "created_by": created_by,
            "created_at": now,
            "active_since": now,
            "updated_at": now,
        }
        statement = (
            self.db.insert(ScheduleRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=["name"])
            .returning(ScheduleRow)
        )
        async with self.db.session() as session, session.begin():
            row = (await session.scalars(statement)).one_or_none()
            if row is None:
                return None
            if source != "team.yaml":
                session.add(audit_row(created_by, "schedule.add", name, spec.prompt, where=where))
            return _schedule(row)

    async def remove(self, name: str, *, by: str, where: Where = NOWHERE) -> ScheduleRecord | None:
        """Delete a schedule and its fires (audited); None when there is no such schedule."""
        async with self.db.session() as session, session.begin():
            row = await session.get(ScheduleRow, name)
            if row is None:
                return None
            record = _schedule(row)
            await session.delete(row)
            await session.execute(delete(ScheduleFireRow).where(ScheduleFireRow.schedule == name))
            session.add(audit_row(by, "schedule.remove", name, where=where))
        return record

    async def set_paused(
        self, name: str, paused: bool, *, by: str, where: Where = NOWHERE
    ) -> ScheduleRecord | None:
        """Pause or resume (audited); None when there is no such schedule. Resuming starts
        the schedule afresh: the fire times it was paused over are not due."""
        now = utcnow()
        values: dict[str, object] = {"paused": paused, "updated_at": now}
        if not paused:
            values["active_since"] = now
        statement = (
            update(ScheduleRow)
            .where(ScheduleRow.name == name, ScheduleRow.paused.is_(not paused))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            changed = (await session.execute(statement.returning(ScheduleRow.name))).first()
            if changed is not None:
                session.add(
                    audit_row(
                        by,
                        "schedule.resume" if not paused else "schedule.pause",
                        name,
                        where=where,
                    )
                )
        return await self.get(name)

    async def reconcile(self, declared: Mapping[str, ScheduleSpec]) -> Reconciled:
        """Make the team.yaml schedules in the database those of ``declared``: add the
        new ones, update the changed ones (keeping whether they are paused), delete the
        ones no longer declared. Schedules made in chat are not touched."""
        result = Reconciled()
        now = utcnow()
        async with self.db.session() as session, session.begin():
            rows = {row.name: row for row in (await session.scalars(select(ScheduleRow))).all()}
            for name, spec in declared.items():
                row = rows.get(name)
                if row is None:
                    await session.execute(
                        self.db.insert(ScheduleRow)
                        .values(
                            name=name,
                            source="team.yaml",
                            **_spec_values(spec),
                            paused=False,
                            created_by="team.yaml",
                            created_at=now,
                            active_since=now,
                            updated_at=now,
                        )
                        .on_conflict_do_nothing(index_elements=["name"])
                    )
                    result.added.append(name)
                elif row.source != "team.yaml":
                    result.conflicts.append(name)
                elif _schedule(row).spec != spec:
                    if _schedule(row).spec.timing() != spec.timing():
                        # The old fire times are not this schedule's: none of them is due.
                        row.active_since = now
                    for key, value in _spec_values(spec).items():
                        setattr(row, key, value)
                    row.updated_at = now
                    result.changed.append(name)
            for name, row in rows.items():
                if row.source == "team.yaml" and name not in declared:
                    await session.delete(row)
                    await session.execute(
                        delete(ScheduleFireRow).where(ScheduleFireRow.schedule == name)
                    )
                    result.removed.append(name)
        return result

    async def record_fire(
        self,
        name: str,
        *,
        slot: datetime,
        outcome: FireOutcome,
        reason: str = "",
        kind: FireKind = "slot",
        first_slot: datetime | None = None,
        count: int = 1,
    ) -> FireRecord | None:
        """Record what became of a slot (or of ``count`` slots ending at ``slot``); None,
        and nothing recorded, when that slot has a record already: each has one."""
        now = utcnow()
        finished = None if outcome == "running" else now
        statement = (
            self.db.insert(ScheduleFireRow)
            .values(
                id=new_id("f"),
                schedule=name,
                kind=kind,
                slot=utc(slot),
                first_slot=utc(first_slot or slot),
                count=count,
                outcome=outcome,
                reason=reason,
                run_id="",
                started_at=now,
                finished_at=finished,
            )
            .on_conflict_do_nothing(index_elements=["schedule", "kind", "slot"])
            .returning(ScheduleFireRow)
        )
        async with self.db.session() as session, session.begin():
            row = (await session.scalars(statement)).one_or_none()
            return _fire(row) if row else None

    async def finish_fire(
        self, fire_id: str, *, outcome: FireOutcome, reason: str = "", run_id: str = ""
    ) -> None:
        """Record how a running fire ended."""
        statement = (
            update(ScheduleFireRow)
            .where(ScheduleFireRow.id == fire_id)
            .values(outcome=outcome, reason=reason, run_id=run_id, finished_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            await session.execute(statement)

    async def interrupt_running(self, name: str, *, reason: str, keep: str = "") -> int:
        """Mark the schedule's fires still ``running`` (but ``keep``) as ``interrupted``:
        the caller knows that nothing runs them any more. Returns how many there were."""
        statement = (
            update(ScheduleFireRow)
            .where(
                ScheduleFireRow.schedule == name,
                ScheduleFireRow.outcome == "running",
                ScheduleFireRow.id != keep,
            )
            .values(outcome="interrupted", reason=reason, finished_at=utcnow())
            .returning(ScheduleFireRow.id)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            return len((await session.execute(statement)).all())

    async def get_fire(self, fire_id: str) -> FireRecord | None:
        """The fire ``fire_id``, if recorded."""
        async with self.db.session() as session:
            row = await session.get(ScheduleFireRow, fire_id)
            return _fire(row) if row else None

    async def last_slot(self, name: str) -> datetime | None:
        """The latest slot of ``name`` that has a record (runs by hand do not count)."""
        statement = select(func.max(ScheduleFireRow.slot)).where(
            ScheduleFireRow.schedule == name, ScheduleFireRow.kind == "slot"
        )
        async with self.db.session() as session:
            latest = (await session.execute(statement)).scalar_one_or_none()
        return utc(latest) if latest is not None else None

    async def latest_fires(self) -> dict[str, FireRecord]:
        """Each schedule's latest record, by schedule name."""
        latest = (
            select(ScheduleFireRow.schedule, func.max(ScheduleFireRow.slot).label("slot"))
            .group_by(ScheduleFireRow.schedule)
            .subquery()
        )
        statement = select(ScheduleFireRow).join(
            latest,
            (ScheduleFireRow.schedule == latest.c.schedule)
            & (ScheduleFireRow.slot == latest.c.slot),
        )
        async with self.db.session() as session:
            return {row.schedule: _fire(row) for row in (await session.scalars(statement)).all()}

    async def fires(self, name: str, limit: int = 20) -> list[FireRecord]:
        """The schedule's latest records, newest slot first."""
        statement = (
            select(ScheduleFireRow)
            .where(ScheduleFireRow.schedule == name)
            .order_by(ScheduleFireRow.slot.desc(), ScheduleFireRow.started_at.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            return [_fire(row) for row in (await session.scalars(statement)).all()]

    async def prune(self, name: str, *, before: datetime) -> None:
        """Forget the schedule's finished records of slots before ``before``, always
        keeping the latest: it says from when on fire times are due."""
        last = await self.last_slot(name)
        if last is None:
            return
        statement = delete(ScheduleFireRow).where(
            ScheduleFireRow.schedule == name,
            ScheduleFireRow.slot < min(utc(before), last),
            ScheduleFireRow.outcome != "running",
        )
        async with self.db.session() as session, session.begin():
            await session.execute(statement)
