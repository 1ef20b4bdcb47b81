"""What every fake service shares: an aiohttp server on a free port of 127.0.0.1.

A fake subclasses :class:`LocalServer`, adds its routes in :meth:`LocalServer._add_routes`
and, if it holds connections open (WebSockets), closes them in
:meth:`LocalServer._close_connections`. Tests then run it in their own event loop::

    async with FakeThing() as server:
        ...

or, from synchronous code (a test that drives a subprocess), on a thread of its own::

    with FakeThing.in_thread(**options) as server:
        ...
"""

from __future__ import annotations

import abc
import asyncio
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType
from typing import Any, ClassVar, Self

from aiohttp import web


class LocalServer(abc.ABC):
    """An HTTP server on 127.0.0.1, on a free port, that subclasses give routes to."""

    #: The largest request body accepted, in bytes (aiohttp's own default).
    client_max_size: ClassVar[int] = 1024**2

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._port = 0
        #: The loop the server runs on, for handing work to it from other threads.
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def url(self) -> str:
        """Root URL of the server."""
        if self._runner is None:
            raise RuntimeError(
                f"{type(self).__name__} is not running: start() it, use it as an async "
                "context manager, or use in_thread()"
            )
        return f"http://127.0.0.1:{self._port}"

    @abc.abstractmethod
    def _add_routes(self, app: web.Application) -> None:
        """Add the server's routes to ``app``."""

    # A hook, not an abstract method: a fake that keeps no connections open has nothing to do.
    async def _close_connections(self) -> None:  # noqa: B027
        """Close the connections still open, before the server itself closes."""

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        app = web.Application(client_max_size=self.client_max_size)
        self._add_routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self._port = self._runner.addresses[0][1]
        self._loop = asyncio.get_running_loop()

    async def stop(self) -> None:
        """Close the open connections, then the server."""
        await self._close_connections()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @classmethod
    @contextmanager
    def in_thread(cls, *args: Any, **kwargs: Any) -> Iterator[Self]:
        """Run a server, made with these arguments, on its own event loop in a background
        thread while the block runs."""
        server = cls(*args, **kwargs)
        loop = asyncio.new_event_loop()
        # "FakeSlackServer" -> "fake-slack-server", to tell the threads apart in a dump.
        name = re.sub(r"(?<!^)(?=[A-Z])", "-", cls.__name__).lower()
        thread = threading.Thread(target=loop.run_forever, name=name, daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(server.start(), loop).result(timeout=10)
            yield server
        finally:
            asyncio.run_coroutine_threadsafe(server.stop(), loop).result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=10)
            loop.close()
