"""Waiting without holding a worker: a run that waits for a rate limit, a concurrency cap,
a model's cooldown or a channel's posting pace gives its worker's capacity back for as
long as it waits, so that someone else's message is answered meanwhile.

The worker that runs a work item sets :data:`while_waiting` for it; code anywhere below
wraps a wait in :func:`waiting`. Outside a worker (the console, tests) a wait holds
nothing and :func:`waiting` does nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar

#: Makes the context a wait runs in: gives capacity back on entry, takes it on exit.
while_waiting: ContextVar[Callable[[], AbstractAsyncContextManager[None]] | None] = ContextVar(
    "corral_while_waiting", default=None
)


@asynccontextmanager
async def waiting() -> AsyncIterator[None]:
    """Wrap a wait: the worker's capacity serves other work until the wait is over."""
    release = while_waiting.get()
    if release is None:
        yield
        return
    # Nested waits give back once: the inner one finds no capacity left to give.
    token = while_waiting.set(None)
    try:
        async with release():
            yield
    finally:
        while_waiting.reset(token)
