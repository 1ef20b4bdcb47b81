"""Firing a schedule: each slot settled by exactly one process, the fire stored as a work
item that the workers run (``scheduling.fires``), and a record of how every slot ended.

Two locks (:mod:`storage.locks`) keep processes that share a database apart:

- ``schedule:<name>:slot:<UTC time>`` is taken by the process that settles a slot and is
  never released, only left to expire once no process could still try that slot (grace
  time plus a margin). The record of the slot, unique per schedule and slot, guards it
  after that.
- ``schedule:<name>:running`` is held (and renewed) until a fire's work item is finished,
  so that a fire is not started while the previous one still runs in any process
  (APScheduler's ``max_instances=1`` sees only its own process). A process that dies
  lets it expire; the fire's work item is taken up again by the workers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.agents.team import Team
from corral.bot.gateway import Workers
from corral.bot.scheduling.fires import INTERRUPTED, fire_work
from corral.bot.scheduling.plan import Plan, Span, plan_slots, trigger_of
from corral.storage.inbox import FINISHED, work_id
from corral.storage.locks import Lock
from corral.storage.schedules import FireRecord, ScheduleRecord
from corral.storage.store import Storage
from corral.storage.tables import utcnow

#: Discord channel ids are snowflakes, all digits; Slack's start with a letter.
DISCORD_CHANNEL_ID = re.compile(r"\d{15,21}")

log = logging.getLogger("corral.scheduler")

#: How long a slot's lock outlives the grace time.
SLOT_LOCK_MARGIN = timedelta(minutes=10)
#: How long the "running" lock lasts without renewal (it is renewed thrice as often).
RUNNING_TTL = timedelta(seconds=60)
#: Records of slots older than this are forgotten (the latest is always kept).
KEEP_RECORDS = timedelta(days=30)
STILL_RUNNING = "the previous fire was still running"


class FireError(Exception):
    """A fire asked for by hand cannot start; the message says why."""


def slot_key(name: str, slot: datetime) -> str:
    """The lock of one slot of one schedule."""
    return f"schedule:{name}:slot:{slot.astimezone(UTC).isoformat()}"


def running_key(name: str) -> str:
    """The lock held while a fire of the schedule runs."""
    return f"schedule:{name}:running"


class FireRunner:
    """Settles due slots and hands fires to ``workers``, for the platforms they serve."""

    def __init__(
        self,
        team: Team,
        storage: Storage,
        workers: Workers,
        lock: Lock,
        *,
        grace: timedelta,
    ) -> None:
        self.team = team
        self.storage = storage
        self.workers = workers
        self.adapters = workers.adapters
        self.lock = lock
        self.grace = grace
        #: Schedules that name no platform post on the first one this process serves.
        self.default_platform = next(iter(self.adapters), "")

    def platform_of(self, record: ScheduleRecord) -> str:
        """The platform the schedule posts on: the one it names; Discord for a Discord
        channel id (team.yaml names no platform, and Slack and Discord may run in one
        process); else the first one this process serves."""
        if record.spec.platform:
            return record.spec.platform
        if DISCORD_CHANNEL_ID.fullmatch(record.spec.channel):
            return "discord"
        return self.default_platform

    def serves(self, record: ScheduleRecord) -> bool:
        """Whether this process can post the schedule's fires."""
        return self.platform_of(record) in self.adapters

    async def anchor(self, record: ScheduleRecord) -> datetime:
        """Slots after this time are not settled yet."""
        last = await self.storage.schedules.last_slot(record.name)
        return max(record.active_since, last) if last else record.active_since

    async def due(self, name: str, upto: datetime, *, blocked: str = "") -> None:
        """Settle the slots of ``name`` up to ``upto``, unless another process does.

        With ``blocked``, the slot that would run is recorded as skipped for that reason.
        """
        record = await self.storage.schedules.get(name)
        if record is None or record.paused or not self.serves(record):
            return  # removed or paused since: its slots are no longer due
        trigger = trigger_of(record.spec)
        plan = plan_slots(
            trigger, after=await self.anchor(record), upto=upto, now=utcnow(), grace=self.grace
        )
        if plan.key is None:
            return
        if await self.lock.acquire(slot_key(name, plan.key), self.grace + SLOT_LOCK_MARGIN) is None:
            return  # another process settles these slots
        await self._record_not_run(name, plan)
        if plan.run is None:
            return
        if blocked:
            await self.storage.schedules.record_fire(
                name, slot=plan.run, outcome="skipped", reason=blocked
            )
            return
        await self._run_slot(record, plan.run)

    async def _record_not_run(self, name: str, plan: Plan) -> None:
        grace = _duration(self.grace)
        if plan.missed is not None:
            why = (
                "not fired in time (Corral was not running, or too busy); only fires "
                f"within the grace time ({grace}) are caught up"
            )
            await self._record_span(name, plan.missed, why)
        if plan.coalesced is not None and plan.run is not None:
            why = (
                f"coalesced into the later fire time {plan.run:%Y-%m-%d %H:%M:%S} UTC: of "
                "several due at once, only the latest is acted on"
            )
            await self._record_span(name, plan.coalesced, why)

    async def _record_span(self, name: str, span: Span, why: str) -> None:
        recorded = await self.storage.schedules.record_fire(
            name,
            slot=span.last,
            first_slot=span.first,
            count=span.count,
            outcome="missed",
            reason=why,
        )
        if recorded is not None:
            log.warning(
                "schedule %s: %d fire(s) to %s missed: %s", name, span.count, span.last, why
            )

    async def _run_slot(self, record: ScheduleRecord, slot: datetime) -> None:
        name = record.name
        token = await self.lock.acquire(running_key(name), RUNNING_TTL)
        if token is None:
            await self.storage.schedules.record_fire(
                name, slot=slot, outcome="skipped", reason=STILL_RUNNING
            )
            log.warning("schedule %s: fire at %s skipped: %s", name, slot, STILL_RUNNING)
            return
        try:
            fire = await self.storage.schedules.record_fire(name, slot=slot, outcome="running")
            if fire is None:
                return  # recorded already: a late process, or coalesced by another
            await self._execute(record, fire, token, f"schedule {name}")
            await self.storage.schedules.prune(name, before=utcnow() - KEEP_RECORDS)
        finally:
            await self.lock.release(running_key(name), token)

    async def recover(self, name: str) -> None:
        """Mark fires that a stopped process left ``running`` as interrupted, unless a
        process runs the schedule now or their work item is still to be done (the
        workers take it up again)."""
        token = await self.lock.acquire(running_key(name), RUNNING_TTL)
        if token is None:
            return
        try:
            await self._interrupt_dead(name)
        finally:
            await self.lock.release(running_key(name), token)

    async def _interrupt_dead(self, name: str, keep: str = "") -> None:
        """Fires of ``name`` still ``running`` (but ``keep``) whose work item is gone or
        finished: nothing runs them any more."""
        for fire in await self.storage.schedules.fires(name):
            if fire.outcome != "running" or fire.id == keep:
                continue
            item = await self.storage.inbox.get(work_id("fire", fire.id))
            if item is None or item.status in FINISHED:
                await self.storage.schedules.finish_fire(
                    fire.id, outcome="interrupted", reason=INTERRUPTED
                )

    async def begin_manual(
        self, name: str, by: str
    ) -> tuple[FireRecord, Coroutine[Any, Any, FireRecord]]:
        """Start a fire of ``name`` now, asked for by ``by``: its record, and the
        coroutine that runs it and returns the final record. Raises :class:`FireError`."""
        record = await self.storage.schedules.get(name)
        if record is None:
            raise FireError(f"There is no schedule `{name}`")
        if not self.serves(record):
            raise FireError(
                f"`{name}` posts on {self.platform_of(record)}, which this process is not "
                "connected to"
            )
        trigger_of(record.spec)  # a broken timing says so before anything runs
        token = await self.lock.acquire(running_key(name), RUNNING_TTL)
        if token is None:
            raise FireError(f"`{name}` is running now; try again when it has finished")
        fire = None
        try:
            fire = await self.storage.schedules.record_fire(
                name, kind="manual", slot=utcnow(), outcome="running"
            )
            if fire is None:
                raise FireError(f"`{name}` was just run by hand; try again")
            await self.storage.audit.record(by, "schedule.run", name, fire.id)
        finally:
            if fire is None:
                await self.lock.release(running_key(name), token)
        return fire, self._run_manual(record, fire, token, by)

    async def _run_manual(
        self, record: ScheduleRecord, fire: FireRecord, token: str, by: str
    ) -> FireRecord:
        try:
            await self._execute(record, fire, token, f"schedule {record.name}, run by {by}")
        finally:
            await self.lock.release(running_key(record.name), token)
        return await self.storage.schedules.get_fire(fire.id) or fire

    async def _execute(
        self, record: ScheduleRecord, fire: FireRecord, token: str, route_reason: str
    ) -> None:
        """Store the fire as work for the workers and wait until it is done, holding the
        running lock. Stopped meanwhile, the work stays stored and is taken up again."""
        keeper = asyncio.create_task(self._keep(running_key(record.name), token))
        try:
            # We hold the running lock: any other fire still marked running is a dead one.
            await self._interrupt_dead(record.name, keep=fire.id)
            work = fire_work(record, fire, self.platform_of(record), route_reason)
            inbox_id = await self.workers.enqueue(work)
            await self.workers.wait(inbox_id or work_id("fire", fire.id))
        finally:
            keeper.cancel()

    async def _keep(self, key: str, token: str) -> None:
        while True:
            await asyncio.sleep(RUNNING_TTL.total_seconds() / 3)
            if not await self.lock.renew(key, token, RUNNING_TTL):
                log.warning("lost the lock %s while a fire was running", key)
                return


def _duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
