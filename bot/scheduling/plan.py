"""Which of a schedule's due fire times run, and which are recorded as missed.

A fire time (a *slot*) is due once it has passed. Due slots are settled together, from
the last slot on record up to the latest due one. Usually that is one slot, which runs.
After downtime (or when the process was too busy to fire on time) there are several:
the latest runs if it is within the grace time, the others within grace are coalesced
into it, and older ones are missed. Each group becomes one record: nothing is skipped
in silence.

This is computed here, from the database, rather than left to APScheduler's misfire
handling: APScheduler forgets its jobs when the process stops (its job stores that
persist are synchronous and pickle the job), and it drops coalesced and misfired run
times without a record. Counting from the last recorded slot covers downtime, a busy
process and several processes alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.triggers.base import BaseTrigger

from corral.agents.cron import MICROSECOND, count_between, first_after, last_until, trigger_for
from corral.storage.schedules import ScheduleSpec

#: Slots in one record are counted up to this many ("1000+ fires").
COUNT_CAP = 1000


@dataclass(frozen=True)
class Span:
    """``count`` slots (at most :data:`COUNT_CAP`) from ``first`` to ``last``."""

    first: datetime
    last: datetime
    count: int


@dataclass(frozen=True)
class Plan:
    """The due slots of a schedule: those ``missed``, those ``coalesced`` into ``run``,
    and the slot to run."""

    missed: Span | None = None
    coalesced: Span | None = None
    run: datetime | None = None

    @property
    def key(self) -> datetime | None:
        """The latest slot this plan settles: the lock that guards it is this slot's."""
        if self.run is not None:
            return self.run
        return self.missed.last if self.missed else None


def trigger_of(spec: ScheduleSpec) -> BaseTrigger:
    """The trigger of a stored schedule; ValueError, fit for a user, when it is broken."""
    return trigger_for(cron=spec.cron, every=spec.every, timezone=spec.timezone)


def plan_slots(
    trigger: BaseTrigger, *, after: datetime, upto: datetime, now: datetime, grace: timedelta
) -> Plan:
    """Settle the slots in ``(after, upto]`` at ``now``: the latest runs when it is no
    older than ``grace``; the rest within grace are coalesced into it, older ones missed."""
    latest = last_until(trigger, upto, after)
    if latest is None:
        return Plan()
    cutoff = now - grace
    if latest < cutoff:
        return Plan(missed=_span(trigger, after, latest))
    last_old = last_until(trigger, cutoff - MICROSECOND, after)
    missed = _span(trigger, after, last_old) if last_old else None
    start = last_old or after
    before_latest = last_until(trigger, latest - MICROSECOND, start)
    coalesced = _span(trigger, start, before_latest) if before_latest else None
    return Plan(missed=missed, coalesced=coalesced, run=latest)


def _span(trigger: BaseTrigger, after: datetime, last: datetime) -> Span:
    # There is a slot after `after`: `last` is one.
    first = first_after(trigger, after) or last
    return Span(first, last, count_between(trigger, first, last, COUNT_CAP))
