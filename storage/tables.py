"""The database tables (SQLAlchemy 2 declarative). Migrations in ``storage/migrations``
must match this module; ``tests/test_migrations.py`` checks that they do."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Double,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy import text as sql_text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from corral.storage.storable import make_storable


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class InboxRow(Base):
    """Every inbound message, stored before anything processes it."""

    __tablename__ = "inbox"
    __table_args__ = (
        UniqueConstraint("platform", "event_id", name="uq_inbox_event"),
        UniqueConstraint("platform", "channel", "message_id", name="uq_inbox_message"),
        Index("ix_inbox_status", "status"),
        # Each claim asks whether an earlier message of the thread is unfinished: this
        # keeps that to the thread's few unfinished rows, not the channel's history.
        Index(
            "ix_inbox_unfinished_thread",
            "platform",
            "channel",
            "thread",
            "received_at",
            sqlite_where=sql_text("status IN ('pending', 'working')"),
            postgresql_where=sql_text("status IN ('pending', 'working')"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: message | decision | resolve | fire (``storage.inbox.WorkKind``)
    kind: Mapped[str] = mapped_column(String(20), default="message", server_default="message")
    platform: Mapped[str] = mapped_column(String(20))
    event_id: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str] = mapped_column(String(200))
    thread: Mapped[str] = mapped_column(String(200))
    user: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    #: The rest of the platform-neutral message (mentions, channel name, DM flag ...).
    payload: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    #: pending → working → done | failed | ignored
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class PostPartRow(Base):
    """A part of a post that is on the platform: the ledger that lets a work item handled
    again after a crash post only what is not there yet."""

    __tablename__ = "post_parts"

    inbox_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: The post's place in the handling of its work item: 0, 1, 2 ...
    post: Mapped[int] = mapped_column(Integer, primary_key=True)
    part: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The platform's id of the message the part became.
    message_id: Mapped[str] = mapped_column(String(200), default="")
    posted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TranscriptRow(Base):
    """What was said in a thread, by people and by agents: the thread's history."""

    __tablename__ = "transcript"
    __table_args__ = (Index("ix_transcript_thread", "platform", "channel", "thread", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    platform: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(200))
    thread: Mapped[str] = mapped_column(String(200))
    #: A user id for people; empty for agents.
    user: Mapped[str] = mapped_column(String(200), default="")
    #: The agent's handle for agents' posts; empty for people.
    agent: Mapped[str] = mapped_column(String(64), default="")
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ThreadRow(Base):
    """Which agent owns a thread (thread affinity)."""

    __tablename__ = "threads"

    platform: Mapped[str] = mapped_column(String(20), primary_key=True)
    channel: Mapped[str] = mapped_column(String(200), primary_key=True)
    thread: Mapped[str] = mapped_column(String(200), primary_key=True)
    agent: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, onupdate=utcnow
    )


