"""``corral run``: the long-running service — Slack (Socket Mode or HTTP), Discord, the
workers, the scheduler and the HTTP server — until it is told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from contextlib import AsyncExitStack, suppress
from typing import TYPE_CHECKING

from aiohttp import web

from corral.bot.app import Core, StartupError
from corral.bot.heap import freeze_startup_heap
from corral.bot.http_server import build_http_app
from corral.bot.platforms import open_platforms

if TYPE_CHECKING:
    from corral.bot.slack.socket_mode import SocketModeConnection

log = logging.getLogger("corral.service")


async def serve(core: Core, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set)."""
    settings = core.settings
    if not settings.slack_bot_token and not settings.discord_token:
        raise StartupError(
            "nothing to run: no chat platform is configured. Set SLACK_BOT_TOKEN (and "
            "SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for HTTP) or "
            "DISCORD_TOKEN in .env, or talk to the team in the terminal with `corral chat`."
        )
    if settings.slack_bot_token and not (settings.slack_app_token or settings.slack_signing_secret):
        raise StartupError(
            "Slack in HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
            "Socket Mode)."
        )
    health: dict[str, Callable[[], bool]] = {}
    async with AsyncExitStack() as stack:
        platforms = open_platforms(core, stack)
        adapters, slack, discord = platforms.adapters, platforms.slack, platforms.discord
        socket: SocketModeConnection | None = None
        workers = core.workers(adapters)
        scheduler = core.scheduler(workers)
        if slack is not None:
            bolt = slack.attach(core.chat_services(), workers, settings.slack_signing_secret)
            if settings.slack_app_token:
                from corral.bot.slack.socket_mode import SocketModeConnection

                # Watched, rebuilt with backoff when slack_sdk cannot recover, and reported
                # on /healthz; it connects in the background, so a Slack outage never
                # blocks start-up.
                connection = SocketModeConnection(
                    bolt,
                    settings.slack_app_token,
                    unhealthy_after=settings.corral_unhealthy_after,
                )
                socket = connection
                health["slack"] = lambda: all(connection.health().values())
        if discord is not None and settings.discord_token:
            discord.attach(workers)
            # Logs in now, so a refused token stops the start with a clear message.
            await discord.start(settings.discord_token)
            parts = discord
            health["discord"] = lambda: parts.health(settings.corral_unhealthy_after)
        http = build_http_app(
            core.storage,
            slack=slack.handle_http if slack is not None and socket is None else None,
            health=(lambda: {name: up() for name, up in health.items()}) if health else None,
        )
        runner = web.AppRunner(http, access_log=None)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        await web.TCPSite(runner, settings.corral_http_host, settings.corral_http_port).start()
        log.info("HTTP on %s:%d", settings.corral_http_host, settings.corral_http_port)
        await core.models.warm_up()
        freeze_startup_heap()
        workers.start()
        stack.push_async_callback(workers.stop)
        await scheduler.start()
        stack.push_async_callback(scheduler.stop)
        if socket is not None:
            await socket.start()
            stack.push_async_callback(socket.close)
        await (stop or stop_on_signals()).wait()


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
