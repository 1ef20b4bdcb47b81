"""The thread as the model sees it: the newest messages that fit the history budget."""

from __future__ import annotations

from datetime import UTC, datetime

from harness import make_team

from corral.agents.prompt import HISTORY_TOKENS, approx_tokens, history_messages, recent_within
from corral.storage.transcript import TranscriptEntry


def entry(n: int, text: str, *, agent: str = "", user: str = "") -> TranscriptEntry:
    return TranscriptEntry(
        id=n,
        platform="slack",
        channel="C1",
        thread="t1",
        user=user or ("" if agent else "Alice"),
        agent=agent,
        text=text,
        created_at=datetime(2026, 11, 24, tzinfo=UTC),
    )


def test_the_newest_messages_that_fit_are_kept_in_order() -> None:
    entries = [entry(n, f"{n}" * 400) for n in range(1, 6)]  # 100 tokens each
    kept = recent_within(entries, tokens=250)
    assert [e.id for e in kept] == [4, 5]
    assert recent_within(entries, tokens=10_000) == entries
    assert recent_within([], tokens=100) == []


def test_a_newest_message_longer_than_the_budget_is_cut_not_dropped() -> None:
    pasted = "x" * 10_000
    kept = recent_within([entry(1, "hello"), entry(2, pasted)], tokens=100)
    (only,) = kept
    assert only.id == 2
    assert only.text.startswith("x" * 400)
    assert only.text.endswith("[… 9,600 more characters not shown]")


def test_a_thread_of_pasted_logs_reaches_the_model_within_the_budget() -> None:
    team = make_team()
    log = "ERROR at line 1\n" * 1_000  # about 4,000 tokens a message
    entries = [entry(n, log) for n in range(1, 30)]
    entries.append(entry(30, "beaver answered", agent="beaver"))
    entries.append(entry(31, "what broke first?"))
    messages = history_messages(team, "beaver", entries)

    text = "".join(block.text for m in messages for block in m.content)
    assert approx_tokens(text) <= HISTORY_TOKENS + 100  # the speakers' markup on top
    newest = '<message from="person" name="Alice">what broke first?</message>'
    assert messages[-1].role == "user" and text.endswith(newest)
    assert messages[-2].role == "assistant"
    assert messages[0].role == "user"  # a conversation opens with the user
