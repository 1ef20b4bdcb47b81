"""``corral worker``: workers only, for scale-out. The ``corral run`` processes take the
platforms' events in and store them; workers on any machine take the stored messages from
the shared Redis queue, answer them and post the answers themselves.

A worker connects to no event stream: it posts through Slack's Web API and Discord's REST
API, which is all answering needs. Decisions on approvals, slash commands and schedules
stay with ``corral run``.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack

from corral.bot.app import Core, StartupError
from corral.bot.heap import freeze_startup_heap
from corral.bot.platforms import open_platforms
from corral.bot.service import stop_on_signals

log = logging.getLogger("corral.worker")


async def work(core: Core, stop: asyncio.Event | None = None) -> None:
    """Answer messages from the shared queue until SIGINT/SIGTERM (or ``stop``)."""
    settings = core.settings
    if not settings.redis_url:
        raise StartupError(
            "corral worker takes its messages from the shared queue in Redis: set REDIS_URL "
            "(the same for `corral run` and every worker), and a DATABASE_URL they all reach."
        )
    if not settings.slack_bot_token and not settings.discord_token:
        raise StartupError(
            "corral worker posts answers on the platforms `corral run` serves: set "
            "SLACK_BOT_TOKEN and/or DISCORD_TOKEN as for `corral run`."
        )
    async with AsyncExitStack() as stack:
        platforms = open_platforms(core, stack)
        adapters = platforms.adapters
        if platforms.discord is not None and settings.discord_token:
            # REST only: posting needs no gateway connection.
            await platforms.discord.login(settings.discord_token)
        workers = core.workers(adapters)
        await core.models.warm_up()
        freeze_startup_heap()
        workers.start()
        stack.push_async_callback(workers.stop)
        log.info("worker: answering %s messages from the shared queue", ", ".join(adapters))
        await (stop or stop_on_signals()).wait()
