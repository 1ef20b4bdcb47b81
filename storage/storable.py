"""Text as the database can hold it, whatever a platform sent.

PostgreSQL's ``text`` cannot hold a NUL character, no UTF-8 encoder takes a lone
surrogate (JSON's ``"\\ud800"`` decodes to one), and a ``varchar(200)`` refuses 201
characters. A message carrying any of those failed its INSERT, and so was stored nowhere
and never answered. Every string column therefore stores its value made storable: NUL
removed, lone surrogates replaced, and a value too long for its column cut and given a
hash of the whole, so that two long ids that share a beginning stay two ids. The same
happens to a value compared with a column, so a long id finds its own row again.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from sqlalchemy import MetaData, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

#: Hex digits of the hash that ends a value cut to fit its column.
HASH_DIGITS = 16
#: Between the cut value and its hash.
CUT_MARK = "~"
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable_text(value: str) -> str:
    """``value`` without NUL characters and with each lone surrogate replaced by U+FFFD."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    if value.isascii():
        return value
    # In a Python string every surrogate is a lone one: JSON's pairs decode to one
    # character.
    return _SURROGATE.sub("\ufffd", value)


def fit(value: str, length: int) -> str:
    """``value`` made storable and, when longer than ``length``, cut to ``length``
    characters ending in a hash of the whole value. Fitting a fitted value changes
    nothing, so a value fits the same way when it is stored and when it is looked up."""
    value = storable_text(value)
    if len(value) <= length:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:HASH_DIGITS]
    keep = max(0, length - HASH_DIGITS - len(CUT_MARK))
    return f"{value[:keep]}{CUT_MARK}{digest}"[:length]


class StorableString(TypeDecorator[str]):
    """A string column that stores :func:`fit` of each value (:func:`storable_text`
    when the column has no length)."""

    impl: TypeEngine[Any] | type[TypeEngine[Any]] = String
    cache_ok = True

    def __init__(self, column_type: String) -> None:
        super().__init__()
        # The column's own type (String(200), Text ...), so its DDL stays the same.
        self.impl = column_type
        self.length = column_type.length

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if not isinstance(value, str):
            return value
        return fit(value, self.length) if self.length else storable_text(value)


def make_storable(metadata: MetaData) -> None:
    """Give every string column of ``metadata`` :class:`StorableString` behaviour; the
    column's SQL type (and so every migration) stays what it was."""
    for table in metadata.tables.values():
        for column in table.columns:
            if isinstance(column.type, String) and not isinstance(column.type, StorableString):
                column.type = StorableString(column.type)
