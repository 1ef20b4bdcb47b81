"""Shared memory: what the team, one agent, or one channel should keep in mind."""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, TypedDict

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    delete,
    or_,
    select,
    update,
)

from corral.storage import embeddings
from corral.storage.audit import NOWHERE, Where, audit_row
from corral.storage.db import Database, utc
from corral.storage.embeddings import Embedder, MiniLM, SemanticIndex
from corral.storage.search import WordIndex, query_words, search_terms
from corral.storage.storable import storable_text
from corral.storage.tables import MemoryRow, utcnow

Scope = Literal["team", "agent", "channel"]

#: Rows per statement when many memories are added at once.
BATCH = 500

#: Semantic search: how many memories each ranking (words, meaning) puts forward for
#: the blend, at least; more when more results are asked for.
CANDIDATES = 20
#: Below this cosine similarity a memory is not about the query (all-MiniLM-L6-v2 puts
#: unrelated sentences at 0.0–0.2, paraphrases at 0.3 and above): nothing is better than
#: an unrelated memory in an agent's prompt.
MIN_SIMILARITY = 0.25
#: Reciprocal-rank fusion's constant (Cormack et al., 2009): a memory ranked well by one
#: search and not at all by the other still places.
RRF_K = 60

_INDEX = WordIndex(MemoryRow, MemoryRow.id, "memories")
#: The columns of ``uq_memories_text``: one memory per text in each place.
_UNIQUE = [MemoryRow.scope, MemoryRow.agent, MemoryRow.channel, MemoryRow.text_key]


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


@dataclass(frozen=True)
class NewMemory:
    """A memory to add with others (:meth:`MemoryStore.add_many`). Times default to now;
    an import passes the times the memory had where it came from."""

    text: str
    scope: Scope
    author: str
    agent: str = ""
    channel: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Added:
    """How many memories were new, and how many merged into others (already there, or
    given twice)."""

    added: int
    merged: int


class MemoryStore(Protocol):
    """Where memories live and how they are found."""

    #: How many times this process added memories (a cheap "anything new here?").
    additions: int

    async def add(
        self, text: str, *, scope: Scope, author: str, agent: str = "", channel: str = ""
    ) -> tuple[MemoryRecord, bool]:
        """Remember ``text``; the bool is False when it merged into an existing memory."""
        ...

    async def add_many(self, memories: Sequence[NewMemory]) -> Added:
        """Remember many memories in a few statements, merging duplicates like ``add``."""
        ...

    async def search(
        self, query: str, *, agent: str | None = None, channel: str | None = None, limit: int = 5
    ) -> list[MemoryRecord]:
        """The memories most relevant to ``query`` that ``agent`` in ``channel`` may see."""
        ...

    async def get(self, memory_id: int) -> MemoryRecord | None:
        """The memory ``memory_id``, if it exists."""
        ...

    async def forget(
        self, memory_id: int, *, by: str, where: Where = NOWHERE
    ) -> MemoryRecord | None:
        """Delete a memory (audited); None if there was none."""
        ...

    async def promote(
        self, memory_id: int, *, by: str, where: Where = NOWHERE
    ) -> MemoryRecord | None:
        """Make an agent's memory the team's (audited); None if it is not an agent memory."""
        ...

    async def list(
        self,
        *,
        scope: str | None = None,
        agent: str | None = None,
        seen_in: Collection[str] | None = None,
        limit: int | None = 50,
    ) -> list[MemoryRecord]:
        """Memories, newest first, optionally of one scope or one agent, or only those a
        person in the channels ``seen_in`` may see; all if no limit."""
        ...

    async def reindex(self) -> int:
        """Embed every memory that has no vector yet, for semantic search; how many."""
        ...


def normalise(text: str) -> str:
    """``text`` as compared for duplicates: trimmed, whitespace collapsed, case folded."""
    return " ".join(text.split()).casefold()


def _text_key(text: str) -> str:
    return hashlib.sha256(normalise(text).encode()).hexdigest()


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


class _Values(TypedDict):
    """The columns of a new memory's row."""

    text: str
    text_key: str
    terms: str
    scope: str
    agent: str
    channel: str
    author: str
    created_at: datetime
    updated_at: datetime


