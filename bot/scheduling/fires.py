"""A schedule's fire as durable work: what the fire's work item holds, and how a worker
runs it and records how it ended. The scheduler only settles slots and stores fires;
workers run them, so a fire whose process died is taken up again like any message."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress

from corral.agents.conversation import Place, Poster, Recorder, Reply
from corral.agents.model_calls import BACKGROUND
from corral.agents.permissions import REFUSED
from corral.agents.runtime import Runtime, Turn
from corral.storage.audit import Where
from corral.storage.inbox import InboxRecord, NewWork
from corral.storage.schedules import FireOutcome, FireRecord, ScheduleRecord
from corral.storage.store import Storage

log = logging.getLogger("corral.scheduler")

#: An agent that has nothing worth posting answers exactly this.
NOTHING = "NOTHING"
INTERRUPTED = "Corral stopped during this fire"


def fire_thread(fire_id: str) -> str:
    """The thread a fire's conversation is kept under: a new one for every fire."""
    return f"schedule-{fire_id}"


def fire_work(
    record: ScheduleRecord, fire: FireRecord, platform: str, route_reason: str
) -> NewWork:
    """The work item that runs ``fire`` of the schedule ``record`` on ``platform``. It
    holds what the run needs, so a schedule changed or removed meanwhile does not
    change a fire that was due."""
    spec = record.spec
    return NewWork(
        kind="fire",
        ref=fire.id,
        platform=platform,
        channel=spec.channel,
        thread=fire_thread(fire.id),
        user="",
        payload={
            "fire_id": fire.id,
            "schedule": record.name,
            "agent": spec.agent,
            "text": _task_text(record),
            "route_reason": route_reason,
            "tier": spec.tier,
            "channel_name": spec.channel if spec.channel.startswith("#") else "",
        },
    )


async def run_fire(
    runtime: Runtime,
    storage: Storage,
    item: InboxRecord,
    post: Poster,
    may_post: Callable[[str, Place], Awaitable[bool]] | None = None,
) -> None:
    """Run the fire of the work item ``item`` and record how it ended; a fire whose
    agent may not post in its channel (``may_post``, from ``allowed_channels``) does
    not run, and is recorded as failed and audited."""
    payload = item.payload
    fire_id, name, agent = str(payload["fire_id"]), str(payload["schedule"]), str(payload["agent"])
    place = Place(item.platform, item.channel, item.thread, str(payload.get("channel_name", "")))
    poster = FirePoster(post, place)
    if agent not in runtime.team.agents:
        why = f"`{agent}` is not an agent of this team"
        await _tell(poster, place, agent, f"Scheduled task `{name}`: {why}.")
        await storage.schedules.finish_fire(fire_id, outcome="failed", reason=why)
        return
    if may_post is not None and not await may_post(agent, place):
        # Not a word in the channel: the agent may not post there.
        why = f"`{agent}` may not post in {place.channel} (its allowed_channels)"
        log.warning("schedule %s: %s", name, why)
        where = Where(place.platform, place.channel, place.thread)
        await storage.audit.record(
            f"schedule:{name}",
            REFUSED,
            f"fire {name}",
            why,
            agent=agent,
            where=where,
            outcome="refused",
        )
        await storage.schedules.finish_fire(fire_id, outcome="failed", reason=why)
        return
    # Background work: a person's message waiting for the same limit goes first.
    turn = Turn(
        place,
        agent,
        str(payload["route_reason"]),
        str(payload["text"]),
        item.id,
        priority=BACKGROUND,
        tier=str(payload.get("tier") or ""),
    )
    try:
        outcome = await runtime.handle(turn, poster)
    except asyncio.CancelledError:
        # Its work item goes back to the inbox: the next start runs it again.
        await storage.schedules.finish_fire(fire_id, outcome="interrupted", reason=INTERRUPTED)
        raise
    except Exception:  # the channel hears of it; the fire is recorded as failed
        log.exception("schedule %s: fire %s failed", name, fire_id)
        why = "an internal error (see Corral's log)"
        text = f"Scheduled task `{name}` could not run: {why} (fire {fire_id})"
        await _tell(poster, place, agent, text)
        await storage.schedules.finish_fire(fire_id, outcome="failed", reason=why)
        return
    run_id = outcome.run_ids[0] if outcome.run_ids else ""
    ended: FireOutcome
    reason = ""
    if outcome.outcome == "ok":
        ended = "nothing" if poster.nothing else "ran"
    elif outcome.outcome == "waiting":
        ended, reason = "waiting", "waiting for a human's approval"
    else:
        # The runtime has told the channel and escalated; the record says why.
        last = await storage.runs.get(outcome.run_ids[-1]) if outcome.run_ids else None
        ended, reason = "failed", (last.error if last and last.error else outcome.outcome)
    await storage.schedules.finish_fire(fire_id, outcome=ended, reason=reason, run_id=run_id)
    log.info("schedule %s: fire %s %s", name, fire_id, ended)


class FirePoster:
    """Posts a fire's replies through the adapter, except an answer of exactly
    ``NOTHING``, which is only noted.

    The fire's thread is Corral's own (the transcript keeps each fire apart); the platform
    has no such thread, so the adapter is asked to start a new conversation instead.
    """

    def __init__(self, post: Poster, place: Place) -> None:
        self.post = post
        self.place = place
        self.nothing = False

    async def __call__(self, place: Place, reply: Reply, *, record: Recorder | None = None) -> None:
        """Post ``reply`` unless it is the fire's ``NOTHING`` (which is only recorded)."""
        if place == self.place:
            if reply.kind == "answer" and reply.text.strip() == NOTHING:
                self.nothing = True
                if record is not None:
                    await record(None)
                return
            place = Place(place.platform, place.channel, "", place.channel_name)
        await self.post(place, reply, record=record)


async def _tell(post: Poster, place: Place, agent: str, text: str) -> None:
    # Telling the channel is best effort: the record of the fire is what must not fail.
    with suppress(Exception):
        await post(place, Reply(agent, text, kind="error"))


def _task_text(record: ScheduleRecord) -> str:
    return (
        f"{record.spec.prompt}\n\n(This is the scheduled task `{record.name}`. If there is "
        f"nothing worth posting this time, answer with exactly {NOTHING}.)"
    )
