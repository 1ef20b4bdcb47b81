"""MEMORY.md: rendering the team memory and reading it back, hand-written files too."""

from __future__ import annotations

from datetime import UTC, datetime

from corral.storage.memory import MemoryRecord, NewMemory
from corral.storage.memory_file import parse, render

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def record(memory_id: int, text: str, author: str = "U1") -> MemoryRecord:
    created = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=UTC)
    updated = datetime(2026, 11, 2, tzinfo=UTC)
    return MemoryRecord(memory_id, text, "team", "", "", author, created, updated)


def test_render_then_parse_gives_the_same_memories() -> None:
    memories = [
        record(3, "Releases ship on Tuesdays", author="agent:roo"),
        record(1, "The deploy window is Friday 3pm"),
        record(2, "Runbook:\n- restart the API\n\n  then check <grafana> & the queue"),
        record(4, 'Quotes " and <!-- comments --> are text', author="U 2"),
    ]
    document = render(memories, NOW)
    assert document.startswith("# Team memory\n")
    assert "2026-11-30T12:00:00.000000Z: 4 memories" in document
    # Oldest first, one top-level item each; further lines indented under it.
    items = [line for line in document.splitlines() if line.startswith("- ")]
    assert [i.split(" <!--")[0] for i in items] == [
        "- The deploy window is Friday 3pm",
        "- Runbook:",
        "- Releases ship on Tuesdays",
        '- Quotes " and',
    ]
    parsed = parse(document, author="importer", now=NOW)
    assert parsed.skipped == 0
    assert parsed.memories == [
        NewMemory(m.text, "team", m.author, created_at=m.created_at, updated_at=m.updated_at)
        for m in sorted(memories, key=lambda m: m.id)
    ]


def test_a_hand_written_file_is_read_item_by_item() -> None:
    document = """# Our memory

Some intro paragraph that is not a memory.

## Deploys
- Deploys happen on Fridays
* Staging runs on Postgres 16
  and is rebuilt nightly
-
- Broken metadata is dropped <!-- corral {not json} -->

1. numbered lists are not memories
"""
    parsed = parse(document, author="alice", now=NOW)
    assert [(m.text, m.author, m.created_at) for m in parsed.memories] == [
        ("Deploys happen on Fridays", "alice", NOW),
        ("Staging runs on Postgres 16\nand is rebuilt nightly", "alice", NOW),
        ("Broken metadata is dropped", "alice", NOW),
    ]
    # The intro, the lone "-" and the numbered line.
    assert parsed.skipped == 3


def test_an_empty_document_has_no_memories() -> None:
    assert parse("", author="a", now=NOW).memories == []
    empty = render([], NOW)
    assert "0 memories" in empty
    assert parse(empty, author="a", now=NOW).memories == []
