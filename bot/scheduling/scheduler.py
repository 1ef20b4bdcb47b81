"""The scheduler: APScheduler's ``AsyncIOScheduler`` with one job per active schedule,
kept in step with the schedules table.

The database holds the schedules (team.yaml's, reconciled on start, and those made in
chat) and what became of every fire time; APScheduler only says when a fire time has
come. Jobs live in APScheduler's memory store and are rebuilt from the table on start
and every ``sync_every`` seconds, so that schedules added, paused or removed elsewhere
(another process, the CLI) are picked up; commands in this process sync at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobSubmissionEvent
from apscheduler.executors.base import BaseExecutor
from apscheduler.job import Job
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.base import BaseTrigger

from corral.agents.cron import first_after, last_until
from corral.agents.team import Team
from corral.bot.scheduling.plan import trigger_of
from corral.bot.scheduling.reconcile import reconcile
from corral.bot.scheduling.runner import STILL_RUNNING, FireRunner
from corral.storage.schedules import FireRecord, ScheduleRecord, ScheduleSpec
from corral.storage.store import Storage
from corral.storage.tables import utcnow

log = logging.getLogger("corral.scheduler")

Spawn = Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]


class _SlotExecutor(BaseExecutor):  # type: ignore[misc]  # APScheduler is untyped
    """Runs a due job as a task of the event loop, passing the fire time as its last
    argument: APScheduler's own executors call a job without it, and the fire time is
    what the lock and the record of a fire are keyed by."""

    def __init__(self, spawn: Spawn) -> None:
        super().__init__()
        self._spawn = spawn

    def _do_submit_job(self, job: Job, run_times: list[datetime]) -> None:
        # Jobs are coalesced: the last run time stands for the others, which the runner
        # settles from the database.
        task = self._spawn(job.func(*job.args, run_times[-1]))
        task.add_done_callback(lambda _: self._run_job_success(job.id, []))


class Scheduler:
    """Fires the schedules this process can post, each fire time once across processes."""

    def __init__(
        self, runner: FireRunner, storage: Storage, team: Team, *, sync_every: float = 10.0
    ) -> None:
        self.runner = runner
        self.storage = storage
        self.team = team
        self.sync_every = sync_every
        self._aps: AsyncIOScheduler | None = None
        #: The schedules that have a job, with what the job was made from.
        self._jobs: dict[str, tuple[ScheduleSpec, datetime]] = {}
        #: Schedules whose timing cannot be read, so that each is logged once.
        self._broken: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._syncing: asyncio.Task[None] | None = None
        #: One sync at a time: the loop's and a command's must not both add a job.
        self._sync_lock = asyncio.Lock()

    async def start(self) -> None:
        """Reconcile team.yaml's schedules, catch up on missed fire times, and start."""
        await reconcile(self.team, self.storage)
        aps = AsyncIOScheduler(
            timezone=UTC,
            executors={"default": _SlotExecutor(self._spawn)},
            # misfire_grace_time None: a late job always reaches the runner, which
            # applies the grace time itself and records what it does not run.
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": None},
        )
        aps.add_listener(self._on_max_instances, EVENT_JOB_MAX_INSTANCES)
        aps.start()
        self._aps = aps
        await self.sync()
        self._syncing = asyncio.create_task(self._sync_loop(), name="corral-schedule-sync")

    async def stop(self) -> None:
        """Stop firing; fires still running are interrupted and recorded as such."""
        if self._syncing is not None:
            self._syncing.cancel()
            await asyncio.gather(self._syncing, return_exceptions=True)
            self._syncing = None
        if self._aps is not None and self._aps.running:
            self._aps.shutdown(wait=False)
            await asyncio.sleep(0)  # AsyncIOScheduler shuts down on the loop's next turn
        self._aps = None
        self._jobs.clear()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def sync(self) -> None:
        """Make APScheduler's jobs those of the active schedules this process serves."""
        async with self._sync_lock:
            if self._aps is not None:
                await self._sync(self._aps)

    async def _sync(self, aps: AsyncIOScheduler) -> None:
        wanted = {
            r.name: r
            for r in await self.storage.schedules.all()
            if not r.paused and self.runner.serves(r)
        }
        for name, made_from in list(self._jobs.items()):
            record = wanted.get(name)
            if record is None or (record.spec, record.active_since) != made_from:
                with suppress(JobLookupError):  # APScheduler drops a job that cannot fire again
                    aps.remove_job(name)
                del self._jobs[name]
        for name, record in wanted.items():
            if name not in self._jobs:
                await self._add_job(aps, record)

    async def run_now(self, name: str, by: str) -> FireRecord:
        """Fire ``name`` now, in the background; its record says ``running``.
        Raises :class:`~bot.scheduling.runner.FireError` when it cannot start."""
        fire, run = await self.runner.begin_manual(name, by)

        async def in_background() -> None:
            try:
                await run
            except Exception:  # nobody awaits it: log it, the record says "running"
                log.exception("schedule %s: the fire asked for by %s failed", name, by)

        self._spawn(in_background())
        return fire

    async def changed(self) -> None:
        """Schedules were changed in this process: sync now, not at the next round."""
        await self.sync()

    async def _add_job(self, aps: AsyncIOScheduler, record: ScheduleRecord) -> None:
        name = record.name
        try:
            trigger = trigger_of(record.spec)
        except ValueError as exc:
            if name not in self._broken:
                log.error("schedule %s cannot fire: %s", name, exc)
                self._broken.add(name)
            return
        self._broken.discard(name)
        await self.runner.recover(name)
        first = await self._first_run_time(record, trigger)
        if first is None:
            return  # a cron line that matches no date, such as 30 February
        aps.add_job(
            self._settle, trigger=trigger, args=[name], id=name, name=name, next_run_time=first
        )
        self._jobs[name] = (record.spec, record.active_since)

    async def _first_run_time(
        self, record: ScheduleRecord, trigger: BaseTrigger
    ) -> datetime | None:
        """The latest slot not yet settled, if one is due (after downtime: the runner
        settles every earlier one with it), else the next slot."""
        now = utcnow()
        due = last_until(trigger, now, await self.runner.anchor(record))
        return due or first_after(trigger, now)

    async def _settle(self, name: str, slot: datetime | None = None, blocked: str = "") -> None:
        """APScheduler's job: settle the slots of ``name`` up to ``slot``, which the
        executor passes (up to now without it); with ``blocked``, record it skipped."""
        upto = slot or utcnow()
        try:
            await self.runner.due(name, upto, blocked=blocked)
        except Exception:  # one schedule's failure must not stop the others
            log.exception("schedule %s: the fire at %s could not be settled", name, upto)

    def _on_max_instances(self, event: JobSubmissionEvent) -> None:
        # The previous fire still runs in this process: record the slot as skipped.
        slot = event.scheduled_run_times[-1]
        self._spawn(self._settle(event.job_id, slot, blocked=STILL_RUNNING))

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _sync_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sync_every)
            try:
                await self.sync()
            except Exception:  # the database may be away for a moment; next round
                log.exception("schedules could not be synced")
