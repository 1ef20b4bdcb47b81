"""``corral run``: the long-running service — Slack (Socket Mode or HTTP), the workers, the
scheduler and the HTTP server — until it is told to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from contextlib import suppress

from aiohttp import web

from bot.adapter import ChatAdapter
from bot.app import Core, StartupError
from bot.http_server import build_http_app

log = logging.getLogger("corral.service")


async def serve(core: Core, stop: asyncio.Event | None = None) -> None:
    """Run until SIGINT/SIGTERM (or ``stop`` is set)."""
    settings = core.settings
    if not settings.slack_bot_token:
        raise StartupError(
            "nothing to run: no chat platform is configured. Set SLACK_BOT_TOKEN (and "
            "SLACK_APP_TOKEN for Socket Mode, or SLACK_SIGNING_SECRET for HTTP) in .env, "
            "or talk to the team in the terminal with `corral chat`."
        )
    from bot.slack.app import slack_parts

    slack = slack_parts(core, settings.slack_bot_token, settings.slack_api_url)
    adapters: dict[str, ChatAdapter] = {"slack": slack.adapter}
    workers = core.workers(adapters)
    scheduler = core.scheduler(adapters)
    socket_mode = bool(settings.slack_app_token)
    if not socket_mode and not settings.slack_signing_secret:
        raise StartupError(
            "Slack in HTTP mode needs SLACK_SIGNING_SECRET (or set SLACK_APP_TOKEN for "
            "Socket Mode)."
        )
    bolt = slack.attach(core, workers, settings.slack_signing_secret)
    socket = None
    if settings.slack_app_token:
        from bot.slack.socket_mode import SocketModeConnection

        # Watched, rebuilt with backoff when slack_sdk cannot recover, and reported on
        # /healthz; it connects in the background, so a Slack outage never blocks start-up.
        socket = SocketModeConnection(
            bolt, settings.slack_app_token, unhealthy_after=settings.corral_unhealthy_after
        )
    http = build_http_app(
        core.storage,
        slack=None if socket_mode else slack.handle_http,
        health=socket.health if socket is not None else None,
    )
    runner = web.AppRunner(http, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, settings.corral_http_host, settings.corral_http_port).start()
    log.info("HTTP on %s:%d", settings.corral_http_host, settings.corral_http_port)
    await core.models.warm_up()
    workers.start()
    await scheduler.start()
    if socket is not None:
        await socket.start()
    stop = stop or _stop_on_signals()
    try:
        await stop.wait()
    finally:
        if socket is not None:
            await socket.close()
        await scheduler.stop()
        await workers.stop()
        await runner.cleanup()
        await slack.close()


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    return stop
