"""Requests exactly as Slack sends them to an app: signed Events API callbacks, slash
commands and interactivity payloads, for driving a slack-bolt app over HTTP.

Every builder returns a :class:`SignedRequest` — ``(body, headers)`` — signed with
``secret`` (default :data:`SIGNING_SECRET`) the way Slack signs (``v0`` HMAC-SHA256 over
``v0:<timestamp>:<body>``), so slack-bolt's request verification accepts it::

    event = slack_events.app_mention("beaver, the login page 500s", channel="C0GENERAL")
    request = slack_events.event_callback(event)
    response = await app.async_dispatch(request.bolt_request())  # in-process, or over HTTP:
    await http.post(f"{base}/slack/events", data=request.body, headers=request.headers)

The workspace defaults (:data:`TEAM_ID`, :data:`APP_ID`, :data:`BOT_USER_ID`,
:data:`BOT_ID`) are the identities the fake Web API server (``slack_server``) answers
``auth.test`` with, so bolt's self-event filter recognises the app's own messages.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import secrets
import threading
import time
import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NamedTuple
from urllib.parse import urlencode

if TYPE_CHECKING:
    from slack_bolt.request.async_request import AsyncBoltRequest
    from slack_bolt.request.request import BoltRequest

#: The workspace the app is installed in.
TEAM_ID = "T0CORRAL01"
TEAM_DOMAIN = "corral-test"
#: The Slack app.
APP_ID = "A0CORRAL01"
#: The app's bot user (what ``<@…>`` mentions of the app name) and its bot id.
BOT_USER_ID = "U0BOTCORRAL"
BOT_ID = "B0BOTCORRAL"
#: The signing secret the builders sign with by default.
SIGNING_SECRET = "fake-signing-secret-0123456789abcdef"
#: The legacy verification token Slack still puts in payloads (bolt ignores it).
VERIFICATION_TOKEN = "fake-verification-token"
#: A human to be the default sender.
USER_ID = "U0HUMAN001"
USER_NAME = "alice"

ChannelType = Literal["channel", "group", "im", "mpim"]

_SLACK_USER_AGENT = "Slackbot 1.0 (+https://api.slack.com/robots)"


class SignedRequest(NamedTuple):
    """A request body and the headers Slack sends with it (unpacks as ``body, headers``)."""

    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        """The body as text, which is what bolt's request classes take in HTTP mode."""
        return self.body.decode("utf-8")

    def bolt_request(self) -> AsyncBoltRequest:
        """An ``AsyncBoltRequest`` for ``AsyncApp.async_dispatch``."""
        from slack_bolt.request.async_request import AsyncBoltRequest

        return AsyncBoltRequest(body=self.text, headers=dict(self.headers))

    def sync_bolt_request(self) -> BoltRequest:
        """A ``BoltRequest`` for the synchronous ``App.dispatch``."""
        from slack_bolt.request.request import BoltRequest

        return BoltRequest(body=self.text, headers=dict(self.headers))

    def with_retry(self, num: int = 1, reason: str = "http_timeout") -> SignedRequest:
        """The same request as Slack redelivers it: same body, ``X-Slack-Retry-*`` headers."""
        return SignedRequest(self.body, {**self.headers, **retry_headers(num, reason)})

    def with_headers(self, **headers: str) -> SignedRequest:
        """The same request with some headers replaced (e.g. a forged signature)."""
        return SignedRequest(self.body, {**self.headers, **headers})


# ---------------------------------------------------------------------------------------
# Signing


def signature(body: bytes | str, secret: str, timestamp: int | str) -> str:
    """The ``X-Slack-Signature`` value for ``body`` sent at ``timestamp``."""
    raw = body.encode("utf-8") if isinstance(body, str) else body
    base = b"v0:" + str(timestamp).encode() + b":" + raw
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def sign(
    body: bytes | str,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    *,
    content_type: str = "application/json",
) -> dict[str, str]:
    """The headers of a request Slack sends with ``body``: timestamp, signature, type.

    ``timestamp`` defaults to now; pass one over 5 minutes old to play a replayed request.
    """
    ts = int(time.time()) if timestamp is None else int(timestamp)
    return {
        "Content-Type": content_type,
        "User-Agent": _SLACK_USER_AGENT,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature(body, secret, ts),
    }


def retry_headers(num: int = 1, reason: str = "http_timeout") -> dict[str, str]:
    """The headers Slack adds when it delivers an event again (``http_timeout``,
    ``http_error``, ``too_many_redirects``, ``unknown_error``)."""
    return {"X-Slack-Retry-Num": str(num), "X-Slack-Retry-Reason": reason}


def _json_request(
    payload: Mapping[str, Any], secret: str, timestamp: int | None, retry: int | None
) -> SignedRequest:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = sign(body, secret, timestamp, content_type="application/json")
    if retry:
        headers.update(retry_headers(retry))
    return SignedRequest(body, headers)


