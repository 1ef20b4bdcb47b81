"""Word search: how text becomes searchable words, and how a table is searched by them.

Corral, not the database, splits text into words, so that SQLite and PostgreSQL index
exactly the same words and answer a query alike. A searchable row keeps its words in a
``terms`` column (distinct, space-separated). SQLite indexes that column with an FTS5
table (``<table>_fts``) whose tokenizer splits on spaces only; PostgreSQL indexes the
generated column ``search_vector = array_to_tsvector(string_to_array(terms, ' '))`` with
GIN, which takes the words as they are. Migrations create both; ``is_search_object``
names them for schema comparisons, since ``storage/tables.py`` cannot declare them.

A query word matches a row when one of the row's words starts with it ("deploy" finds
"deploys" and "deployment"). Rows that match more query words rank first, then newer
rows (higher ids). That ranking is integer arithmetic, so it is the same on both
databases; a statistical rank (FTS5's bm25, PostgreSQL's ts_rank) would not be.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    ColumnClause,
    ColumnElement,
    Integer,
    Select,
    cast,
    column,
    func,
    literal,
    literal_column,
    select,
    table,
    text,
    union_all,
)
from sqlalchemy.dialects.postgresql import TSQUERY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from corral.storage.tables import Base

#: Longer runs of letters are data (hashes, base64), not words; PostgreSQL also limits a
#: lexeme's size.
MAX_WORD_CHARS = 64
#: Shorter query words would match as prefixes of nearly everything.
MIN_QUERY_WORD_CHARS = 2
#: A long message is searched by its longest words: they say most about it, and each
#: further word widens the search.
MAX_QUERY_WORDS = 8

_STOP_WORDS = """
    about after all also an and any are as at be been but by can could did do does for from
    had has have how if in into is it its me my no not of on or our out over so than that
    the their them then there these they this those to up us was we were what when where
    which who why will with would you your
"""
#: Words too common to say what a query is about.
STOP_WORDS = frozenset(_STOP_WORDS.split())

#: Tables that have a word index, for ``is_search_object``.
SEARCHABLE_TABLES = ("memories", "tasks")
#: The tables SQLite's FTS5 keeps for an index named ``<table>_fts``.
_FTS5_TABLES = ("", "_data", "_idx", "_docsize", "_config", "_content")

#: Letters and digits; underscores and everything else separate words, so that
#: "retries" finds MAX_RETRIES.
_WORD = re.compile(r"[^\W_]+")

R = TypeVar("R", bound=Base)


def words(text: str) -> list[str]:
    """The distinct words of ``text`` in order: runs of letters and digits,
    Unicode-normalised (NFKC) and case-folded, at most ``MAX_WORD_CHARS`` long."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    return list(dict.fromkeys(w for w in _WORD.findall(folded) if len(w) <= MAX_WORD_CHARS))


def search_terms(text: str) -> str:
    """The ``terms`` column for ``text``: its words, space-separated."""
    return " ".join(words(text))


def query_words(query: str) -> list[str]:
    """The words of ``query`` worth searching for, in order: no stop words, none shorter
    than ``MIN_QUERY_WORD_CHARS``, and at most ``MAX_QUERY_WORDS`` (the longest)."""
    found = [w for w in words(query) if len(w) >= MIN_QUERY_WORD_CHARS and w not in STOP_WORDS]
    if len(found) <= MAX_QUERY_WORDS:
        return found
    keep = set(sorted(found, key=len, reverse=True)[:MAX_QUERY_WORDS])
    return [w for w in found if w in keep]


def is_search_object(name: str | None, kind: str, parent: str | None = None) -> bool:
    """True for the word-index objects that migrations create outside
    ``storage/tables.py``: FTS5 tables, ``search_vector`` columns and their indexes."""
    if name is None:
        return False
    if kind == "table":
        return any(name == f"{t}_fts{suffix}" for t in SEARCHABLE_TABLES for suffix in _FTS5_TABLES)
    if kind == "column":
        return name == "search_vector" and parent in SEARCHABLE_TABLES
    if kind == "index":
        return any(name == f"ix_{t}_search" for t in SEARCHABLE_TABLES)
    return False


