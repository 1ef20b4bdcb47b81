"""The database tables (SQLAlchemy 2 declarative). Migrations in ``storage/migrations``
must match this module; ``tests/test_migrations.py`` checks that they do."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    DateTime,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


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
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
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


class MemoryRow(Base):
    """A memory: team-wide, one agent's own, or one channel's."""

    __tablename__ = "memories"
    __table_args__ = (
        UniqueConstraint("scope", "agent", "channel", "text_key", name="uq_memories_text"),
        Index("ix_memories_scope", "scope", "agent"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    text: Mapped[str] = mapped_column(Text)
    #: A digest of the normalised text: one memory per text in each scope, race-free.
    text_key: Mapped[str] = mapped_column(String(64))
    #: team | agent | channel
    scope: Mapped[str] = mapped_column(String(20))
    agent: Mapped[str] = mapped_column(String(64), default="")
    channel: Mapped[str] = mapped_column(String(200), default="")
    #: A user id, or ``agent:<handle>`` for what an agent remembered.
    author: Mapped[str] = mapped_column(String(200))
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


class AuditRow(Base):
    """Who did what, for everything that changes shared state on a person's say."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
