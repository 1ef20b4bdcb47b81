"""Slack events as platform-neutral messages."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.bot.inbound import Inbound

PLATFORM = "slack"

#: Message subtypes that are a person saying something; every other subtype (edits,
#: deletions, joins, bot messages ...) is not a message for the team.
PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share"})


def inbound_from_event(
    body: Mapping[str, Any],
    event: Mapping[str, Any],
    bot_user_id: str,
    *,
    channel_name: str = "",
    user_name: str = "",
) -> Inbound | None:
    """The message in an ``app_mention`` or ``message`` event; None when it is not a
    person's message (a bot's, an edit, a join ...)."""
    if event.get("bot_id") or event.get("subtype") not in PERSON_SUBTYPES:
        return None
    user = event.get("user")
    ts = event.get("ts")
    channel = event.get("channel")
    if not (user and ts and channel):
        return None
    text = str(event.get("text") or "")
    mention = f"<@{bot_user_id}>" if bot_user_id else ""
    to_app = (
        event.get("type") == "app_mention"
        or event.get("channel_type") == "im"
        or bool(mention and mention in text)
    )
    if mention:
        text = text.replace(mention, "")
    return Inbound(
        platform=PLATFORM,
        event_id=str(body.get("event_id") or f"{channel}-{ts}"),
        channel=str(channel),
        message_id=str(ts),
        thread=str(event.get("thread_ts") or ts),
        user=str(user),
        text=text.strip(),
        channel_name=channel_name,
        user_name=user_name,
        to_app=to_app,
    )
