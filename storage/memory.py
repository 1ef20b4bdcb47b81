"""Shared memory: what the team, one agent, or one channel should keep in mind."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol

from sqlalchemy import ColumnElement, and_, case, delete, func, or_, select, update

from storage.audit import audit_row
from storage.db import Database, utc
from storage.tables import MemoryRow, utcnow

Scope = Literal["team", "agent", "channel"]

_STOP_WORDS = """
    about after all also an and any are as at be been but by can could did do does for from
    had has have how if in into is it its me my no not of on or our out over so than that
    the their them then there these they this those to up us was we were what when where
    which who why will with would you your
"""
#: Words too common to say what a query is about.
STOP_WORDS = frozenset(_STOP_WORDS.split())

#: Punctuation stripped from the ends of query words; "%" and "_" stay, to match literally.
_EDGE_PUNCTUATION = "\"'`.,;:!?()[]{}<>"


@dataclass(frozen=True)
class MemoryRecord:
    """A memory. ``agent`` is set for agent-scope memories, ``channel`` for channel ones."""

    id: int
    text: str
    scope: str
    agent: str
    channel: str
    author: str
    created_at: datetime
    updated_at: datetime


class MemoryStore(Protocol):
    """Where memories live and how they are found."""

    async def add(
        self, text: str, *, scope: Scope, author: str, agent: str = "", channel: str = ""
    ) -> tuple[MemoryRecord, bool]:
        """Remember ``text``; the bool is False when it merged into an existing memory."""
        ...

    async def search(
        self, query: str, *, agent: str | None = None, channel: str | None = None, limit: int = 5
    ) -> list[MemoryRecord]:
        """The memories most relevant to ``query`` that ``agent`` in ``channel`` may see."""
        ...

    async def get(self, memory_id: int) -> MemoryRecord | None:
        """The memory ``memory_id``, if it exists."""
        ...

    async def forget(self, memory_id: int, *, by: str) -> MemoryRecord | None:
        """Delete a memory (audited); None if there was none."""
        ...

    async def promote(self, memory_id: int, *, by: str) -> MemoryRecord | None:
        """Make an agent's memory the team's (audited); None if it is not an agent memory."""
        ...

    async def list(
        self, *, scope: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[MemoryRecord]:
        """Memories, newest first, optionally of one scope or one agent."""
        ...


def normalise(text: str) -> str:
    """``text`` as compared for duplicates: trimmed, whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def query_words(query: str) -> list[str]:
    """The distinct words of ``query`` worth searching for, lowercase, in order."""
    words = (word.strip(_EDGE_PUNCTUATION) for word in query.lower().split())
    return list(dict.fromkeys(w for w in words if len(w) >= 2 and w not in STOP_WORDS))


def _text_key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def _contains(word: str) -> ColumnElement[bool]:
    escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return func.lower(MemoryRow.text).like(f"%{escaped}%", escape="\\")


def _score(words: list[str]) -> ColumnElement[int]:
    """How many of ``words`` the memory's text contains, computed by the database."""
    terms = [case((_contains(word), 1), else_=0) for word in words]
    score: ColumnElement[int] = terms[0]
    for term in terms[1:]:
        score = score + term
    return score


def _owners(scope: Scope, agent: str, channel: str) -> tuple[str, str]:
    """The (agent, channel) a memory of ``scope`` belongs to; the rest is left blank so
    that duplicates are recognised whoever stores them."""
    if scope == "team":
        return "", ""
    if scope == "agent":
        if not agent:
            raise ValueError("an agent memory needs the agent it belongs to")
        return agent, ""
    if scope == "channel":
        if not channel:
            raise ValueError("a channel memory needs the channel it belongs to")
        return "", channel
    raise ValueError(f"scope must be team, agent or channel, not {scope!r}")


def _record(row: MemoryRow) -> MemoryRecord:
    return MemoryRecord(
        id=row.id,
        text=row.text,
        scope=row.scope,
        agent=row.agent,
        channel=row.channel,
        author=row.author,
        created_at=utc(row.created_at),
        updated_at=utc(row.updated_at),
    )


