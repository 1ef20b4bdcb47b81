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

from bot.adapter import ChatAdapter
from bot.app import Core, StartupError
from bot.service import stop_on_signals

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
    adapters: dict[str, ChatAdapter] = {}
    async with AsyncExitStack() as stack:
        if settings.slack_bot_token:
            from bot.slack.app import slack_parts

            slack = slack_parts(core, settings.slack_bot_token, settings.slack_api_url)
            stack.push_async_callback(slack.close)
            adapters["slack"] = slack.adapter
        if settings.discord_token:
            from bot.discord.app import discord_parts

            discord = discord_parts(core)
            stack.push_async_callback(discord.close)
            await discord.login(settings.discord_token)
            adapters["discord"] = discord.adapter
        workers = core.workers(adapters)
        await core.models.warm_up()
        workers.start()
        stack.push_async_callback(workers.stop)
        log.info("worker: answering %s messages from the shared queue", ", ".join(adapters))
        await (stop or stop_on_signals()).wait()
