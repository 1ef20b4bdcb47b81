"""Splitting long answers into messages a chat platform accepts (Slack about 4,000
characters a message in practice, Discord 2,000), without breaking code blocks."""

from __future__ import annotations

FENCE = "```"


def split_message(text: str, limit: int) -> list[str]:
    """Parts of ``text`` no longer than ``limit``, cut at paragraph, then line, then
    word boundaries. A code block cut in two is closed at the end of one part and
    reopened at the start of the next, so each part renders on its own."""
    if limit < 2 * len(FENCE) + 10:
        raise ValueError("limit is too small to split code blocks cleanly")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit - len(FENCE) - 1)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip("\n")
        if head.count(FENCE) % 2:
            # Inside a code block: close it here and reopen it (with its language).
            language = _open_fence_language(head)
            head += f"\n{FENCE}"
            rest = f"{FENCE}{language}\n{rest}"
        parts.append(head)
    if rest:
        parts.append(rest)
    return parts or [""]


def _cut_point(text: str, limit: int) -> int:
    window = text[:limit]
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at > limit // 2:
            return at + len(separator)
    return limit


def _open_fence_language(head: str) -> str:
    opening = head.rfind(FENCE)
    line_end = head.find("\n", opening)
    return head[opening + len(FENCE) : line_end if line_end != -1 else None].strip()
