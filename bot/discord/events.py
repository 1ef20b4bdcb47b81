"""Discord messages as platform-neutral messages.

Discord threads are channels of their own whose id is the id of the message they were
started from. So a conversation is keyed by its parent channel and the id of its first
message either way: a thread's id, or a top-level message's id before (or without) a
thread. A DM is one running conversation, keyed by the DM channel.
"""

from __future__ import annotations

import re
from typing import Any

import discord

from corral.bot.inbound import Inbound

PLATFORM = "discord"

#: Message types that are a person saying something (joins, pins, thread notices ... are not).
PERSON_TYPES = frozenset({discord.MessageType.default, discord.MessageType.reply})
#: ``extra`` key: the channel the message is in (the thread itself, for a thread's message).
WHERE = "discord_channel"
#: ``extra`` key: "1" when the conversation the message starts gets a thread of its own.
NEW_THREAD = "discord_new_thread"
#: ``extra`` key: the ids of the sender's roles in the server, space-separated (for
#: ``allowed_users``, where a role id stands for its members).
ROLES = "discord_roles"

_USER_MENTION = re.compile(r"<@!?(\d+)>")


def is_from_person(message: discord.Message, bot_id: int) -> bool:
    """False for the bot's own posts, webhooks (the team's personas), other bots and
    system messages: none of them is a message for the team, and answering them loops."""
    return (
        message.author.id != bot_id
        and not message.author.bot
        and message.webhook_id is None
        and message.type in PERSON_TYPES
    )


def inbound_from_message(
    message: discord.Message,
    bot_id: int,
    *,
    conversation: str | None = None,
    channel: Any = None,
    new_thread: bool = False,
    agent: str | None = None,
) -> Inbound | None:
    """The person's message as an :class:`Inbound`; None when it is not one.

    ``conversation`` is the thread a top-level message continues (a reply to one of the
    team's answers); without it a top-level message starts its own. ``channel`` is the
    message's channel when discord.py's cache did not know it (a thread made while the
    bot was away). ``new_thread``: the conversation gets a thread of its own; ``agent``:
    the agent the message answers (a reply to a post whose conversation is not known).
    """
    if not is_from_person(message, bot_id):
        return None
    channel = channel or message.channel
    to_app = isinstance(channel, discord.DMChannel) or any(
        user.id == bot_id for user in message.mentions
    )
    if isinstance(channel, discord.Thread):
        parent = channel.parent
        where, thread = str(channel.parent_id), str(channel.id)
        channel_name = parent.name if parent is not None else ""
    elif isinstance(channel, discord.DMChannel):
        where, thread, channel_name = str(channel.id), str(channel.id), ""
    else:
        where = str(channel.id)
        thread = conversation or str(message.id)
        channel_name = getattr(channel, "name", "") or ""
    return Inbound(
        platform=PLATFORM,
        # Discord has no event ids: a message is delivered once per connection, and its
        # id is what a redelivery after a resume would repeat.
        event_id=f"message-{message.id}",
        channel=where,
        message_id=str(message.id),
        thread=thread,
        user=str(message.author.id),
        text=readable_text(message, bot_id),
        channel_name=channel_name,
        user_name=message.author.display_name,
        to_app=to_app,
        agent_mentions=(agent,) if agent else (),
        extra={
            WHERE: str(channel.id),
            NEW_THREAD: "1" if new_thread else "",
            ROLES: " ".join(str(role.id) for role in getattr(message.author, "roles", ())),
        },
    )


async def has_role(inbound: Inbound, role: str) -> bool:
    """Whether the sender of ``inbound`` had the role ``role`` (an id) when they wrote it:
    in ``allowed_users``, a Discord role id stands for the people who have it."""
    return role in inbound.extra.get(ROLES, "").split()


def readable_text(message: discord.Message, bot_id: int) -> str:
    """The text without the bot's own mention, other people's mentions as ``@name``."""
    names = {user.id: user.display_name for user in message.mentions}

    def name(match: re.Match[str]) -> str:
        user_id = int(match.group(1))
        if user_id == bot_id:
            return ""
        return f"@{names.get(user_id, match.group(1))}"

    return _USER_MENTION.sub(name, message.content).strip()
