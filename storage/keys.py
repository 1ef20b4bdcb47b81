"""The key of a thread: the one value that says which conversation something belongs to."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ThreadKey:
    """A thread on a platform. ``thread`` is the id of the thread's first message."""

    platform: str
    channel: str
    thread: str