def _values(memory: NewMemory, now: datetime) -> _Values:
    """The row of a new memory; ValueError if it has no text or no owner."""
    # As stored (storage/storable.py), so that its key is the key of what is stored.
    text = storable_text(memory.text).strip()
    if not text:
        raise ValueError("a memory needs some text")
    agent, channel = _owners(memory.scope, memory.agent, memory.channel)
    created = utc(memory.created_at) if memory.created_at else now
    return _Values(
        text=text,
        text_key=_text_key(text),
        terms=search_terms(text),
        scope=memory.scope,
        agent=agent,
        channel=channel,
        author=memory.author,
        created_at=created,
        updated_at=max(utc(memory.updated_at), created) if memory.updated_at else created,
    )


def _key(values: _Values) -> tuple[str, str, str, str]:
    """What makes two memories the same (the columns of ``uq_memories_text``)."""
    return (values["scope"], values["agent"], values["channel"], values["text_key"])


def _existing(rows: Sequence[_Values]) -> Select[str, str, str, str]:
    """The keys of those of ``rows`` that are stored already. Asked place by place, so
    that each part is a lookup in the unique index (a row-value IN is a scan on SQLite)."""
    places: dict[tuple[str, str, str], list[str]] = {}
    for scope, agent, channel, text_key in map(_key, rows):
        places.setdefault((scope, agent, channel), []).append(text_key)
    return select(MemoryRow.scope, MemoryRow.agent, MemoryRow.channel, MemoryRow.text_key).where(
        or_(
            *(
                and_(
                    MemoryRow.scope == scope,
                    MemoryRow.agent == agent,
                    MemoryRow.channel == channel,
                    MemoryRow.text_key.in_(keys),
                )
                for (scope, agent, channel), keys in places.items()
            )
        )
    )


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


def _visible(agent: str | None, channel: str | None) -> ColumnElement[bool]:
    """The memories ``agent`` in ``channel`` may see: the team's, its own, the channel's."""
    visible: list[ColumnElement[bool]] = [MemoryRow.scope == "team"]
    if agent:
        visible.append(and_(MemoryRow.scope == "agent", MemoryRow.agent == agent))
    if channel:
        visible.append(and_(MemoryRow.scope == "channel", MemoryRow.channel == channel))
    return or_(*visible)


def _seen_by_people(channels: Collection[str]) -> ColumnElement[bool]:
    """The memories a person in ``channels`` may see: the team's and those channels'."""
    seen = MemoryRow.scope == "team"
    if not channels:
        return seen
    return or_(seen, and_(MemoryRow.scope == "channel", MemoryRow.channel.in_(list(channels))))


