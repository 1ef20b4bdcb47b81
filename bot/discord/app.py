"""Wiring Discord: the discord.py client, its listeners, application commands and approval
buttons, and the connection's health."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import discord
from discord import app_commands
from discord.http import Route

from corral.bot.app import ChatServices, StartupError
from corral.bot.commands.registry import CommandContext
from corral.bot.decisions import ClickedMessage, DecisionContext, Verdict, decide
from corral.bot.discord.adapter import DiscordAdapter, ThreadMode
from corral.bot.discord.approvals import BUTTONS, DecidingClient
from corral.bot.discord.commands import OnceTree, command_groups
from corral.bot.discord.events import (
    PLATFORM,
    has_role,
    inbound_from_message,
    is_from_person,
)
from corral.bot.gateway import Workers
from corral.bot.settings import Settings

log = logging.getLogger("corral.discord")

DEFAULT_API_URL = "https://discord.com/api/v10"


def intents() -> discord.Intents:
    """What Corral asks Discord for: guilds, guild and DM messages, and message content
    (a privileged intent, switched on in the developer portal)."""
    wanted = discord.Intents.none()
    wanted.guilds = True
    wanted.guild_messages = True
    wanted.dm_messages = True
    wanted.message_content = True
    return wanted


def use_api_url(api_url: str) -> None:
    """Point discord.py's REST and webhook calls at ``api_url`` (proxies, tests).

    The one process-wide change Corral makes to a library, and only here (called where
    Discord is wired from the settings, and by ``corral check``): discord.py builds every
    URL from the class attribute ``Route.BASE``, and posts through webhooks and answers
    to interactions go through one module-level adapter, not through the client, so there
    is no per-client address to give. One process talks to one Discord.
    """
    Route.BASE = api_url.rstrip("/")


class CorralClient(DecidingClient):
    """discord.py's client with Corral's listeners: people's messages go to the gateway,
    application commands and approval buttons are registered at start."""

    def __init__(self, parts: DiscordParts, **options: Any) -> None:
        super().__init__(intents=intents(), **options)
        self.parts = parts
        self.tree: app_commands.CommandTree[CorralClient] = OnceTree(self, parts.services.requests)

    async def setup_hook(self) -> None:
        # Persistent: a click on any Approve/Reject/Resolve button reaches this process.
        self.add_dynamic_items(*BUTTONS)
        await self.parts.sync_commands()

    async def on_ready(self) -> None:
        self.parts.connected_since = time.monotonic()
        self.parts.disconnected_since = None
        log.info("Discord: connected as %s to %d servers", self.user, len(self.guilds))

    async def on_resumed(self) -> None:
        self.parts.disconnected_since = None
        log.info("Discord: session resumed")

    async def on_disconnect(self) -> None:
        if self.parts.disconnected_since is None:
            self.parts.disconnected_since = time.monotonic()
        log.warning("Discord: disconnected; discord.py reconnects with backoff")

    async def on_message(self, message: discord.Message) -> None:
        await self.parts.receive(message)


class DiscordParts:
    """What Discord adds to a running Corral."""

    def __init__(
        self,
        services: ChatServices,
        *,
        guild_ids: tuple[int, ...] = (),
        threads: ThreadMode = "busy",
        guild_ready_timeout: float = 2.0,
    ) -> None:
        self.services = services
        self.guild_ids = guild_ids
        self.client = CorralClient(self, guild_ready_timeout=guild_ready_timeout)
        self.adapter = DiscordAdapter(
            self.client, services.team, requests=services.approvals, threads=threads
        )
        services.directory.register(PLATFORM, aliases=self.adapter.aliases, membership=has_role)
        self.workers: Workers | None = None
        self.connected_since: float | None = None
        self.disconnected_since: float | None = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.failure: str | None = None
        for group in command_groups(self._command_context):
            self.client.tree.add_command(group)

    def attach(self, workers: Workers) -> None:
        """Decisions are carried out by ``workers`` (which post through :attr:`adapter`)."""
        self.workers = workers
        self.client.decide = self.decide

    async def login(self, token: str) -> None:
        """Log in to Discord's REST API (enough to post: ``corral worker``); a refused
        token fails here, clearly."""
        try:
            await self.client.login(token)
        except discord.LoginFailure as exc:
            raise StartupError(
                "DISCORD_TOKEN was refused by Discord: copy the bot's token from the developer "
                "portal (Bot → Reset Token) into .env"
            ) from exc

    async def start(self, token: str) -> None:
        """Log in and connect to the gateway in the background; discord.py reconnects by
        itself when the connection drops."""
        await self.login(token)
        self._task = asyncio.create_task(self._connect(), name="corral-discord")

    async def _connect(self) -> None:
        try:
            await self.client.connect(reconnect=True)
        except discord.PrivilegedIntentsRequired:
            self.failure = (
                "Discord refused the connection: switch on the Message Content Intent in the "
                "developer portal (Bot → Privileged Gateway Intents)"
            )
            log.error("%s", self.failure)
        except Exception as exc:  # reported on /healthz, so a supervisor restarts us
            self.failure = f"the Discord connection ended: {type(exc).__name__}: {exc}"
            log.exception("Discord connection ended")

    async def close(self) -> None:
        """Disconnect and close discord.py's HTTP session."""
        await self.client.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    def health(self, unhealthy_after: float) -> bool:
        """Up, or down for less than ``unhealthy_after`` seconds (reconnecting)."""
        if self.failure is not None:
            return False
        if self.client.is_ready() and self.disconnected_since is None:
            return True
        down_since = self.disconnected_since
        return down_since is not None and time.monotonic() - down_since < unhealthy_after

    async def receive(self, message: discord.Message) -> None:
        """A message the bot sees: a person's goes to the gateway."""
        me = self.client.user
        if me is None or not is_from_person(message, me.id):
            return
        channel: object = message.channel
        if isinstance(channel, discord.PartialMessageable):
            # Not in discord.py's cache (a thread it was not told about): ask Discord,
            # or a thread's message would start a new conversation in the parent.
            channel = await self.adapter.channel(channel.id) or channel
        new_thread = self.adapter.seen(message, channel)
        conversation = self.adapter.conversation_of(message)
        inbound = inbound_from_message(
            message,
            me.id,
            conversation=conversation,
            channel=channel,
            new_thread=new_thread,
            agent=None if conversation else self.adapter.replied_agent(message),
        )
        if inbound is not None:
            await self.services.gateway.submit(inbound)

    async def sync_commands(self) -> None:
        """Register the commands with Discord: with the configured servers (at once), or
        globally (Discord takes up to an hour to show global changes)."""
        tree = self.client.tree
        try:
            if not self.guild_ids:
                await tree.sync()
            for guild_id in self.guild_ids:
                guild = discord.Object(guild_id)
                tree.copy_global_to(guild=guild)
                await tree.sync(guild=guild)
        except discord.HTTPException as exc:
            # Messages still work without commands; say how to get them.
            log.error(
                "Discord: registering /corral and /memory failed (%s). Invite the bot with the "
                "applications.commands scope.",
                exc,
            )

    def _command_context(self, user: str, channel: str) -> CommandContext:
        return self.services.command_context(user, PLATFORM, channel)

    async def decide(
        self, interaction: discord.Interaction[Any], approval_id: str, verdict: Verdict
    ) -> None:
        """A click on a request's button: the decision is made (or refused) and the
        clicked message shows its verdict; a refusal is told only to the person."""
        workers = self.workers
        if workers is None:
            await interaction.response.send_message(
                "This Corral cannot decide approvals right now.", ephemeral=True
            )
            return
        message = interaction.message
        clicked = ClickedMessage(
            str(interaction.channel_id or ""), str(message.id) if message is not None else ""
        )
        context = DecisionContext(self.services.team, self.services.approvals, workers, PLATFORM)
        result = await decide(context, approval_id, verdict, str(interaction.user.id), clicked)
        if not result.ok:
            await interaction.response.send_message(result.text, ephemeral=True)
            return
        original = message.content if message is not None else ""
        # The buttons go at once; a resumed run's answer follows in the thread.
        await interaction.response.edit_message(
            content=f"{original}\n{result.verdict}".strip(), view=None
        )


def parse_guild_ids(value: str) -> tuple[int, ...]:
    """``DISCORD_GUILD_IDS``: server ids, comma-separated."""
    words = [w.strip() for w in value.split(",") if w.strip()]
    bad = [w for w in words if not w.isdigit()]
    if bad:
        raise StartupError(
            f"DISCORD_GUILD_IDS holds {', '.join(bad)}, which is not a server id: write the "
            "numeric ids (right-click the server → Copy Server ID), separated by commas"
        )
    return tuple(int(w) for w in words)


def discord_parts(
    services: ChatServices, settings: Settings, guild_ready_timeout: float = 2.0
) -> DiscordParts:
    """The client and adapter from the settings; :meth:`DiscordParts.start` connects."""
    use_api_url(settings.discord_api_url)
    return DiscordParts(
        services,
        guild_ids=parse_guild_ids(settings.discord_guild_ids),
        threads=settings.corral_discord_threads,
        guild_ready_timeout=guild_ready_timeout,
    )
