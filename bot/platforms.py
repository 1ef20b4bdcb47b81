"""The chat platforms `.env` configures, opened for a process (``corral run``,
``corral worker``): their clients and the adapters the workers post through."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from corral.bot.adapter import ChatAdapter
from corral.bot.app import Core

if TYPE_CHECKING:
    from corral.bot.discord.app import DiscordParts
    from corral.bot.slack.app import SlackParts


@dataclass
class Platforms:
    """What is configured: Slack (SLACK_BOT_TOKEN) and/or Discord (DISCORD_TOKEN)."""

    adapters: dict[str, ChatAdapter] = field(default_factory=dict)
    slack: SlackParts | None = None
    discord: DiscordParts | None = None


def open_platforms(core: Core, stack: AsyncExitStack) -> Platforms:
    """The configured platforms' clients and adapters, closed when ``stack`` closes.
    Nothing connects yet: Slack's and Discord's event streams are the caller's choice."""
    settings = core.settings
    platforms = Platforms()
    if settings.slack_bot_token:
        # Imported here: a process pays for the SDKs of the platforms it serves only.
        from corral.bot.slack.app import slack_parts

        platforms.slack = slack_parts(
            core.chat_services(), settings.slack_bot_token, settings.slack_api_url
        )
        stack.push_async_callback(platforms.slack.close)
        platforms.adapters["slack"] = platforms.slack.adapter
    if settings.discord_token:
        from corral.bot.discord.app import discord_parts

        platforms.discord = discord_parts(core.chat_services(), settings)
        stack.push_async_callback(platforms.discord.close)
        platforms.adapters["discord"] = platforms.discord.adapter
    return platforms
