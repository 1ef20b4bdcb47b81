"""Bringing team.yaml's schedules into the database, where every process reads them."""

from __future__ import annotations

import logging

from corral.agents.team import Team
from corral.storage.schedules import Reconciled, ScheduleSpec
from corral.storage.store import Storage

log = logging.getLogger("corral.scheduler")


def declared(team: Team) -> dict[str, ScheduleSpec]:
    """The schedules of team.yaml, by name."""
    return {
        name: ScheduleSpec(
            agent=schedule.agent,
            channel=schedule.channel,
            prompt=schedule.prompt,
            cron=schedule.cron,
            every=schedule.every,
            timezone=schedule.timezone,
            tier=schedule.tier or "",
        )
        for name, schedule in team.schedules.items()
    }


async def reconcile(team: Team, storage: Storage) -> Reconciled:
    """Add, change and remove team.yaml's schedules in the database to match the file,
    leaving those made in chat alone; say what changed in the log."""
    result = await storage.schedules.reconcile(declared(team))
    for verb, names in (
        ("added", result.added),
        ("changed", result.changed),
        ("removed", result.removed),
    ):
        if names:
            log.info("team.yaml schedules %s: %s", verb, ", ".join(names))
    for name in result.conflicts:
        log.warning(
            "team.yaml schedule %s is not used: a schedule made in chat has that name; "
            "rename one of them, or remove the other with `corral schedule remove %s`",
            name,
            name,
        )
    return result