class SqlMemoryStore:
    """Memories in the database, searched by counting matching query words in SQL."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(
        self, text: str, *, scope: Scope, author: str, agent: str = "", channel: str = ""
    ) -> tuple[MemoryRecord, bool]:
        """Remember ``text``. The same text (ignoring case and spacing) in the same place
        is not stored twice: the existing memory is refreshed and returned with False."""
        text = text.strip()
        if not text:
            raise ValueError("a memory needs some text")
        agent, channel = _owners(scope, agent, channel)
        key = _text_key(text)
        now = utcnow()
        same = (
            MemoryRow.scope == scope,
            MemoryRow.agent == agent,
            MemoryRow.channel == channel,
            MemoryRow.text_key == key,
        )
        insert = (
            self.db.insert(MemoryRow)
            .values(
                text=text,
                text_key=key,
                scope=scope,
                agent=agent,
                channel=channel,
                author=author,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(
                index_elements=[
                    MemoryRow.scope,
                    MemoryRow.agent,
                    MemoryRow.channel,
                    MemoryRow.text_key,
                ]
            )
            .returning(MemoryRow)
        )
        refresh = (
            update(MemoryRow)
            .where(*same)
            .values(updated_at=now)
            .returning(MemoryRow)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            # The unique constraint decides between concurrent adds. The loop repeats
            # only if the duplicate is forgotten between the two statements.
            while True:
                row = (await session.scalars(insert)).one_or_none()
                if row is not None:
                    return _record(row), True
                row = (await session.scalars(refresh)).one_or_none()
                if row is not None:
                    return _record(row), False

    async def search(
        self, query: str, *, agent: str | None = None, channel: str | None = None, limit: int = 5
    ) -> list[MemoryRecord]:
        """Up to ``limit`` memories that contain words of ``query``, most matching words
        first, then the most recently updated. Visible are the team's memories, those of
        ``agent`` and those of ``channel``; never another agent's."""
        words = query_words(query)
        if not words:
            return []
        score = _score(words)
        visible = [MemoryRow.scope == "team"]
        if agent:
            visible.append(and_(MemoryRow.scope == "agent", MemoryRow.agent == agent))
        if channel:
            visible.append(and_(MemoryRow.scope == "channel", MemoryRow.channel == channel))
        statement = (
            select(MemoryRow)
            .where(or_(*visible), score > 0)
            .order_by(score.desc(), MemoryRow.updated_at.desc(), MemoryRow.id.desc())
            .limit(limit)
        )
        async with self.db.session() as session:
            return [_record(row) for row in (await session.scalars(statement)).all()]

    async def get(self, memory_id: int) -> MemoryRecord | None:
        """The memory ``memory_id``, if it exists."""
        async with self.db.session() as session:
            row = await session.get(MemoryRow, memory_id)
            return _record(row) if row else None

    async def forget(self, memory_id: int, *, by: str) -> MemoryRecord | None:
        """Delete the memory and record who did, in one transaction; None if it did not
        exist."""
        statement = (
            delete(MemoryRow)
            .where(MemoryRow.id == memory_id)
            .returning(MemoryRow)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            row = (await session.scalars(statement)).one_or_none()
            if row is None:
                return None
            session.add(audit_row(by, "memory.forget", str(memory_id), row.text))
            return _record(row)

    async def promote(self, memory_id: int, *, by: str) -> MemoryRecord | None:
        """Make an agent's memory a team memory (audited). If the team already has the
        same memory, the two merge and the team's is returned. None if ``memory_id`` is
        not an agent memory."""
        take = (
            delete(MemoryRow)
            .where(MemoryRow.id == memory_id, MemoryRow.scope == "agent")
            .returning(MemoryRow)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            row = (await session.scalars(take)).one_or_none()
            if row is None:
                return None
            now = utcnow()
            # Re-inserted under the same id, as a team memory; an upsert, so that a team
            # memory with the same text, even one added concurrently, absorbs it instead.
            put = (
                self.db.insert(MemoryRow)
                .values(
                    id=row.id,
                    text=row.text,
                    text_key=row.text_key,
                    scope="team",
                    agent="",
                    channel="",
                    author=row.author,
                    created_at=row.created_at,
                    updated_at=now,
                )
                .on_conflict_do_update(
                    index_elements=[
                        MemoryRow.scope,
                        MemoryRow.agent,
                        MemoryRow.channel,
                        MemoryRow.text_key,
                    ],
                    set_={"updated_at": now},
                )
                .returning(MemoryRow)
                .execution_options(populate_existing=True)
            )
            promoted = (await session.scalars(put)).one()
            session.add(audit_row(by, "memory.promote", str(memory_id), row.text))
            return _record(promoted)

    async def list(
        self, *, scope: str | None = None, agent: str | None = None, limit: int = 50
    ) -> list[MemoryRecord]:
        """Memories, most recently updated first, optionally of one scope or one agent."""
        statement = select(MemoryRow)
        if scope is not None:
            statement = statement.where(MemoryRow.scope == scope)
        if agent is not None:
            statement = statement.where(MemoryRow.agent == agent)
        statement = statement.order_by(MemoryRow.updated_at.desc(), MemoryRow.id.desc())
        async with self.db.session() as session:
            rows = (await session.scalars(statement.limit(limit))).all()
        return [_record(row) for row in rows]
