"""The limits of a deployment, composed: where rate-limit windows, model cooldowns and
run slots are kept, and the model-call wrappers and run gate that use them. Part of the
composition root (bot/app.py), which hands the result to the runtime.

With ``REDIS_URL`` every process shares them through Redis, and when Redis cannot be
reached the database stands in (said once in the log, and in ``/corral status``) until it
is back. Without Redis there is one process, and they are kept in it. Budgets and the
ledger of spend are always in the database: they must hold across processes and
restarts, Redis or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import TYPE_CHECKING

from corral.agents.budgets import BudgetWrapper
from corral.agents.cooling import CoolingWrapper
from corral.agents.llm.prices import PriceTable
from corral.agents.llm.types import ModelClient
from corral.agents.model_calls import ModelWrapper
from corral.agents.permissions import ChannelAliases, ChannelPermissions, known_as
from corral.agents.rate_limits import MINUTE_S, RateLimitWrapper
from corral.agents.redaction_seams import RedactingModelWrapper, RedactingToolWrapper
from corral.agents.run_gate import RunGate
from corral.agents.seams import Seams
from corral.agents.team import Team
from corral.agents.tool_audit import ToolAudit
from corral.storage.cooldowns import (
    Cooldowns,
    DatabaseCooldowns,
    InProcessCooldowns,
    RedisCooldowns,
)
from corral.storage.failover import FailoverCooldowns, FailoverLimiter, FailoverRunSlots
from corral.storage.limiter import DatabaseLimiter, InProcessLimiter, Limiter, RedisLimiter
from corral.storage.run_slots import (
    DatabaseRunSlots,
    InProcessRunSlots,
    RedisRunSlots,
    RunSlots,
)
from corral.storage.spend import day_of
from corral.storage.store import Storage

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass(frozen=True)
class LimitStores:
    """Where the limits are kept, and whether Redis is standing down."""

    limiter: Limiter
    cooldowns: Cooldowns
    run_slots: RunSlots
    #: True while Redis is unreachable and the database stands in for it.
    degraded: Callable[[], bool]


def in_process_stores(clock: Callable[[], float] = time.time) -> LimitStores:
    """Limits kept in this process: one process, no Redis (``clock``: a test's)."""
    return LimitStores(
        InProcessLimiter(clock), InProcessCooldowns(clock), InProcessRunSlots(clock), lambda: False
    )


def limit_stores(storage: Storage, redis: Redis | None) -> LimitStores:
    """In Redis with the database standing in (``redis`` given), else in this process."""
    if redis is None:
        return in_process_stores()
    db = storage.db
    limiter = FailoverLimiter(RedisLimiter(redis), DatabaseLimiter(db))
    cooldowns = FailoverCooldowns(RedisCooldowns(redis), DatabaseCooldowns(db))
    slots = FailoverRunSlots(RedisRunSlots(redis), DatabaseRunSlots(db))
    parts = (limiter, cooldowns, slots)
    return LimitStores(limiter, cooldowns, slots, lambda: any(p.degraded for p in parts))


@dataclass(frozen=True)
class RunLimits:
    """The run's seams with every limit around the model call, and the run gate."""

    seams: Seams
    gate: RunGate


def compose_limits(
    team: Team,
    storage: Storage,
    client_for: Callable[[str], ModelClient],
    stores: LimitStores,
    zone: tzinfo,
    *,
    redact: Callable[[str], str],
    window_s: float = MINUTE_S,
    clock: Callable[[], float] = time.time,
    channel_aliases: ChannelAliases = known_as,
) -> RunLimits:
    """The model-call seam with, outermost first: redaction (nothing unredacted reaches
    a model, nor any wrapper after it), cooldowns (a cooling model is skipped before
    anything is reserved for it), budgets and cost, rate limits; the tool-call seam with
    the audit of every call, the permission checks that keep agents in their
    ``allowed_channels`` (a channel's names and ids known through ``channel_aliases``,
    the chat platforms'), and redaction of what a tool is given and gives back; posts
    redacted. ``redact`` is the deployment's redaction (``Redactor.redact``), which the
    audit's arguments go through too; ``zone`` is the team's timezone, whose day budgets
    count in; ``window_s`` the window of a ``…_per_minute`` limit and ``clock`` the time
    (both a test's or a benchmark's only)."""
    prices = PriceTable.builtin(team.prices)

    def today() -> str:
        return day_of(clock(), zone)

    wrappers: list[ModelWrapper] = [
        RedactingModelWrapper(redact),
        CoolingWrapper(stores.cooldowns, clock=clock),
        BudgetWrapper(storage.spend, team, prices, today),
        RateLimitWrapper(stores.limiter, team.limits.limits_for, window_s=window_s, clock=clock),
    ]
    audit = ToolAudit(storage.audit, redact)
    # audit.reached stays the innermost wrapper: a call that does not get to it was
    # refused by one of the others (or by the permissions, outside the approval gate).
    seams = Seams.compose(
        client_for,
        model_wrappers=wrappers,
        tool_wrappers=[RedactingToolWrapper(redact), audit.reached],
        tool_watchers=[audit],
        tool_checks=[ChannelPermissions(channel_aliases)],
        redact=redact,
    )
    return RunLimits(seams, RunGate(stores.run_slots, team.limits.concurrency_for))
