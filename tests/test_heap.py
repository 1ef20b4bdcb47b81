"""bot/heap.py: start-up's objects leave the garbage collector's full passes."""

from __future__ import annotations

import gc
import weakref

from corral.bot.heap import freeze_startup_heap


def test_what_is_alive_is_frozen_and_garbage_is_freed_first() -> None:
    # conftest's autouse fixture gives the test process its collector back afterwards.
    class Node:
        def __init__(self) -> None:
            self.me = self  # a cycle: only the collector frees it

    kept = Node()
    garbage = Node()
    gone = weakref.ref(garbage)
    del garbage
    assert gone() is not None
    freeze_startup_heap()

    assert gone() is None  # freed, not frozen for ever
    assert gc.get_freeze_count() > 0
    assert kept not in gc.get_objects()  # frozen: full passes no longer walk it
    after = Node()
    assert after in gc.get_objects()  # what comes later is collected as usual
