"""Posting to Discord under each agent's persona: a webhook per parent channel (name and
avatar per message), or a bot message led by the persona's name in bold where webhooks
are not permitted (DMs, or no Manage Webhooks)."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from typing import Any, Literal

import discord

from corral.agents.conversation import Place, Reply
from corral.agents.team import Team
from corral.bot.adapter import OnPart, ThreadLine
from corral.bot.coordinator import Route
from corral.bot.decisions import RequestMessages
from corral.bot.discord.approvals import request_view
from corral.bot.discord.events import NEW_THREAD, PLATFORM, WHERE
from corral.bot.inbound import Inbound
from corral.bot.text_split import split_message

log = logging.getLogger("corral.discord")

#: Discord refuses messages over 2,000 characters.
MESSAGE_LIMIT = 2_000
PICKED_UP_REACTION = "👀"
WEBHOOK_NAME = "Corral"
#: Thread names are at most 100 characters.
THREAD_NAME_LIMIT = 100
#: How many posted messages are remembered, to continue a conversation from a reply.
REMEMBERED_POSTS = 5_000
#: Messages of a thread read back as context.
HISTORY_LIMIT = 100

#: When a new conversation gets a Discord thread: always, only in a busy channel (another
#: person wrote there lately), or never (answers go in the channel; a reply continues).
ThreadMode = Literal["always", "busy", "never"]


@dataclass(frozen=True)
class Persona:
    """How an agent appears: its name, and its icon when that is an image URL (webhooks
    take avatars as URLs; an emoji icon leaves the webhook's own avatar)."""

    name: str
    avatar_url: str | None = None


@dataclass(frozen=True)
class Target:
    """Where a post goes: the channel (a guild text channel or a DM), the thread in it,
    and the message it answers when it is neither in a thread nor new."""

    channel: discord.abc.Messageable
    thread: int | None = None
    answers: int | None = None


class DiscordAdapter:
    """The workers' view of Discord: show that a message was taken, post replies, read
    a thread back."""

    platform = PLATFORM

    def __init__(
        self,
        client: discord.Client,
        team: Team,
        *,
        requests: RequestMessages,
        threads: ThreadMode = "busy",
        busy_window: float = 300.0,
    ) -> None:
        self.client = client
        self.team = team
        #: Where the message carrying a request's buttons is recorded.
        self.requests = requests
        self.threads = threads
        self.busy_window = busy_window
        #: Persona name → agent handle, to attribute the team's posts.
        self._handles = {a.display_name: h for h, a in team.agents.items()}
        #: Parent channel id → its webhook, or None when webhooks are not permitted there.
        self._webhooks: dict[int, discord.Webhook | None] = {}
        #: Ids known to be threads (seen a message in them, or opened one).
        self._thread_ids: set[int] = set()
        #: Ids that are no channel the bot can see (a top-level conversation's message).
        self._not_channels: set[int] = set()
        #: The team's posts (message id → conversation), newest last.
        self._posts: OrderedDict[int, str] = OrderedDict()
        #: Channel id → (time, author) of its recent messages, for the "busy" rule.
        self._recent: dict[int, deque[tuple[float, int]]] = {}
        #: (channel, thread) → (where, message) of the :eyes: reaction to clear.
        self._reacted: dict[tuple[str, str], tuple[int, int]] = {}

    def seen(self, message: discord.Message, channel: object) -> bool:
        """Note a person's message in ``channel`` (a thread, or the channel's activity);
        True when a conversation it starts should get its own thread. Decided here, where
        messages come in, since another process may be the one that answers."""
        if isinstance(channel, discord.Thread):
            self._thread_ids.add(channel.id)
            self._not_channels.discard(channel.id)
            return False
        wanted = isinstance(channel, discord.TextChannel) and self._wants_thread(
            channel.id, message.author.id
        )
        recent = self._recent.setdefault(message.channel.id, deque(maxlen=20))
        recent.append((time.monotonic(), message.author.id))
        return wanted

    def conversation_of(self, message: discord.Message) -> str | None:
        """The conversation a top-level message continues: a reply to one of the team's
        answers continues that answer's conversation."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            return None
        return self._posts.get(reference.message_id)

    def replied_agent(self, message: discord.Message) -> str | None:
        """The agent whose post ``message`` replies to, by the post's persona: a reply
        continues with that agent when its conversation is not known here (another
        process posted it, or this one restarted)."""
        reference = message.reference
        replied = reference.resolved if reference is not None else None
        if not isinstance(replied, discord.Message):
            return None
        line = self._line(replied)
        return line.agent if line is not None and line.agent else None

    async def with_names(self, inbound: Inbound) -> Inbound:
        """discord.py's events carry the names already (see :func:`inbound_from_message`)."""
        return inbound

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        """React with 👀 (cleared when the answer comes); open a thread for a new
        conversation when :attr:`threads` says so."""
        where = int(inbound.extra.get(WHERE) or inbound.channel)
        channel = await self.channel(where)
        if channel is None:
            return
        message = channel.get_partial_message(int(inbound.message_id))  # type: ignore[attr-defined]
        try:
            await message.add_reaction(PICKED_UP_REACTION)
            self._reacted[(inbound.channel, inbound.thread)] = (where, message.id)
        except discord.HTTPException as exc:  # a missing reaction must not stop the answer
            log.warning("adding a reaction failed: %s", exc)
        if (
            isinstance(channel, discord.TextChannel)
            and inbound.thread == inbound.message_id
            and inbound.extra.get(NEW_THREAD) == "1"
        ):
            name = f"{self._persona(route.agent).name}: {inbound.text}"
            try:
                # The thread's id is the message's: the conversation keeps its key.
                thread = await message.create_thread(name=name[:THREAD_NAME_LIMIT] or "Corral")
                self._thread_ids.add(thread.id)
                self._not_channels.discard(thread.id)
            except discord.HTTPException as exc:
                log.warning(
                    "opening a thread in #%s failed, answering in the channel: %s",
                    channel.name,
                    exc,
                )

    async def unanswered(self, inbound: Inbound) -> None:
        """Nothing to take back: 👀 goes on only once an agent has the message."""

    async def post(
        self, place: Place, reply: Reply, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        """Post ``reply`` in the conversation under the agent's persona, split into
        messages Discord accepts, from part ``start`` on, telling ``on_part`` of each;
        approval requests get Approve/Reject buttons and escalations a Resolve button, on
        their last message, recorded as the request's. Returns the messages' ids."""
        target = await self._target(place)
        persona = self._persona(reply.agent)
        webhook = await self._webhook(target.channel)
        # A bot message carries the persona in its text, and loses that much room.
        prefix = "" if webhook is not None else f"**{persona.name}**: "
        parts = split_message(reply.text, MESSAGE_LIMIT - len(prefix))
        conversation = place.thread or place.channel
        posted: list[str] = []
        for index in range(start, len(parts)):
            last = index == len(parts) - 1
            view = request_view(reply.kind, reply.approval_id) if last else None
            sent = await self._send(target, webhook, persona, prefix + parts[index], view)
            self._remember(sent.id, conversation)
            posted.append(str(sent.id))
            if view is not None:
                await self.requests.attach(reply.approval_id, str(sent.channel.id), str(sent.id))
            if on_part is not None:
                await on_part(index, str(sent.id), last)
        await self._clear_reaction(place)
        return posted

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        """A Discord thread's (or DM's) messages before ``before``, oldest first: people
        by display name, the team's posts as the agents that wrote them."""
        if not place.thread.isdigit() or not before.isdigit():
            return []
        channel = await self.channel(int(place.thread))
        if not isinstance(channel, discord.Thread | discord.DMChannel):
            # A top-level conversation: what came before is in Corral's own transcript.
            return []
        lines: list[ThreadLine] = []
        async for message in channel.history(
            limit=HISTORY_LIMIT, before=discord.Object(int(before))
        ):
            line = self._line(message)
            if line is not None:
                lines.append(line)
        lines.reverse()
        return lines

    async def notice(self, inbound: Inbound, text: str) -> None:
        """Tell the person as the bot itself (not a persona's webhook), in the message's
        conversation, addressed to them: Discord has no ephemeral messages outside
        interactions."""
        target = await self._target(Place(PLATFORM, inbound.channel, inbound.thread))
        if target.answers is None and inbound.message_id.isdigit():
            target = Target(target.channel, thread=target.thread, answers=int(inbound.message_id))
        mention = f"<@{inbound.user}> " if inbound.user.isdigit() else ""
        await self._send(target, None, Persona(""), mention + text, None)

    def _line(self, message: discord.Message) -> ThreadLine | None:
        text = message.content.strip()
        if not text:
            return None
        personas = self._handles
        me = self.client.user
        if message.webhook_id is not None and message.author.name in personas:
            return ThreadLine(text, agent=personas[message.author.name])
        if me is not None and message.author.id == me.id:
            for name, handle in personas.items():
                prefix = f"**{name}**: "
                if text.startswith(prefix):
                    return ThreadLine(text[len(prefix) :], agent=handle)
            return ThreadLine(text, user=me.name)
        return ThreadLine(text, user=message.author.display_name)

    async def _send(
        self,
        target: Target,
        webhook: discord.Webhook | None,
        persona: Persona,
        text: str,
        view: discord.ui.View | None,
    ) -> discord.Message:
        mentions = discord.AllowedMentions(everyone=False, roles=False)
        if webhook is not None:
            try:
                return await webhook.send(
                    text,
                    username=persona.name,
                    avatar_url=persona.avatar_url or discord.utils.MISSING,
                    thread=discord.Object(target.thread)
                    if target.thread
                    else discord.utils.MISSING,
                    view=view or discord.utils.MISSING,
                    allowed_mentions=mentions,
                    wait=True,
                )
            except discord.NotFound:
                # Someone deleted the webhook: forget it, and post as the bot this once.
                self._webhooks.pop(webhook.channel_id or 0, None)
                text = f"**{persona.name}**: {text}"
        channel: discord.abc.Messageable = target.channel
        if target.thread:
            channel = await self.channel(target.thread) or channel
        reference = (
            discord.MessageReference(
                message_id=target.answers,
                channel_id=target.channel.id,  # type: ignore[attr-defined]
                fail_if_not_exists=False,
            )
            if target.answers
            else None
        )
        # discord.py's stubs take "not given" (MISSING) rather than None for these.
        extra: dict[str, Any] = {}
        if view is not None:
            extra["view"] = view
        if reference is not None:
            extra["reference"] = reference
        return await channel.send(text, allowed_mentions=mentions, **extra)

    async def _target(self, place: Place) -> Target:
        channel = await self._resolve(place.channel)
        thread = place.thread
        if not thread.isdigit() or thread == place.channel:
            # A new conversation (a scheduled fire's, a post elsewhere), or a DM.
            return Target(channel)
        thread_id = int(thread)
        if thread_id in self._thread_ids:
            return Target(channel, thread=thread_id)
        found = await self.channel(thread_id)
        if isinstance(found, discord.Thread):
            self._thread_ids.add(thread_id)
            return Target(channel, thread=thread_id)
        return Target(channel, answers=thread_id)

    async def aliases(self, channel: str) -> tuple[str, ...]:
        """The other name of ``channel``: the ``#name`` of an id, the id of a ``#name``;
        none when Discord cannot say."""
        try:
            if channel.isdigit():
                found = await self.channel(int(channel))
                name = getattr(found, "name", "") or ""
                return (f"#{name}",) if name else ()
            return (str(getattr(await self._resolve(channel), "id", "")),)
        except (LookupError, discord.HTTPException):
            return ()

    async def _resolve(self, channel: str) -> discord.abc.Messageable:
        """A channel by id, or by ``#name`` (as team.yaml and schedules write them)."""
        if channel.isdigit():
            found = await self.channel(int(channel))
        else:
            name = channel.lstrip("#").lower()
            known = list(self.client.get_all_channels())
            if not known and self.client.ws is None:
                # Not connected to the gateway (``corral worker``): no cache, ask Discord.
                async for guild in self.client.fetch_guilds():
                    known += await guild.fetch_channels()
            found = next(
                (c for c in known if isinstance(c, discord.TextChannel) and c.name.lower() == name),
                None,
            )
        if found is None:
            raise LookupError(f"Discord channel {channel} is not one the bot can see")
        return found

    async def channel(self, channel_id: int) -> discord.abc.Messageable | None:
        """A channel, thread or DM by id: from discord.py's cache, else asked once."""
        found = self.client.get_channel(channel_id)
        if found is not None:
            return found  # type: ignore[return-value]
        if channel_id in self._not_channels:
            return None
        try:
            return await self.client.fetch_channel(channel_id)  # type: ignore[return-value]
        except (discord.NotFound, discord.Forbidden):
            # Most often a top-level message's id, asked about on every turn.
            self._not_channels.add(channel_id)
            return None

    async def _webhook(self, channel: discord.abc.Messageable) -> discord.Webhook | None:
        """The parent channel's Corral webhook, created once and reused; None where
        webhooks cannot be used."""
        if not isinstance(channel, discord.TextChannel):
            return None
        if channel.id in self._webhooks:
            return self._webhooks[channel.id]
        me = self.client.user
        webhook: discord.Webhook | None = None
        try:
            for existing in await channel.webhooks():
                if existing.user is not None and me is not None and existing.user.id == me.id:
                    webhook = existing
                    break
            else:
                webhook = await channel.create_webhook(name=WEBHOOK_NAME)
        except discord.Forbidden:
            log.warning(
                "no Manage Webhooks permission in #%s: agents post as the bot, their name in bold",
                channel.name,
            )
        self._webhooks[channel.id] = webhook
        return webhook

    def _wants_thread(self, channel_id: int, author: int) -> bool:
        if self.threads != "busy":
            return self.threads == "always"
        since = time.monotonic() - self.busy_window
        return any(
            when >= since and who != author for when, who in self._recent.get(channel_id, ())
        )

    def _remember(self, message_id: int, conversation: str) -> None:
        self._posts[message_id] = conversation
        if len(self._posts) > REMEMBERED_POSTS:
            self._posts.popitem(last=False)

    async def _clear_reaction(self, place: Place) -> None:
        reacted = self._reacted.pop((place.channel, place.thread), None)
        if reacted is None:
            return
        where, message_id = reacted
        channel = await self.channel(where)
        if channel is None:
            return
        me = self.client.user
        if me is None:
            return
        try:
            await channel.get_partial_message(message_id).remove_reaction(  # type: ignore[attr-defined]
                PICKED_UP_REACTION, me
            )
        except discord.HTTPException as exc:
            log.warning("removing a reaction failed: %s", exc)

    def _persona(self, handle: str) -> Persona:
        agent = self.team.agents.get(handle)
        if agent is None:
            return Persona(WEBHOOK_NAME)
        icon = agent.icon if agent.icon.startswith(("http://", "https://")) else None
        return Persona(agent.display_name, icon)