def _fuse(rankings: Sequence[Sequence[int]], limit: int) -> list[int]:
    """Reciprocal-rank fusion of ``rankings`` (memory ids, best first): the ``limit``
    ids with the highest sum of 1 / (RRF_K + rank), ties to the newer memory."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, memory_id in enumerate(ranking, start=1):
            scores[memory_id] = scores.get(memory_id, 0.0) + 1 / (RRF_K + rank)
    return sorted(scores, key=lambda i: (-scores[i], -i))[:limit]


class SqlMemoryStore:
    """Memories in the database, found by word search (``storage/search.py``) and,
    when semantic search is on, by meaning too (``storage/embeddings.py``)."""

    def __init__(
        self, db: Database, *, semantic: bool = False, embedder: Embedder | None = None
    ) -> None:
        """``semantic``: blend in semantic search (``CORRAL_EMBEDDINGS``).
        ``embedder``: the model (default: the packaged all-MiniLM-L6-v2). Raises
        ``EmbeddingsUnavailable``, saying what to install, if it is on and cannot run."""
        self.db = db
        self.additions = 0
        self.semantic = SemanticIndex(db, embedder or MiniLM()) if semantic else None

    async def add(
        self, text: str, *, scope: Scope, author: str, agent: str = "", channel: str = ""
    ) -> tuple[MemoryRecord, bool]:
        """Remember ``text``. The same text (ignoring case and spacing) in the same place
        is not stored twice: the existing memory is refreshed and returned with False."""
        self.additions += 1
        values = _values(NewMemory(text, scope, author, agent, channel), utcnow())
        insert = (
            self.db.insert(MemoryRow)
            .values(**values)
            .on_conflict_do_nothing(index_elements=_UNIQUE)
            .returning(MemoryRow)
        )
        refresh = (
            update(MemoryRow)
            .where(*(c == v for c, v in zip(_UNIQUE, _key(values), strict=True)))
            .values(updated_at=values["updated_at"])
            .returning(MemoryRow)
            .execution_options(synchronize_session=False)
        )
        async with self.db.session() as session, session.begin():
            # A duplicate is refreshed before anything is inserted: an insert that loses
            # to the unique constraint would still use up an id on PostgreSQL, and people
            # quote ids. The constraint decides between concurrent adds; the loop repeats
            # only when another add inserts the text between the two statements.
            while True:
                row = (await session.scalars(refresh)).one_or_none()
                if row is not None:
                    return _record(row), False
                row = (await session.scalars(insert)).one_or_none()
                if row is not None:
                    break
        if self.semantic:
            await self.semantic.store_quietly([(row.id, row.text)])
        return _record(row), True

    async def add_many(self, memories: Sequence[NewMemory]) -> Added:
        """Remember ``memories``, ``BATCH`` rows per statement, all in one transaction.

        A memory already there (same text in the same place), or twice in ``memories``,
        is merged: the first keeps its id, author and creation time, and its update time
        becomes the later of the two. ValueError, before anything is stored, if one has
        no text or no owner.
        """
        self.additions += 1
        now = utcnow()
        unique: dict[tuple[str, str, str, str], _Values] = {}
        for memory in memories:
            values = _values(memory, now)
            first = unique.setdefault(_key(values), values)
            first["updated_at"] = max(first["updated_at"], values["updated_at"])
        rows = list(unique.values())
        insert = (
            self.db.insert(MemoryRow)
            .on_conflict_do_nothing(index_elements=_UNIQUE)
            .returning(
                MemoryRow.scope,
                MemoryRow.agent,
                MemoryRow.channel,
                MemoryRow.text_key,
                MemoryRow.id,
            )
        )
        later = bindparam("later", type_=MemoryRow.updated_at.type)
        refresh = (
            update(MemoryRow)
            .where(*(c == bindparam(f"same_{c.key}") for c in _UNIQUE))
            .values(
                updated_at=case((MemoryRow.updated_at < later, later), else_=MemoryRow.updated_at)
            )
        )
        added: list[tuple[int, str]] = []
        async with self.db.session() as session, session.begin():
            # Core execution on the session's connection: a list of parameters is then
            # one multi-row statement (executemany), not the ORM's per-object bulk mode.
            connection = await session.connection()
            for start in range(0, len(rows), BATCH):
                batch = rows[start : start + BATCH]
                # Only rows not there yet are inserted, so that no id is used up in vain
                # (see ``add``); the constraint still settles concurrent imports.
                known = {tuple(r) for r in (await connection.execute(_existing(batch))).all()}
                new = [v for v in batch if _key(v) not in known]
                result = await connection.execute(insert, new) if new else None
                ids = {tuple(row[:4]): row[4] for row in result.all()} if result else {}
                inserted = set(ids)
                added += [(ids[_key(v)], v["text"]) for v in new if _key(v) in ids]
                merged = [
                    {
                        **{f"same_{c.key}": k for c, k in zip(_UNIQUE, _key(v), strict=True)},
                        "later": v["updated_at"],
                    }
                    for v in batch
                    if _key(v) not in inserted
                ]
                if merged:
                    await connection.execute(refresh, merged)
        if self.semantic:
            await self.semantic.store_quietly(added)
        return Added(added=len(added), merged=len(memories) - len(added))

    async def search(
        self, query: str, *, agent: str | None = None, channel: str | None = None, limit: int = 5
    ) -> list[MemoryRecord]:
        """Up to ``limit`` memories that contain words of ``query`` (as word prefixes):
        those matching most words first, then the newest. Visible are the team's
        memories, those of ``agent`` and those of ``channel``; never another agent's.

        With semantic search on, memories close in meaning to ``query`` count too: the
        word ranking and the meaning ranking are blended by reciprocal-rank fusion, so
        a memory found by both ranks first, and one found by meaning alone still places.
        """
        visible = _visible(agent, channel)
        semantic = self.semantic
        if semantic is not None and limit <= 0:
            return []
        # With meaning in the ranking, more candidates by words go into the blend.
        candidates = limit if semantic is None else max(CANDIDATES, 2 * limit)
        neighbours = (
            [] if semantic is None else await semantic.neighbours(query, candidates, MIN_SIMILARITY)
        )
        async with self.db.session() as session:
            by_words = await _INDEX.search(
                session,
                query_words(query),
                where=[visible],
                limit=candidates,
                sqlite=self.db.is_sqlite,
            )
            if semantic is None:
                return [_record(row) for row in by_words]
            found = {row.id: row for row in by_words}
            close = [n.memory_id for n in neighbours]
            unread = [i for i in close if i not in found]
            if unread:
                statement = select(MemoryRow).where(MemoryRow.id.in_(unread), visible)
                found.update((row.id, row) for row in await session.scalars(statement))
        # Neighbours that are not visible here, or were forgotten, drop out.
        by_meaning = [i for i in close if i in found]
        best = _fuse([[row.id for row in by_words], by_meaning], limit)
        return [_record(found[i]) for i in best]

    async def get(self, memory_id: int) -> MemoryRecord | None:
        """The memory ``memory_id``, if it exists."""
        async with self.db.session() as session:
            row = await session.get(MemoryRow, memory_id)
            return _record(row) if row else None

    async def forget(
        self, memory_id: int, *, by: str, where: Where = NOWHERE
    ) -> MemoryRecord | None:
        """Delete the memory and record who did, and ``where``, in one transaction; None if
        it did not exist."""
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
            await SemanticIndex.forget(session, memory_id)
            session.add(audit_row(by, "memory.forget", str(memory_id), row.text, where=where))
            return _record(row)

    async def promote(
        self, memory_id: int, *, by: str, where: Where = NOWHERE
    ) -> MemoryRecord | None:
        """Make an agent's memory a team memory (audited as done by ``by``, ``where``). If
        the team already has the
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
            # Read now: the upsert below refreshes this very object as the team's memory.
            owner, text = row.agent, row.text
            now = utcnow()
            # Re-inserted under the same id, as a team memory; an upsert, so that a team
            # memory with the same text, even one added concurrently, absorbs it instead.
            put = (
                self.db.insert(MemoryRow)
                .values(
                    id=row.id,
                    text=row.text,
                    text_key=row.text_key,
                    terms=row.terms,
                    scope="team",
                    agent="",
                    channel="",
                    author=row.author,
                    created_at=row.created_at,
                    updated_at=now,
                )
                .on_conflict_do_update(index_elements=_UNIQUE, set_={"updated_at": now})
                .returning(MemoryRow)
                .execution_options(populate_existing=True)
            )
            promoted = (await session.scalars(put)).one()
            if promoted.id != memory_id:
                # Merged into the team's memory of the same text, which has its own vector.
                await SemanticIndex.forget(session, memory_id)
            session.add(
                audit_row(by, "memory.promote", str(memory_id), text, agent=owner, where=where)
            )
            return _record(promoted)

    async def list(
        self,
        *,
        scope: str | None = None,
        agent: str | None = None,
        seen_in: Collection[str] | None = None,
        limit: int | None = 50,
    ) -> list[MemoryRecord]:
        """Memories, most recently updated first, optionally of one scope or one agent;
        every one of them when ``limit`` is None. With ``seen_in``, only what a person in
        those channels may see: the team's memories and those of the channels, never an
        agent's."""
        statement = select(MemoryRow)
        if seen_in is not None:
            statement = statement.where(_seen_by_people(seen_in))
        if scope is not None:
            statement = statement.where(MemoryRow.scope == scope)
        if agent is not None:
            statement = statement.where(MemoryRow.agent == agent)
        statement = statement.order_by(MemoryRow.updated_at.desc(), MemoryRow.id.desc())
        async with self.db.session() as session:
            rows = (await session.scalars(statement.limit(limit))).all()
        return [_record(row) for row in rows]

    async def reindex(self) -> int:
        """Embed every memory that has no vector of the current model (those stored
        before semantic search was turned on), newest first; how many were embedded.
        Raises ``EmbeddingsUnavailable`` when semantic search is off."""
        if self.semantic is None:
            raise embeddings.EmbeddingsUnavailable(
                f"semantic search is off: set {embeddings.ENV}=1 to reindex memories"
            )
        return await self.semantic.backfill(limit=None)