def _form_request(fields: Mapping[str, str], secret: str, timestamp: int | None) -> SignedRequest:
    body = urlencode(fields).encode()
    return SignedRequest(
        body, sign(body, secret, timestamp, content_type="application/x-www-form-urlencoded")
    )


# ---------------------------------------------------------------------------------------
# Identifiers

_ts_lock = threading.Lock()
_last_ts = Decimal(0)
_counter = itertools.count(1)


def new_ts() -> str:
    """A fresh message ts (``"1700000000.123456"``): now, and later than any before it."""
    global _last_ts
    with _ts_lock:
        now = Decimal(f"{time.time():.6f}")
        _last_ts = max(now, _last_ts + Decimal("0.000001"))
        return f"{_last_ts:.6f}"


def new_event_id() -> str:
    """A fresh Events API ``event_id`` (``Ev…``)."""
    return "Ev" + secrets.token_hex(5).upper()


def new_trigger_id() -> str:
    """A fresh ``trigger_id`` as interactive payloads and slash commands carry."""
    n = next(_counter)
    return f"{int(time.time())}{n:04d}.{secrets.randbelow(10**12)}.{secrets.token_hex(16)}"


def response_url_for(kind: Literal["commands", "actions"] = "commands") -> str:
    """A placeholder ``response_url`` in Slack's shape (nothing listens there); pass a fake
    server's ``server.response_url(...)`` instead to capture what the app sends."""
    return (
        f"https://hooks.slack.com/{kind}/{TEAM_ID}/{secrets.randbelow(10**13)}/"
        f"{secrets.token_urlsafe(18)}"
    )


def mention(user_id: str = BOT_USER_ID) -> str:
    """How message text carries a mention: ``<@U…>``."""
    return f"<@{user_id}>"


# ---------------------------------------------------------------------------------------
# Events API


