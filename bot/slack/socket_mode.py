"""Slack over Socket Mode that never dies silently.

slack_sdk's aiohttp ``SocketModeClient`` (under bolt's ``AsyncSocketModeHandler``) does
most of the work, and Corral keeps it doing it. It owns the WebSocket. It pings every
``ping_interval``, and aiohttp's heartbeat closes a link that sends no pong. It counts a
session with no pong for four intervals as stale. Its monitor reconnects a closed or
stale session within a ping interval, it reconnects at once when Slack sends a close frame
or ``disconnect``, and it dispatches envelopes to bolt and sends the acks.

It misses five things, which :class:`SocketModeConnection` adds:

* **Backoff.** When reconnecting fails, the SDK retries at the fixed ``ping_interval``,
  forever, logging errors every time. Corral gives the SDK
  ``rebuild_after`` seconds to recover. After that it closes the client and builds a new
  one, with exponential, capped and jittered waits between attempts.
* **A way out of states the SDK never leaves.** A background task can die, or a reconnect
  can get stuck; slack_sdk has had such bugs (#1446, #1922, fixed by now), and its
  reconnect runs inside those same tasks. Corral then replaces the whole client rather
  than waiting for it.
* **A start that does not block.** ``connect()`` returns only once Slack has answered, so
  a Slack outage at start-up would hang ``corral run``. Here the first connection is made
  in the background, like every later one.
* **A state with a time.** The SDK knows whether it is connected now, but not since when.
  Corral logs each disconnect (warning, with the reason) and each reconnect (info, with
  how long it took). :meth:`SocketModeConnection.health` turns unhealthy once the link has
  been down for ``unhealthy_after`` seconds, so that a supervisor restarts the process.
* **The Web API side.** Every answer is posted through the Web API with the bot token.
  A periodic ``auth.test`` checks both and feeds the same health. People who run
  comparable bots also report it as the remedy for sessions that stop delivering events
  after an idle reconnect (slackapi/bolt-python#1529).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace

from aiohttp import ClientError, ClientWebSocketResponse, ServerTimeoutError, WSMessage, WSMsgType
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode.aiohttp import SocketModeClient

log = logging.getLogger("corral.slack.socket_mode")

#: ``auth.test`` errors that mean the bot token itself is refused: reconnecting will not
#: help, a person has to install the app again or fix ``SLACK_BOT_TOKEN``.
TOKEN_ERRORS = frozenset(
    {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive"}
)

#: What Slack's ``disconnect`` reasons mean, for the log.
_DISCONNECT_REASONS = {
    "warning": "Slack will close this connection soon",
    "refresh_requested": "Slack is recycling this connection",
    "link_disabled": "Socket Mode was turned off in the app's settings",
    "too_many_websockets": "the app has too many Socket Mode connections open",
}


@dataclass(frozen=True)
class Backoff:
    """Waits between failed connection attempts. Each wait is exponential in the number of
    failures and capped. It is also jittered: a random amount between half and all of the
    ceiling, so that processes which lost Slack together do not return in lockstep. Waits
    still never shrink from one failure to the next."""

    #: The ceiling after the first failure, in seconds.
    base: float = 1.0
    #: The largest wait, in seconds.
    cap: float = 60.0
    factor: float = 2.0

    def delay(self, failures: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failures`` consecutive failures (1 for the first)."""
        # The exponent is bounded because a float power overflows long before a day of
        # failures has passed; the cap applies long before that bound does.
        exponent = min(max(failures, 1) - 1, 64)
        ceiling = min(self.cap, self.base * self.factor**exponent)
        return ceiling / 2 + (rng or random).uniform(0, ceiling / 2)


@dataclass(frozen=True)
class ConnectionStatus:
    """Where the Socket Mode link stands."""

    connected: bool
    #: ``clock()`` when it became so.
    since: float
    #: Why it is down (or, when connected, how the last connection came about).
    reason: str
    #: Sessions Slack has greeted with ``hello`` so far.
    sessions: int = 0
    #: ``clock()`` since when ``auth.test`` has been failing, ``None`` while it works.
    web_api_down_since: float | None = None


@dataclass
class _Session:
    """One slack_sdk client and what Corral has seen on it."""

    handler: AsyncSocketModeHandler
    #: The WebSocket Slack last greeted with ``hello``: only that one counts as up.
    greeted: ClientWebSocketResponse | None = None
    hello: asyncio.Event = field(default_factory=asyncio.Event)
    #: Slack's reason, when it asked for a reconnect and the new session has not come yet.
    refresh: str | None = None

    @property
    def client(self) -> SocketModeClient:
        return self.handler.client


