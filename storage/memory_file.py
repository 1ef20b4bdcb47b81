"""MEMORY.md: the team memory as a Markdown document, and back.

One memory per top-level ``- `` item; a memory of several lines continues on lines
indented by two spaces. Each item ends with an HTML comment (invisible when the
Markdown is rendered) holding its author and times, so that an export imported into an
empty database gives the same memories::

    - The deploy window is Friday 3pm <!-- corral {"author": "U1", "created": ...} -->

Hand-written files work too: items without the comment are imported as the importer's,
dated now; headings and other lines are skipped and counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from corral.storage.memory import MemoryRecord, NewMemory
from corral.storage.storable import storable_text

TITLE = "# Team memory"
_ITEM = re.compile(r"^[-*] (.*)$")
_META = re.compile(r"\s*<!-- corral (\{.*?\}) -->\s*$", re.DOTALL)


@dataclass(frozen=True)
class Parsed:
    """The memories of a document, and how many non-blank lines were not memories."""

    memories: list[NewMemory]
    skipped: int


def render(memories: Sequence[MemoryRecord], exported_at: datetime) -> str:
    """The team memories as MEMORY.md, oldest first."""
    lines = [
        TITLE,
        "",
        f"<!-- Exported by Corral on {_iso(exported_at)}: {len(memories)} "
        f"{'memory' if len(memories) == 1 else 'memories'}. "
        "One memory per top-level item; `corral memory import MEMORY.md` loads them back "
        "and skips those already known. -->",
        "",
    ]
    for memory in sorted(memories, key=lambda m: m.id):
        meta = {
            "author": memory.author,
            "created": _iso(memory.created_at),
            "updated": _iso(memory.updated_at),
        }
        first, *rest = memory.text.split("\n")
        lines.append(f"- {first}")
        lines.extend(f"  {line}" for line in rest)
        lines[-1] += f" <!-- corral {json.dumps(meta, ensure_ascii=False)} -->"
    return "\n".join(lines) + "\n"


def parse(document: str, *, author: str, now: datetime) -> Parsed:
    """The team memories in ``document``; items without Corral's comment belong to
    ``author`` and are dated ``now``."""
    # As it will be stored: an item of nothing but NUL characters is no memory.
    document = storable_text(document)
    items: list[list[str]] = []
    current: list[str] | None = None
    skipped = 0
    for line in document.splitlines():
        item = _ITEM.match(line)
        if item:
            current = [item.group(1)]
            items.append(current)
        elif current is not None and (line.startswith("  ") or not line.strip()):
            # Indented lines continue the item, as in Markdown, even after a blank line.
            current.append(line[2:])
        else:
            current = None
            if line.strip() and not _is_furniture(line):
                skipped += 1
    memories = [_memory("\n".join(lines).strip(), author, now) for lines in items]
    return Parsed([m for m in memories if m.text], skipped)


def _is_furniture(line: str) -> bool:
    """Headings and comments: the document's structure, not memories."""
    stripped = line.strip()
    return stripped.startswith("#") or (stripped.startswith("<!--") and stripped.endswith("-->"))


def _memory(text: str, author: str, now: datetime) -> NewMemory:
    found = _META.search(text)
    if found is None:
        return NewMemory(text.strip(), "team", author, created_at=now, updated_at=now)
    try:
        meta = json.loads(found.group(1))
    except json.JSONDecodeError:
        meta = {}
    created = _time(meta.get("created")) or now
    return NewMemory(
        text[: found.start()].strip(),
        "team",
        str(meta.get("author") or author),
        created_at=created,
        updated_at=_time(meta.get("updated")) or created,
    )


def _time(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