def event_callback(
    event: Mapping[str, Any],
    *,
    event_id: str | None = None,
    team_id: str = TEAM_ID,
    api_app_id: str = APP_ID,
    authorizations: list[dict[str, Any]] | None = None,
    event_time: int | None = None,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    retry: int | None = None,
) -> SignedRequest:
    """An Events API ``event_callback`` envelope around ``event``, JSON, signed.

    ``authorizations`` defaults to the app's bot user in ``team_id``; ``retry=N`` adds the
    headers of Slack's N-th redelivery (pass the same ``event_id`` as the first delivery).
    """
    payload = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": api_app_id,
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or new_event_id(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": authorizations
        if authorizations is not None
        else [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-" + secrets.token_urlsafe(24),
    }
    return _json_request(payload, secret, timestamp, retry)


def url_verification(
    challenge: str | None = None, *, secret: str = SIGNING_SECRET, timestamp: int | None = None
) -> SignedRequest:
    """The challenge Slack sends when the Request URL is set; the app echoes ``challenge``."""
    payload = {
        "token": VERIFICATION_TOKEN,
        "challenge": challenge or secrets.token_urlsafe(32),
        "type": "url_verification",
    }
    return _json_request(payload, secret, timestamp, None)


_MENTION_OR_LINK = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>|<(https?://[^>|]+)(?:\|([^>]*))?>")


def rich_text_blocks(text: str) -> list[dict[str, Any]]:
    """The ``rich_text`` block Slack's clients attach to a typed message: user mentions,
    channel links, broadcasts and links as their own elements, the rest as text."""
    elements: list[dict[str, Any]] = []
    pos = 0
    for match in _MENTION_OR_LINK.finditer(text):
        if match.start() > pos:
            elements.append({"type": "text", "text": text[pos : match.start()]})
        sigil, target, url = match.group(1), match.group(2), match.group(4)
        if sigil == "@":
            elements.append({"type": "user", "user_id": target})
        elif sigil == "#":
            elements.append({"type": "channel", "channel_id": target})
        elif sigil == "!":
            elements.append({"type": "broadcast", "range": target.split("^")[0]})
        elif url:
            link: dict[str, Any] = {"type": "link", "url": url}
            if match.group(5):
                link["text"] = match.group(5)
            elements.append(link)
        pos = match.end()
    if pos < len(text):
        elements.append({"type": "text", "text": text[pos:]})
    return [
        {
            "type": "rich_text",
            "block_id": secrets.token_urlsafe(4)[:5],
            "elements": [{"type": "rich_text_section", "elements": elements}],
        }
    ]


def app_mention(
    text: str,
    *,
    channel: str,
    user: str = USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    team: str = TEAM_ID,
    bot_user_id: str = BOT_USER_ID,
) -> dict[str, Any]:
    """An ``app_mention`` event. Slack sends one only when the text mentions the app, so
    ``<@bot_user_id>`` is put in front of ``text`` when it is not already in it.

    Slack also delivers the same message as a ``message`` event (same channel and ts) when
    the app subscribes to ``message.*``; build that with :func:`message` and the same ts.
    """
    if mention(bot_user_id) not in text:
        text = f"{mention(bot_user_id)} {text}"
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "app_mention",
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": rich_text_blocks(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


def message(
    text: str,
    *,
    channel: str,
    user: str = USER_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    parent_user_id: str | None = None,
    channel_type: ChannelType = "channel",
    team: str = TEAM_ID,
) -> dict[str, Any]:
    """A ``message`` event as a person typed it, in a channel (``channel``), private channel
    (``group``), DM (``im``) or group DM (``mpim``); with ``thread_ts`` it is a reply."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "client_msg_id": str(uuid.uuid4()),
        "text": text,
        "user": user,
        "ts": ts,
        "blocks": rich_text_blocks(text),
        "team": team,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
        if parent_user_id is not None:
            event["parent_user_id"] = parent_user_id
    return event


def bot_message(
    text: str,
    *,
    channel: str,
    bot_id: str = BOT_ID,
    username: str | None = None,
    icon_emoji: str | None = None,
    user: str | None = None,
    app_id: str | None = APP_ID,
    ts: str | None = None,
    thread_ts: str | None = None,
    channel_type: ChannelType = "channel",
) -> dict[str, Any]:
    """A ``message`` event posted by a bot, as Slack echoes an app's own posts back:
    ``bot_id`` (the app's own by default), and with ``username`` (a persona posted with
    ``chat:write.customize``) the ``bot_message`` subtype. Pass another ``bot_id`` and
    ``app_id`` to play a different bot."""
    ts = ts or new_ts()
    event: dict[str, Any] = {
        "type": "message",
        "text": text,
        "ts": ts,
        "bot_id": bot_id,
        "channel": channel,
        "event_ts": ts,
        "channel_type": channel_type,
    }
    if username is not None:
        event["subtype"] = "bot_message"
        event["username"] = username
        if icon_emoji is not None:
            event["icons"] = {"emoji": icon_emoji}
    if user is not None:
        event["user"] = user
    if app_id is not None:
        event["app_id"] = app_id
    if thread_ts is not None:
        event["thread_ts"] = thread_ts
    return event


# ---------------------------------------------------------------------------------------
# Slash commands and interactivity


def slash_command(
    command: str,
    text: str = "",
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    channel_id: str,
    channel_name: str = "general",
    trigger_id: str | None = None,
    response_url: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
) -> SignedRequest:
    """A slash command invocation (``/corral status``), form-encoded, signed.

    ``channel_name`` is ``directmessage`` in a DM and ``privategroup`` in a private channel
    the command's user is in, as Slack sends it.
    """
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": team_domain,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command,
        "text": text,
        "api_app_id": api_app_id,
        "is_enterprise_install": "false",
        "response_url": response_url or response_url_for("commands"),
        "trigger_id": trigger_id or new_trigger_id(),
    }
    return _form_request(fields, secret, timestamp)


def block_actions(
    action_id: str,
    value: str | None = None,
    *,
    user_id: str = USER_ID,
    user_name: str = USER_NAME,
    channel: str,
    channel_name: str = "general",
    message_ts: str,
    thread_ts: str | None = None,
    message: Mapping[str, Any] | None = None,
    block_id: str = "corral_actions",
    button_text: str | None = None,
    response_url: str | None = None,
    trigger_id: str | None = None,
    team_id: str = TEAM_ID,
    team_domain: str = TEAM_DOMAIN,
    api_app_id: str = APP_ID,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
) -> SignedRequest:
    """A click on a button of a message, as Slack sends interactivity: form-encoded
    ``payload=<JSON>`` of type ``block_actions``, signed.

    ``message`` is the message that carries the button (as ``conversations.replies``
    returns it: pass what the fake server stored); by default a bot message with one
    actions block holding the button. ``thread_ts`` is that message's thread.
    """
    action_ts = new_ts()
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action_id,
        "block_id": block_id,
        "text": {"type": "plain_text", "text": button_text or action_id, "emoji": True},
        "action_ts": action_ts,
    }
    if value is not None:
        button["value"] = value
    if message is None:
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": api_app_id,
            "text": "This message has buttons",
            "ts": message_ts,
            "team": team_id,
            "blocks": [
                {
                    "type": "actions",
                    "block_id": block_id,
                    "elements": [{k: v for k, v in button.items() if k != "action_ts"}],
                }
            ],
            **({"thread_ts": thread_ts} if thread_ts else {}),
        }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message_ts,
        "channel_id": channel,
        "is_ephemeral": False,
    }
    if thread_ts is not None:
        container["thread_ts"] = thread_ts
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id},
        "api_app_id": api_app_id,
        "token": VERIFICATION_TOKEN,
        "container": container,
        "trigger_id": trigger_id or new_trigger_id(),
        "team": {"id": team_id, "domain": team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": dict(message),
        "state": {"values": {}},
        "response_url": response_url or response_url_for("actions"),
        "actions": [button],
    }
    return _form_request({"payload": json.dumps(payload, separators=(",", ":"))}, secret, timestamp)