@dataclass(frozen=True)
class WordIndex(Generic[R]):
    """The word index of one table, whose rows have an integer ``id`` and ``terms``."""

    entity: type[R]
    id: InstrumentedAttribute[int]
    table: str

    async def search(
        self,
        session: AsyncSession,
        query: Sequence[str],
        *,
        where: Sequence[ColumnElement[bool]] = (),
        limit: int,
        sqlite: bool,
    ) -> list[R]:
        """Up to ``limit`` rows that satisfy ``where`` and match words of ``query``
        (from :func:`query_words`): most words matched first, then the newest.

        Ranking every match would read every matching row, which is slow for common
        words. So rows matching two words or more are ranked first (they are seldom
        many), and only if they are not enough are the rest read — all matching one
        word, so ordered by id alone — newest first, which each database does without
        reading the others: SQLite walks the FTS5 index backwards, PostgreSQL walks the
        primary key or reads the GIN index, whichever is cheaper for the words.
        """
        if not query or limit <= 0:
            return []
        build = _Sqlite(self) if sqlite else _Postgres(self)
        if not sqlite:
            # The planner must see the query to choose between the GIN index (rare
            # words) and walking the primary key (common words); a prepared statement's
            # generic plan would not. For this transaction only.
            await session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
        found: list[R] = []
        if len(query) > 1:
            found = list((await session.scalars(build.several(query, where, limit))).all())
            if len(found) >= limit:
                return found
        ids = [getattr(row, self.id.key) for row in found]
        conditions = [*where, self.id.not_in(ids)] if found else where
        rest = await session.scalars(build.any(query, conditions, limit - len(found)))
        return found + list(rest.all())


class _Sqlite(Generic[R]):
    """Statements against the FTS5 table ``<table>_fts`` (rowid = the row's id)."""

    def __init__(self, index: WordIndex[R]) -> None:
        self.index = index
        self.name = f"{index.table}_fts"
        self.fts = table(self.name, column("rowid", Integer))

    def _match(self, expression: str) -> ColumnElement[bool]:
        # FTS5 takes the table's own name as the column that matches the whole row.
        return literal_column(self.name).match(expression)

    def several(
        self, query: Sequence[str], where: Sequence[ColumnElement[bool]], limit: int
    ) -> Select[R]:
        """The best rows among those that match two query words or more."""
        index = self.index
        hits = union_all(
            *(select(self.fts.c.rowid.label("id")).where(self._match(_phrase(w))) for w in query)
        ).subquery("hits")
        score = func.count().label("score")
        scored = select(hits.c.id, score).group_by(hits.c.id).having(func.count() >= 2)
        best = scored.subquery("scored")
        return (
            select(index.entity)
            .join_from(best, index.entity, index.id == best.c.id)
            .where(*where)
            .order_by(best.c.score.desc(), index.id.desc())
            .limit(limit)
        )

    def any(
        self, query: Sequence[str], where: Sequence[ColumnElement[bool]], limit: int
    ) -> Select[R]:
        """The newest rows that match a query word."""
        index = self.index
        return (
            select(index.entity)
            .join_from(self.fts, index.entity, index.id == self.fts.c.rowid)
            .where(self._match(" OR ".join(_phrase(w) for w in query)), *where)
            .order_by(self.fts.c.rowid.desc())
            .limit(limit)
        )


class _Postgres(Generic[R]):
    """Statements against the GIN-indexed ``search_vector`` column."""

    def __init__(self, index: WordIndex[R]) -> None:
        self.index = index
        self.vector: ColumnClause[Any] = literal_column(f"{index.table}.search_vector")

    def _matches(self, tsquery: str) -> ColumnElement[bool]:
        return self.vector.bool_op("@@")(cast(literal(tsquery), TSQUERY))

    def several(
        self, query: Sequence[str], where: Sequence[ColumnElement[bool]], limit: int
    ) -> Select[R]:
        """The best rows among those that match two query words or more."""
        index = self.index
        # "At least two words": each word and any later one. GIN evaluates the query for
        # every row that has one of its words, so fewer operands than all pairs pay off.
        pairs = " | ".join(
            f"({_lexeme(word)} & ({' | '.join(_lexeme(w) for w in query[i + 1 :])}))"
            for i, word in enumerate(query[:-1])
        )
        score: ColumnElement[int] = cast(self._matches(_lexeme(query[0])), Integer)
        for word in query[1:]:
            score = score + cast(self._matches(_lexeme(word)), Integer)
        return (
            select(index.entity)
            .where(self._matches(pairs), *where)
            .order_by(score.desc(), index.id.desc())
            .limit(limit)
        )

    def any(
        self, query: Sequence[str], where: Sequence[ColumnElement[bool]], limit: int
    ) -> Select[R]:
        """The newest rows that match a query word."""
        index = self.index
        return (
            select(index.entity)
            .where(self._matches(" | ".join(_lexeme(w) for w in query)), *where)
            .order_by(index.id.desc())
            .limit(limit)
        )


def _phrase(word: str) -> str:
    """``word`` as an FTS5 prefix query."""
    return f'"{word}"*'


def _lexeme(word: str) -> str:
    """``word`` as a tsquery prefix lexeme."""
    return f"'{word}':*"