class RunRow(Base):
    """One agent turn: who, why, which model, what it cost and how it ended."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_started", "started_at"), Index("ix_runs_agent", "agent"))

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    inbox_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    agent: Mapped[str] = mapped_column(String(64))
    route_reason: Mapped[str] = mapped_column(Text, default="")
    platform: Mapped[str] = mapped_column(String(20), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    thread: Mapped[str] = mapped_column(String(200), default="")
    model: Mapped[str] = mapped_column(String(200), default="")
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    latency_ms: Mapped[int] = mapped_column(Integer, default=0)
    #: running → ok | handoff | escalated | failed | no_model
    outcome: Mapped[str] = mapped_column(String(20), default="running")
    error: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: In USD, from the real usage; None when a model's price is unknown.
    cost_usd: Mapped[float | None] = mapped_column(Double, nullable=True)
    tokens_cache_read: Mapped[int] = mapped_column(Integer, default=0)
    tokens_cache_write: Mapped[int] = mapped_column(Integer, default=0)
    #: How the model was picked when the agent's model is ``auto``, and why.
    model_choice: Mapped[str] = mapped_column(Text, default="")


class MemoryRow(Base):
    """A memory: team-wide, one agent's own, or one channel's."""

    __tablename__ = "memories"
    __table_args__ = (
        UniqueConstraint("scope", "agent", "channel", "text_key", name="uq_memories_text"),
        Index("ix_memories_scope", "scope", "agent"),
        Index("ix_memories_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    #: A digest of the normalised text: one memory per text in each scope, race-free.
    text_key: Mapped[str] = mapped_column(String(64))
    #: The text's words as search indexes them (``storage/search.py``).
    terms: Mapped[str] = mapped_column(Text)
    #: team | agent | channel
    scope: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    #: A user id, or ``agent:<handle>`` for what an agent remembered.
    author: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class MemoryVectorRow(Base):
    """A memory's embedding, for semantic search (``storage/embeddings.py``).

    Kept apart from ``memories`` so that word search does not read 1.5 kB per row it
    ranks. ``id`` grows with every vector written, so that a process can load only the
    vectors written since it last looked.
    """

    __tablename__ = "memory_vectors"
    __table_args__ = (UniqueConstraint("memory_id", name="uq_memory_vectors_memory"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    memory_id: Mapped[int] = mapped_column(Integer)
    #: The model that made the vector; vectors of another model are not comparable.
    model: Mapped[str] = mapped_column(String(100))
    #: float32, little-endian.
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class TaskRow(Base):
    """Work one agent handed to another: the team's shared record of who does what."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index("ix_tasks_status", "status", "id"),
        Index("ix_tasks_updated", "updated_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    from_agent: Mapped[str] = mapped_column(String(64))
    to_agent: Mapped[str] = mapped_column(String(64))
    task: Mapped[str] = mapped_column(Text)
    #: open → done | failed | handed_off
    status: Mapped[str] = mapped_column(String(20), default="open")
    #: The receiving agent's answer, or why it did not finish.
    result: Mapped[str] = mapped_column(Text, default="")
    platform: Mapped[str] = mapped_column(String(20))
    channel: Mapped[str] = mapped_column(String(200))
    thread: Mapped[str] = mapped_column(String(200))
    #: The task's and the result's words as search indexes them (``storage/search.py``).
    terms: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApprovalRow(Base):
    """A human decision the team waits for: a tool call to approve, or an escalation."""

    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_status", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: tool | escalation
    kind: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str] = mapped_column(String(40), default="")
    platform: Mapped[str] = mapped_column(String(20), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    thread: Mapped[str] = mapped_column(String(200), default="")
    summary: Mapped[str] = mapped_column(Text)
    #: Whatever the runtime needs to resume (the paused run, serialised).
    state: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    #: pending → approved | rejected (escalations: open → resolved)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    decided_by: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    #: The platform message that carries the request's buttons: a click counts only there.
    message_channel: Mapped[str] = mapped_column(String(200), default="")
    message_id: Mapped[str] = mapped_column(String(200), default="")


class AuditRow(Base):
    """Who did what, for everything that changes shared state on a person's say."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_agent", "agent"), Index("ix_audit_created_at", "created_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    #: Who: a person's platform id, or ``agent:<handle>`` for an agent's own action.
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    #: The agent the action was by or for ("" when none).
    agent: Mapped[str] = mapped_column(String(64), default="")
    #: Where: the platform, channel and thread ("" when it happened nowhere in a chat).
    platform: Mapped[str] = mapped_column(String(32), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    thread: Mapped[str] = mapped_column(String(200), default="")
    #: How it ended: ``ok``, ``refused``, ``error``, ``waiting`` … ("" when it just happened).
    outcome: Mapped[str] = mapped_column(String(32), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScheduleRow(Base):
    """A recurring agent task, declared in team.yaml or created in chat."""

    __tablename__ = "schedules"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    #: team.yaml | chat
    source: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(64))
    #: The platform it posts on; empty for the process's first (team.yaml, the CLI).
    platform: Mapped[str] = mapped_column(String(20), default="")
    channel: Mapped[str] = mapped_column(String(200))
    prompt: Mapped[str] = mapped_column(Text)
    #: Exactly one of ``cron`` (a crontab line) and ``every`` (an interval such as 30m).
    cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    every: Mapped[str | None] = mapped_column(String(40), nullable=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    #: The model tier its fires use; empty: the agent's own model.
    tier: Mapped[str] = mapped_column(String(64), default="")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: ``team.yaml``, a user id, or ``agent:<handle>``.
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    #: Fire times after this one are due: set on creation, on resume and when the timing
    #: changes, so that none of those makes earlier times count as missed.
    active_since: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScheduleFireRow(Base):
    """What became of a schedule's fire time (a slot), or of a run asked for by hand.

    One row per slot, however it ended; a row may stand for several slots that ended
    alike (missed during downtime: ``first_slot`` to ``slot``, ``count`` of them).
    """

    __tablename__ = "schedule_fires"
    __table_args__ = (
        UniqueConstraint("schedule", "kind", "slot", name="uq_schedule_fires_slot"),
        Index("ix_schedule_fires_outcome", "schedule", "outcome"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(64))
    #: slot (a fire time) | manual (``schedule run``; ``slot`` is when it was asked for)
    kind: Mapped[str] = mapped_column(String(20))
    slot: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    first_slot: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    count: Mapped[int] = mapped_column(Integer, default=1)
    #: running → ran | nothing | waiting | failed | interrupted; or skipped | missed
    outcome: Mapped[str] = mapped_column(String(20))
    reason: Mapped[str] = mapped_column(Text, default="")
    run_id: Mapped[str] = mapped_column(String(40), default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LockRow(Base):
    """A lock held until ``expires_at`` (the database lock, used without Redis)."""

    __tablename__ = "locks"
    __table_args__ = (Index("ix_locks_expires", "expires_at"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: The holder's secret: only it may renew or release the lock.
    token: Mapped[str] = mapped_column(String(40))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class LimitKeyRow(Base):
    """A key that rate limits or run slots count under. Its row is locked (upserted) at
    the start of every transaction that reads and then changes the key's counters, so
    that processes take their turns on a key instead of both reading the same count."""

    __tablename__ = "limit_keys"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)


class LimitGrantRow(Base):
    """Units of a rate limit that a grant holds, in the window after ``stamp``."""

    __tablename__ = "limit_grants"
    __table_args__ = (Index("ix_limit_grants_key_stamp", "key", "stamp"),)

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    grant_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    #: When the units were taken or settled, in seconds since the epoch.
    stamp: Mapped[float] = mapped_column(Double)
    units: Mapped[int] = mapped_column(Integer)


class CooldownRow(Base):
    """A model that is cooling down (its provider refused it) until ``until``."""

    __tablename__ = "cooldowns"

    model: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: In seconds since the epoch.
    until: Mapped[float] = mapped_column(Double)


class RunSlotRow(Base):
    """One of the slots of ``key`` (e.g. an agent's concurrent runs), held by ``holder``
    until ``expires_at`` unless renewed."""

    __tablename__ = "run_slots"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: In seconds since the epoch.
    expires_at: Mapped[float] = mapped_column(Double)


class SpendDayRow(Base):
    """One day's money for one scope (an agent's handle, or ``*team``): what was spent,
    what was added to its cap, and which once-a-day messages went out."""

    __tablename__ = "spend_days"

    #: YYYY-MM-DD in the team's timezone.
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    spent_usd: Mapped[float] = mapped_column(Double, default=0.0)
    #: Today's additions to the configured cap (``/corral budget beaver +20``).
    raised_usd: Mapped[float] = mapped_column(Double, default=0.0)
    #: The 80% warning went out.
    warned: Mapped[bool] = mapped_column(Boolean, default=False)
    #: A refusal was told to the approvers (agent scopes only).
    refused_told: Mapped[bool] = mapped_column(Boolean, default=False)


class SpendHoldRow(Base):
    """A model call's worst-case cost, reserved against its agent's and the team's
    budget until the call is settled or the hold expires."""

    __tablename__ = "spend_holds"
    __table_args__ = (Index("ix_spend_holds_day", "day", "agent"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[str] = mapped_column(String(10))
    agent: Mapped[str] = mapped_column(String(64))
    amount: Mapped[float] = mapped_column(Double)
    #: Seconds since the epoch, by the reserving process's clock.
    expires_at: Mapped[float] = mapped_column(Double)


class ModelCallRow(Base):
    """One model call: the ledger that usage and cost reports add up."""

    __tablename__ = "model_calls"
    __table_args__ = (
        Index("ix_model_calls_at", "at"),
        Index("ix_model_calls_agent_at", "agent", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    #: The budget day it counted on (the day its hold was taken).
    day: Mapped[str] = mapped_column(String(10))
    run_id: Mapped[str] = mapped_column(String(40))
    agent: Mapped[str] = mapped_column(String(64))
    #: provider/model
    model: Mapped[str] = mapped_column(String(200))
    tokens_in: Mapped[int] = mapped_column(Integer, default=0)
    tokens_out: Mapped[int] = mapped_column(Integer, default=0)
    cache_read: Mapped[int] = mapped_column(Integer, default=0)
    cache_write: Mapped[int] = mapped_column(Integer, default=0)
    #: None when the model's price is unknown.
    cost_usd: Mapped[float | None] = mapped_column(Double, nullable=True)


# Last, once every table is declared: a NUL, a lone surrogate or an over-long id in what a
# platform sent must not fail the INSERT that stores it (storage/storable.py).
make_storable(Base.metadata)
