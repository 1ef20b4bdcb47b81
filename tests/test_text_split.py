"""Long answers are split into parts a platform accepts, with code blocks intact."""

from __future__ import annotations

import pytest

from corral.bot.text_split import FENCE, split_message


def test_short_text_is_one_part() -> None:
    assert split_message("hello", 100) == ["hello"]


@pytest.mark.parametrize("limit", [50, 200, 2000, 3900])
def test_parts_respect_the_limit_and_keep_every_word(limit: int) -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "word " * (i * 7 % 90) for i in range(120))
    parts = split_message(text, limit)
    assert all(len(p) <= limit for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(text.split())


def test_paragraphs_are_preferred_cut_points() -> None:
    text = "a" * 60 + "\n\n" + "b" * 60
    assert split_message(text, 100) == ["a" * 60, "b" * 60]


def test_a_code_block_is_closed_and_reopened_across_parts() -> None:
    code = "\n".join(f"    line_{i} = {i}" for i in range(200))
    text = f"Here is the fix:\n\n{FENCE}python\n{code}\n{FENCE}\n\nThat is all."
    parts = split_message(text, 500)
    assert len(parts) > 3
    for part in parts:
        assert len(part) <= 500
        assert part.count(FENCE) % 2 == 0, part
    assert all(p.startswith(f"{FENCE}python\n") for p in parts[1:-1])
    body = "".join(p.replace(f"{FENCE}python\n", "").replace(f"\n{FENCE}", "") for p in parts)
    for i in (0, 99, 199):
        assert f"line_{i} = {i}" in body


def test_one_huge_word_is_cut_hard() -> None:
    parts = split_message("x" * 250, 100)
    assert [len(p) for p in parts] == [96, 96, 58]
