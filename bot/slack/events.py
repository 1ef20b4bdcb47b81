"""Slack events as platform-neutral messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from corral.bot.inbound import Inbound

PLATFORM = "slack"
#: What a Slack message timestamp (and so a thread id) looks like.
SLACK_TS = re.compile(r"\d+\.\d+")

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
    thread_ts = event.get("thread_ts") or ts
    if not (_text(user) and _text(channel) and _is_ts(ts) and _is_ts(thread_ts)):
        # Not a message Slack sends; an answer to a thread id that is no ts would go
        # to the top of the channel instead of the thread (SlackAdapter.post).
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
        thread=str(thread_ts),
        user=str(user),
        text=text.strip(),
        channel_name=channel_name,
        user_name=user_name,
        to_app=to_app,
    )


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


def _is_ts(value: object) -> bool:
    return isinstance(value, str) and SLACK_TS.fullmatch(value) is not None
