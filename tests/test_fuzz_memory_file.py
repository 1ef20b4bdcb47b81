"""MEMORY.md imports fuzzed: any document parses, its memories are stored on SQLite and
PostgreSQL, and the memories stored before are still there."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from fuzz_strategies import json_values, outside_text
from hypothesis import given
from hypothesis import strategies as st

from corral.storage.memory_file import parse, render
from corral.storage.storable import storable_text
from corral.storage.store import Storage

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def test_an_item_of_nothing_but_nul_characters_is_no_memory() -> None:
    # Found by the fuzzer: "- \x00" parsed as a memory that storing then refused, and
    # the whole import failed.
    parsed = parse("- \x00\n- kept\x00 this\n", author="U1", now=NOW)
    assert [m.text for m in parsed.memories] == ["kept this"]
    assert storable_text(parsed.memories[0].text) == "kept this"


@st.composite
def documents(draw: st.DrawFn) -> str:
    """Markdown-ish lines: items, continuations, headings, Corral's comment holding any
    JSON, and random text."""
    comment = json_values(6).map(lambda v: f" <!-- corral {_json(v)} -->")
    line = st.one_of(
        st.tuples(st.sampled_from(["- ", "* ", "  ", "# ", ""]), outside_text(120)).map("".join),
        st.tuples(st.just("- "), outside_text(60), comment).map("".join),
    )
    return "\n".join(draw(st.lists(line, max_size=12)))


def _json(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


@given(document=documents())
async def test_fuzz_memory_imports(storage: Storage, document: str) -> None:
    kept, _ = await storage.memory.add(
        "the release train leaves at noon", scope="team", author="U1"
    )
    parsed = parse(document, author="U1", now=NOW)
    added = await storage.memory.add_many(parsed.memories)
    assert added.added + added.merged == len(parsed.memories)
    # Whatever was imported exports and parses again, and nothing stored before is lost.
    memories = await storage.memory.list(scope="team", limit=None)
    parse(render(memories, NOW), author="U2", now=NOW)
    assert await storage.memory.get(kept.id) is not None