class SocketModeConnection:
    """Runs bolt ``app`` over Socket Mode, watches the link, rebuilds it when slack_sdk
    cannot, and reports health for ``GET /healthz``.

    ``start()`` returns at once; the connection is made (and remade) in the background
    until ``close()``.
    """

    def __init__(
        self,
        app: AsyncApp,
        app_token: str,
        *,
        unhealthy_after: float = 120.0,
        ping_interval: float = 10.0,
        rebuild_after: float | None = None,
        connect_timeout: float | None = None,
        probe_interval: float = 60.0,
        probe_timeout: float = 10.0,
        backoff: Backoff | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``unhealthy_after``: seconds down before :meth:`health` says so.
        ``ping_interval``: the SDK's ping period; detection of a dead link takes one to
        four of them. ``rebuild_after``: seconds the SDK gets to reconnect by itself
        before Corral replaces the client (default: three ping intervals, enough for
        its monitor to try twice). ``connect_timeout``: the time one attempt of Corral's
        may take, up to ``hello`` (default: a ping interval, at least 10 s, so that the
        SDK's own retry loop inside ``connect()`` gets one try, not several).
        ``probe_interval`` / ``probe_timeout``: the ``auth.test`` check.
        """
        self.app = app
        self.app_token = app_token
        self.unhealthy_after = unhealthy_after
        self.ping_interval = ping_interval
        self.rebuild_after = 3 * ping_interval if rebuild_after is None else rebuild_after
        self.connect_timeout = (
            max(ping_interval, 10.0) if connect_timeout is None else connect_timeout
        )
        self.probe_interval = probe_interval
        self.probe_timeout = probe_timeout
        self.backoff = backoff or Backoff()
        self._rng = rng or random.Random()
        self._clock = clock
        # Looking at the link costs no I/O, so it is polled often; hello and disconnect
        # messages wake the watcher sooner.
        self._check_interval = min(1.0, ping_interval / 4)
        self._status = ConnectionStatus(False, clock(), "not connected yet")
        self._session: _Session | None = None
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._retiring: set[asyncio.Task[None]] = set()

    # -----------------------------------------------------------------------------------
    # Public

    @property
    def status(self) -> ConnectionStatus:
        """The link's state now."""
        return self._status

    @property
    def client(self) -> SocketModeClient | None:
        """The slack_sdk client in use now (a new one after each rebuild)."""
        return self._session.client if self._session is not None else None

    def health(self) -> dict[str, bool]:
        """``{"slack": healthy}`` for ``GET /healthz``. Short outages the SDK or Corral
        repair are healthy; only a link down (or a Web API failing) for
        ``unhealthy_after`` seconds is not."""
        if any(task.done() for task in self._tasks):
            # A watcher died: nothing would reconnect any more.
            return {"slack": False}
        now = self._clock()
        status = self._status
        socket_ok = status.connected or now - status.since < self.unhealthy_after
        api_down = status.web_api_down_since
        api_ok = api_down is None or now - api_down < self.unhealthy_after
        return {"slack": socket_ok and api_ok}

    async def start(self) -> None:
        """Begin connecting, in the background."""
        if self._tasks:
            raise RuntimeError("already started")
        self._tasks = [
            asyncio.create_task(self._run(), name="corral-slack-socket-mode"),
            asyncio.create_task(self._probe(), name="corral-slack-auth-probe"),
        ]
        for task in self._tasks:
            task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        """The watchers run until close(); if one ends before, say so loudly (health()
        turns unhealthy at once, too)."""
        if not task.cancelled():
            log.error(
                "Slack Socket Mode: %s ended unexpectedly (%r); /healthz reports unhealthy",
                task.get_name(),
                task.exception(),
            )

    async def close(self) -> None:
        """Disconnect and stop watching."""
        for task in self._tasks:
            task.cancel()
        # A watcher that died has been logged by _ended(); its error is not raised again.
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._session is not None:
            self._retire(self._session)
            self._session = None
        if self._retiring:
            await asyncio.wait(self._retiring)

    # -----------------------------------------------------------------------------------
    # Connecting and watching

    async def _run(self) -> None:
        failures = 0
        while True:
            session = self._session = self._new_session()
            reason = await self._connect(session)
            if reason is None:
                reason, stable = await self._watch(session)
                what = f"slack_sdk did not restore the connection ({reason}); rebuilding it"
                # Only a session that lasted resets the backoff: one that Slack accepts
                # and then drops at once must not turn this loop into a tight one.
                if stable:
                    failures = 0
            else:
                what = f"connecting failed ({reason})"
            self._session = None
            self._retire(session)
            self._mark_down(reason)
            failures += 1
            delay = self.backoff.delay(failures, self._rng)
            log.warning(
                "Slack Socket Mode: %s; trying again in %.1f s (failure %d in a row)",
                what,
                delay,
                failures,
            )
            await asyncio.sleep(delay)

    def _new_session(self) -> _Session:
        handler = AsyncSocketModeHandler(self.app, self.app_token, ping_interval=self.ping_interval)
        session = _Session(handler)

        async def on_message(message: WSMessage) -> None:
            self._on_message(session, message)

        handler.client.on_message_listeners.append(on_message)
        return session

    async def _connect(self, session: _Session) -> str | None:
        """One attempt, up to Slack's ``hello``; the reason it failed, or ``None``."""
        client = session.client
        try:
            async with asyncio.timeout(self.connect_timeout):
                # Asked here, not inside connect(): there a refusal is retried at the
                # SDK's fixed interval and its error never reaches us; here it ends this
                # attempt at once, with Slack's error, and the backoff applies.
                client.wss_uri = await client.issue_new_wss_url()
                await client.connect()  # type: ignore[no-untyped-call]  # untyped in slack_sdk
                await session.hello.wait()
        except SlackApiError as exc:
            error = exc.response.get("error", "error")
            if error in ("invalid_auth", "not_authed", "not_allowed_token_type"):
                return f"apps.connections.open refused SLACK_APP_TOKEN ({error})"
            return f"apps.connections.open failed: {error}"
        except TimeoutError:
            if client.current_session is None:
                # slack_sdk logged the WebSocket error itself, and retried in vain.
                return f"the WebSocket did not open within {self.connect_timeout:g} s"
            return f"no hello from Slack within {self.connect_timeout:g} s"
        except (SlackClientError, ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # Unforeseen, so with its traceback; but the next attempt must still come.
            log.exception("Slack Socket Mode: unexpected error while connecting")
            return f"{type(exc).__name__}: {exc}"
        return None

    async def _watch(self, session: _Session) -> tuple[str, bool]:
        """Follow the session while slack_sdk keeps it alive. Returns why it gave up, and
        whether the link was ever up for ``rebuild_after`` seconds in a row."""
        client = session.client
        announced: ClientWebSocketResponse | None = None
        stable = False
        while True:
            with suppress(TimeoutError):
                async with asyncio.timeout(self._check_interval):
                    await self._wake.wait()
            self._wake.clear()
            dead = _dead_task(client)
            if dead is not None:
                self._mark_down(dead, session)
                # The SDK cannot reconnect without its tasks; waiting would be no use.
                return dead, stable
            if await self._is_up(session):
                if session.greeted is not announced:
                    if announced is not None and self._status.connected:
                        # slack_sdk replaced the session between two looks: the old one
                        # still ended, and the log should say so and why.
                        self._mark_down(self._why_down(session, announced), session)
                    announced = session.greeted
                    self._mark_up(session)
                stable = stable or self._clock() - self._status.since >= self.rebuild_after
                continue
            self._mark_down(self._why_down(session, announced or client.current_session), session)
            down_for = self._clock() - self._status.since
            if down_for >= self.rebuild_after:
                return f"down for {down_for:.1f} s: {self._status.reason}", stable

    async def _is_up(self, session: _Session) -> bool:
        client = session.client
        return (
            session.greeted is not None
            and client.current_session is session.greeted
            and await client.is_connected()
        )

    def _on_message(self, session: _Session, message: WSMessage) -> None:
        """Slack's own messages on the link: ``hello`` marks a session usable,
        ``disconnect`` announces a reconnect the SDK is about to make."""
        if message.type != WSMsgType.TEXT or not isinstance(message.data, str):
            return
        # Envelopes are parsed by the SDK; only the rare control messages are parsed here.
        if '"hello"' not in message.data and '"disconnect"' not in message.data:
            return
        try:
            body = json.loads(message.data)
        except ValueError:
            return
        kind = body.get("type") if isinstance(body, dict) else None
        if kind == "hello":
            session.greeted = session.client.current_session
            session.hello.set()
            self._wake.set()
        elif kind == "disconnect":
            reason = str(body.get("reason") or "unknown")
            session.refresh = reason
            meaning = _DISCONNECT_REASONS.get(reason, "Slack asked for a new connection")
            level = logging.ERROR if reason == "link_disabled" else logging.INFO
            log.log(level, "Slack Socket Mode: disconnect from Slack (%s: %s)", reason, meaning)
            self._wake.set()

    def _why_down(self, session: _Session, ws: ClientWebSocketResponse | None) -> str:
        """Why ``ws``, the last WebSocket seen up, is no longer."""
        client = session.client
        if session.refresh is not None:
            return f"Slack asked for a new connection ({session.refresh})"
        if ws is None:
            return "no session"
        if ws.closed:
            error = ws.exception()
            if isinstance(error, ServerTimeoutError):
                return f"the connection was wedged: {error}"
            if ws.close_code in (None, 1006):
                return "the connection was lost"
            return f"Slack closed the connection (code {ws.close_code})"
        if client.current_session is not ws:
            return "slack_sdk replaced the session"
        if client.last_ping_pong_time is not None:
            silent = time.time() - client.last_ping_pong_time
            return f"no pong from Slack for {silent:.1f} s"
        return "the session is stale"

    def _mark_up(self, session: _Session) -> None:
        previous = self._status
        how = f"after Slack asked ({session.refresh})" if session.refresh else "new session"
        session.refresh = None
        self._status = replace(
            previous,
            connected=True,
            since=self._clock(),
            reason=how,
            sessions=previous.sessions + 1,
        )
        if previous.sessions == 0:
            log.info("Slack Socket Mode: connected")
        else:
            log.info(
                "Slack Socket Mode: reconnected after %.1f s down (%s)",
                self._clock() - previous.since,
                previous.reason,
            )

    def _mark_down(self, reason: str, session: _Session | None = None) -> None:
        """Record the link as down. A reconnect Slack asked for (``session.refresh``) is
        routine and logged as info; anything else is a warning."""
        previous = self._status
        if not previous.connected:
            if previous.sessions == 0:
                # Never connected yet: the latest failure says most. Once connected,
                # the reason the link went down is kept until it is back.
                self._status = replace(previous, reason=reason)
            return
        self._status = replace(previous, connected=False, since=self._clock(), reason=reason)
        planned = session is not None and session.refresh is not None
        log.log(
            logging.INFO if planned else logging.WARNING,
            "Slack Socket Mode: disconnected (%s)",
            reason,
        )

    def _retire(self, session: _Session) -> None:
        """Close a client in the background: closing a wedged WebSocket can wait for
        aiohttp's close timeout, and the new connection should not."""

        async def close() -> None:
            try:
                async with asyncio.timeout(15):
                    await session.client.close()  # type: ignore[no-untyped-call]
            except Exception as exc:  # a dead client may fail to close; it is dropped
                log.debug("closing a Socket Mode client failed: %r", exc)

        task = asyncio.create_task(close())
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    # -----------------------------------------------------------------------------------
    # The Web API

    async def _probe(self) -> None:
        """``auth.test`` now and every ``probe_interval``."""
        while True:
            error = await self._auth_test()
            down_since = self._status.web_api_down_since
            if error is None:
                if down_since is not None:
                    log.info(
                        "Slack Web API: auth.test works again after %.1f s",
                        self._clock() - down_since,
                    )
                    self._status = replace(self._status, web_api_down_since=None)
            elif down_since is None:
                self._status = replace(self._status, web_api_down_since=self._clock())
                if error in TOKEN_ERRORS:
                    log.error(
                        "Slack Web API: SLACK_BOT_TOKEN was refused (%s); answers cannot "
                        "be posted until the token is fixed",
                        error,
                    )
                else:
                    log.warning("Slack Web API: auth.test failed (%s)", error)
            await asyncio.sleep(self.probe_interval)

    async def _auth_test(self) -> str | None:
        try:
            async with asyncio.timeout(self.probe_timeout):
                await self.app.client.auth_test()
        except SlackApiError as exc:
            return str(exc.response.get("error", "error"))
        except TimeoutError:
            return f"no answer within {self.probe_timeout:g} s"
        except (SlackClientError, ClientError, OSError) as exc:
            return f"{type(exc).__name__}: {exc}"
        except Exception as exc:
            # Unforeseen, so with its traceback; the probe itself must keep running.
            log.exception("Slack Web API: auth.test failed unexpectedly")
            return f"{type(exc).__name__}: {exc}"
        return None


def _dead_task(client: SocketModeClient) -> str | None:
    """Which of the SDK's background tasks has ended, if one has: without it the client
    neither receives, nor processes, nor reconnects, and never says so."""
    tasks = {
        "message receiver": client.message_receiver,
        "message processor": client.message_processor,
        "session monitor": client.current_session_monitor,
    }
    for name, task in tasks.items():
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            return f"slack_sdk's {name} stopped" + (f" ({error!r})" if error else "")
    return None
