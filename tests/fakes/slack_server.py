"""A local stand-in for the Slack Web API, spoken to by the real slack_sdk clients.

Point a client at ``server.api_url`` (``SLACK_API_URL`` in ``server.env()``)::

    async with FakeSlackServer() as server:
        server.add_channel("C0GENERAL", "general")
        server.add_user("U0HUMAN001", "alice", "Alice Liddell")
        root = server.add_message("C0GENERAL", None, "hi", user="U0HUMAN001")
        client = AsyncWebClient(token=server.bot_token, base_url=server.api_url)
        await client.chat_postMessage(channel="C0GENERAL", thread_ts=root["ts"], text="hello")
        assert [m["text"] for m in server.thread("C0GENERAL", root["ts"])] == ["hi", "hello"]

For a test that drives a subprocess, run it on a thread of its own::

    with FakeSlackServer.in_thread() as server:
        subprocess.run([...], env={**os.environ, **server.env()})

Every call is recorded (``server.calls``, ``server.calls_to("chat.postMessage")``) with
the parameters parsed from the query string, a form or a JSON body, whichever the client
used. Slack's real limits are enforced (``msg_too_long``, ``invalid_blocks``,
``channel_not_found``, ``not_in_channel``, ``invalid_auth``, ``missing_scope``…), so a
test fails where production would. Failures are scriptable: ``server.rate_limit(method)``
answers HTTP 429 with ``Retry-After`` and ``server.fail(method, "error")`` ``ok: false``.

Besides the Web API, the server plays two more Slack endpoints: the upload URLs that
``files.getUploadURLExternal`` hands out (so ``files_upload_v2`` works end to end) and
``response_url`` hooks (``server.response_url()``), recorded as the pseudo-methods
``"upload_url"`` and ``"response_url"``.

It also plays Slack's Socket Mode server. ``apps.connections.open`` (with the app-level
token, :data:`APP_TOKEN`) hands out a single-use WebSocket URL on this server; a connection
is greeted with ``hello``, answers pings, and carries envelopes the test sends with
:meth:`FakeSlackServer.socket_send` (any builder of ``slack_events``: events, slash
commands, interactivity), whose acknowledgements are recorded (``server.socket_acks``).
Every upgrade attempt is recorded as the pseudo-method ``"socket_mode"``. Failures are
scriptable: ``socket_drop()`` (the link dies), ``socket_wedge()`` (the link stays open
but nothing, not even a pong, comes back), ``refuse_socket_mode(seconds)`` and
``socket_disconnect(reason)`` (Slack asking the app to reconnect)::

    async with FakeSlackServer() as server:
        handler = AsyncSocketModeHandler(app, server.app_token)  # app.client at api_url
        await handler.connect_async()
        envelope_id = await server.socket_send(slack_events.event_callback(event))
        ack = await server.wait_socket_ack(envelope_id)
"""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from corral.bot.slack.check import REQUIRED_SCOPES

from .local_server import LocalServer
from .slack_events import (
    APP_ID,
    BOT_ID,
    BOT_USER_ID,
    SIGNING_SECRET,
    TEAM_DOMAIN,
    TEAM_ID,
    SignedRequest,
)

T = TypeVar("T")

#: The bot token the server accepts by default. Any ``xoxb-`` token is accepted.
BOT_TOKEN = "xoxb-1111111111-2222222222222-fakecorraltoken0000"
#: The app-level token for Socket Mode. Any ``xapp-`` token is accepted.
APP_TOKEN = "xapp-1-A0CORRAL01-3333333333333-fakecorralapptoken00"

#: Web API methods that take the app-level token, not the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})

#: The bot scopes of ``deploy/slack/manifest.yaml`` (the ones Corral checks for): granted
#: unless a test removes some.
BOT_SCOPES = REQUIRED_SCOPES

#: Slack's limits, as its API enforces them.
MAX_TEXT = 40_000
MAX_MARKDOWN_TEXT = 12_000
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3_000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2_000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2_000
MAX_ID_LENGTH = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_ATTACHMENTS = 100

#: Parameters that carry JSON; a form sends them as strings, which are decoded.
_JSON_PARAMS = ("blocks", "attachments", "files", "metadata", "chunks")

#: A scripted or custom answer: the ``ok: true`` body, or raise :class:`SlackError`.
Handler = Callable[[dict[str, Any]], dict[str, Any]]


class SlackError(Exception):
    """Raised by a handler: the method answers ``{"ok": false, "error": error, **extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


@dataclass(frozen=True)
class SlackCall:
    """One request as the server received it, and what it answered."""

    #: The Web API method (``"chat.postMessage"``), or ``"upload_url"`` / ``"response_url"``.
    method: str
    #: Query string, form fields and JSON body merged; JSON-valued form fields decoded.
    params: dict[str, Any]
    #: Request headers, names lower-case (``authorization``, ``content-type``…).
    headers: dict[str, str]
    http_method: str
    #: ``time.monotonic()`` when the request arrived.
    at: float
    status: int
    #: The JSON body answered (the text for plain-text answers).
    response: dict[str, Any] | str = field(default_factory=dict)

    @property
    def token(self) -> str | None:
        """The token sent: from ``Authorization: Bearer …``, else a ``token`` parameter."""
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip()
        token = self.params.get("token")
        return str(token) if token is not None else None

    @property
    def ok(self) -> bool:
        """Whether the answer was a success."""
        return self.status == 200 and (
            not isinstance(self.response, dict) or bool(self.response.get("ok", True))
        )

    @property
    def error(self) -> str | None:
        """The ``error`` of an ``ok: false`` answer (``"ratelimited"`` for a 429)."""
        return self.response.get("error") if isinstance(self.response, dict) else None


@dataclass
class _Channel:
    id: str
    name: str | None
    is_im: bool = False
    is_mpim: bool = False
    is_private: bool = False
    is_member: bool = True
    is_archived: bool = False
    user: str | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    def info(self, team_id: str) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_archived": self.is_archived,
                "is_im": True,
                "is_org_shared": False,
                "context_team_id": team_id,
                "user": self.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        name = self.name or self.id.lower()
        return {
            "id": self.id,
            "name": name,
            "is_channel": not self.is_private and not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private or self.is_mpim,
            "created": self.created,
            "is_archived": self.is_archived,
            "is_general": name == "general",
            "unlinked": 0,
            "name_normalized": name,
            "is_shared": False,
            "is_org_shared": False,
            "is_ext_shared": False,
            "is_pending_ext_shared": False,
            "context_team_id": team_id,
            "creator": "U0HUMAN001",
            "is_member": self.is_member,
            "topic": {"value": "", "creator": "", "last_set": 0},
            "purpose": {"value": "", "creator": "", "last_set": 0},
            "num_members": 2,
        }

    @property
    def type(self) -> str:
        """The ``types`` value of ``conversations.list`` this channel is listed under."""
        if self.is_im:
            return "im"
        if self.is_mpim:
            return "mpim"
        return "private_channel" if self.is_private else "public_channel"

    @property
    def scope_prefix(self) -> str:
        return {"im": "im", "mpim": "mpim", "private_channel": "groups"}.get(self.type, "channels")


@dataclass
class _Stream:
    channel: str
    ts: str
    active: bool = True
    chunks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _File:
    id: str
    name: str
    length: int
    title: str | None = None
    content: bytes | None = None


@dataclass
class _Hook:
    kind: str
    channel: str | None
    message_ts: str | None
    user: str | None
    thread_ts: str | None


@dataclass(frozen=True)
class SocketAck:
    """What the app sent back over Socket Mode for one envelope."""

    envelope_id: str
    #: The acknowledgement's ``payload`` (a slash command's answer), else ``None``.
    payload: dict[str, Any] | None
    #: ``time.monotonic()`` when it arrived.
    at: float
    #: The connection that carried it: 1 for the first the server accepted, 2 next…
    connection: int


@dataclass
class _Socket:
    number: int
    ws: web.WebSocketResponse
    request: web.Request
    #: Plays a link that is open but dead: no pongs, no envelopes, acks lost.
    wedged: bool = False


@dataclass(frozen=True)
class UploadedFile:
    """A file uploaded through ``files.getUploadURLExternal`` and its upload URL."""

    id: str
    name: str
    title: str | None
    content: bytes | None
    #: Whether ``files.completeUploadExternal`` finished it.
    completed: bool
    channel: str | None
    thread_ts: str | None


def _copy(message: dict[str, Any]) -> dict[str, Any]:
    """A deep copy, so callers never hold the server's own dicts."""
    copied: dict[str, Any] = json.loads(json.dumps(message))
    return copied


def _ts_key(ts: str) -> Decimal:
    return Decimal(ts)


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: Any) -> int:
    if not cursor:
        return 0
    try:
        kind, _, value = base64.b64decode(str(cursor)).decode().partition(":")
        if kind != "offset":
            raise ValueError(cursor)
        return int(value)
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc


def _int_param(params: Mapping[str, Any], name: str, default: int, maximum: int) -> int:
    value = params.get(name)
    if value in (None, ""):
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise SlackError("invalid_arguments", detail=f"{name} must be a number") from exc
    return default if number <= 0 else min(number, maximum)


def _bool_param(params: Mapping[str, Any], name: str) -> bool:
    value = params.get(name)
    return value is True or str(value).lower() in ("1", "true")


def _text_of(obj: Any) -> str:
    return str(obj.get("text", "")) if isinstance(obj, dict) else ""


def block_problems(blocks: Any) -> list[str]:
    """What Slack would reject in ``blocks``, in its ``errors`` format (``[]`` when valid).

    Checks what Corral's messages can break: at most 50 blocks, section text of 3,000
    characters, ten section fields of 2,000, header text of 150, button text of 75 and
    value of 2,000, 25 elements in an actions block, 10 in a context block, unique
    ``block_id``s, and ``action_id``s unique within a block.
    """
    if not isinstance(blocks, list):
        return ["must be an array [json-pointer:/blocks]"]
    problems: list[str] = []
    if len(blocks) > MAX_BLOCKS:
        problems.append(f"no more than {MAX_BLOCKS} items allowed [json-pointer:/blocks]")
    block_ids: set[str] = set()

    def too_long(value: str, limit: int, pointer: str) -> None:
        if len(value) > limit:
            problems.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}]")

    for i, block in enumerate(blocks):
        at = f"/blocks/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            problems.append(f"missing required field: type [json-pointer:{at}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            too_long(str(block_id), MAX_ID_LENGTH, f"{at}/block_id")
            if block_id in block_ids:
                problems.append(f"duplicate block_id: {block_id} [json-pointer:{at}/block_id]")
            block_ids.add(str(block_id))
        kind = block["type"]
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                problems.append(f"must provide either text or fields [json-pointer:{at}]")
            if text is not None:
                if not _text_of(text):
                    problems.append(f"must be more than 0 characters [json-pointer:{at}/text/text]")
                too_long(_text_of(text), MAX_SECTION_TEXT, f"{at}/text/text")
            if fields:
                if len(fields) > MAX_SECTION_FIELDS:
                    limit = MAX_SECTION_FIELDS
                    problems.append(
                        f"no more than {limit} items allowed [json-pointer:{at}/fields]"
                    )
                for j, item in enumerate(fields):
                    too_long(_text_of(item), MAX_FIELD_TEXT, f"{at}/fields/{j}/text")
            accessory = block.get("accessory")
            if isinstance(accessory, dict):
                problems += _element_problems(accessory, f"{at}/accessory")
        elif kind == "header":
            text = block.get("text")
            if not isinstance(text, dict) or text.get("type") != "plain_text":
                problems.append(f"must be a plain_text text object [json-pointer:{at}/text]")
            too_long(_text_of(text), MAX_HEADER_TEXT, f"{at}/text/text")
        elif kind in ("actions", "context"):
            elements = block.get("elements")
            limit = MAX_ACTIONS_ELEMENTS if kind == "actions" else MAX_CONTEXT_ELEMENTS
            if not isinstance(elements, list) or not elements:
                problems.append(f"must provide at least one element [json-pointer:{at}/elements]")
                continue
            if len(elements) > limit:
                problems.append(f"no more than {limit} items allowed [json-pointer:{at}/elements]")
            action_ids: set[str] = set()
            for j, element in enumerate(elements):
                if not isinstance(element, dict):
                    problems.append(f"must be an object [json-pointer:{at}/elements/{j}]")
                    continue
                problems += _element_problems(element, f"{at}/elements/{j}")
                action_id = element.get("action_id")
                if action_id is not None:
                    if action_id in action_ids:
                        problems.append(
                            f"duplicate action_id: {action_id} "
                            f"[json-pointer:{at}/elements/{j}/action_id]"
                        )
                    action_ids.add(str(action_id))
    return problems


def _element_problems(element: dict[str, Any], at: str) -> list[str]:
    problems = []
    if element.get("type") == "button":
        text = element.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            problems.append(f"must be a plain_text text object [json-pointer:{at}/text]")
        if len(_text_of(text)) > MAX_BUTTON_TEXT:
            problems.append(
                f"must be less than {MAX_BUTTON_TEXT + 1} characters [json-pointer:{at}/text/text]"
            )
        if len(str(element.get("value", ""))) > MAX_BUTTON_VALUE:
            problems.append(
                f"must be less than {MAX_BUTTON_VALUE + 1} characters [json-pointer:{at}/value]"
            )
    if len(str(element.get("action_id", ""))) > MAX_ID_LENGTH:
        problems.append(
            f"must be less than {MAX_ID_LENGTH + 1} characters [json-pointer:{at}/action_id]"
        )
    return problems


def _chunks_text(chunks: Any) -> str:
    """The markdown text carried by streaming chunks; raises ``invalid_chunks``."""
    if chunks is None:
        return ""
    if not isinstance(chunks, list):
        raise SlackError("invalid_chunks")
    text = []
    for chunk in chunks:
        kind = chunk.get("type") if isinstance(chunk, dict) else None
        if kind not in ("markdown_text", "task_update", "plan_update", "blocks"):
            raise SlackError("invalid_chunks")
        if kind == "markdown_text":
            text.append(str(chunk.get("text", "")))
    return "".join(text)


class FakeSlackServer(LocalServer):
    """The Slack Web API on 127.0.0.1, on a free port, with a workspace tests seed.

    Use it as an async context manager in the test's event loop, or with
    :meth:`in_thread` from synchronous code. Seeding, scripting and inspection are
    thread-safe. The app's identity (``auth.test``) defaults to the constants of
    ``slack_events``, so events built there and this server agree.
    """

    # files_upload_v2 sends a whole file in one request body.
    client_max_size = 64 * 1024**2

    def __init__(
        self,
        *,
        team_id: str = TEAM_ID,
        team_name: str = "Corral Test",
        team_domain: str = TEAM_DOMAIN,
        bot_user_id: str = BOT_USER_ID,
        bot_id: str = BOT_ID,
        app_id: str = APP_ID,
        bot_name: str = "corral",
        bot_token: str = BOT_TOKEN,
        app_token: str = APP_TOKEN,
    ) -> None:
        super().__init__()
        self.team_id = team_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.app_id = app_id
        self.bot_name = bot_name
        #: The token ``env()`` hands out; the server accepts any ``xoxb-`` token.
        self.bot_token = bot_token
        #: The app-level token for Socket Mode; any ``xapp-`` token is accepted.
        self.app_token = app_token
        #: The bot scopes granted; remove some to test ``missing_scope`` handling.
        self.scopes: set[str] = set(BOT_SCOPES)
        #: Seconds every answer waits before it is sent, to play Slack's latency.
        self.latency = 0.0
        self._lock = threading.Lock()
        self._calls: list[SlackCall] = []
        self._rate_limits: dict[str, deque[int]] = defaultdict(deque)
        self._failures: dict[str, deque[tuple[str, dict[str, Any]]]] = defaultdict(deque)
        self._custom: dict[str, Handler] = {}
        self._hangs: dict[str, Callable[[dict[str, Any]], bool]] = {}
        self._hanging = 0
        self._channels: dict[str, _Channel] = {}
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._messages: defaultdict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._ephemerals: list[dict[str, Any]] = []
        self._files: dict[str, _File] = {}
        self._file_shares: dict[str, tuple[str | None, str | None]] = {}
        self._hooks: dict[str, _Hook] = {}
        self._clock = Decimal(0)
        self._ids = iter(range(1, 10_000_000))
        self._tickets: set[str] = set()
        self._sockets: dict[int, _Socket] = {}
        self._socket_count = 0
        self._socket_acks: list[SocketAck] = []
        self._refuse_socket_until = 0.0
        self._methods: dict[str, Handler] = {
            "api.test": lambda params: {"args": params},
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.startStream": self._chat_start_stream,
            "chat.appendStream": self._chat_append_stream,
            "chat.stopStream": self._chat_stop_stream,
            "conversations.replies": self._conversations_replies,
            "conversations.history": self._conversations_history,
            "conversations.info": self._conversations_info,
            "conversations.list": self._conversations_list,
            "conversations.open": self._conversations_open,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroups_users_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
        }
        self._users[bot_user_id] = self._user_object(
            bot_user_id, bot_name, bot_name.capitalize(), is_bot=True
        )

    # -----------------------------------------------------------------------------------
    # Addresses and lifecycle

    @property
    def api_url(self) -> str:
        """Base URL for slack_sdk's ``base_url`` (ends in ``/``; it appends the method)."""
        return f"{self.url}/api/"

    def env(self) -> dict[str, str]:
        """Environment variables that point Corral's Slack adapter at this server."""
        return {
            "SLACK_API_URL": self.api_url,
            "SLACK_BOT_TOKEN": self.bot_token,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        }

    def response_url(
        self,
        kind: str = "commands",
        *,
        channel: str | None = None,
        message_ts: str | None = None,
        user: str | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """A ``response_url`` on this server for a slash command or an interaction.

        What the app sends there is recorded as a ``"response_url"`` call and acts as in
        Slack: ``replace_original`` / ``delete_original`` change the message at
        ``channel`` / ``message_ts``, ``response_type: in_channel`` posts to ``channel``,
        anything else is an ephemeral message to ``user``.
        """
        key = secrets.token_urlsafe(12)
        with self._lock:
            self._hooks[key] = _Hook(kind, channel, message_ts, user, thread_ts)
        return f"{self.url}/hooks/{kind}/{self.team_id}/{key}"

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/v1/{file_id}", self._upload)
        app.router.add_post("/hooks/{kind}/{team}/{key}", self._hook)
        app.router.add_get("/link/", self._socket_link)

    async def _close_connections(self) -> None:
        """Close the open Socket Mode connections as "going away"."""
        with self._lock:
            sockets = list(self._sockets.values())
        for sock in sockets:
            with suppress(Exception):
                await sock.ws.close(code=1001)

    # -----------------------------------------------------------------------------------
    # Seeding the workspace

    def add_channel(
        self,
        id: str,
        name: str | None = None,
        *,
        is_im: bool = False,
        is_private: bool = False,
        is_mpim: bool = False,
        is_member: bool = True,
        user: str | None = None,
    ) -> None:
        """Create a conversation: a public channel, a private one (``is_private``), a DM
        with ``user`` (``is_im``, ids start with ``D``) or a group DM (``is_mpim``).

        ``is_member=False`` plays a channel the app was not invited to: posting there
        fails with ``not_in_channel``, as without ``chat:write.public``.
        """
        if not is_im and not name:
            raise ValueError("a channel needs a name (only DMs have none)")
        with self._lock:
            self._channels[id] = _Channel(
                id=id,
                name=None if is_im else name,
                is_im=is_im,
                is_mpim=is_mpim,
                is_private=is_private,
                is_member=is_member,
                user=user,
            )

    def add_user(
        self,
        id: str,
        name: str,
        real_name: str | None = None,
        *,
        display_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Berlin",
    ) -> None:
        """Create a user ``users.info`` answers for."""
        with self._lock:
            self._users[id] = self._user_object(
                id,
                name,
                real_name or name,
                display_name=display_name,
                is_bot=is_bot,
                deleted=deleted,
                tz=tz,
            )

    def add_usergroup(self, id: str, users: list[str]) -> None:
        """Create (or replace the members of) a user group ``usergroups.users.list``
        answers for."""
        with self._lock:
            self._usergroups[id] = list(users)

    def add_message(
        self,
        channel: str,
        ts: str | None,
        text: str,
        *,
        user: str | None = None,
        bot_id: str | None = None,
        username: str | None = None,
        thread_ts: str | None = None,
        subtype: str | None = None,
        blocks: list[dict[str, Any]] | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        """Put a message in ``channel`` (known through :meth:`add_channel`), as if someone
        had posted it: a person's (``user``) or a bot's (``bot_id``, optional ``username``).

        ``ts`` ``None`` takes the next ts; a given one moves the server's clock past it, so
        what the app posts later sorts after it. Returns the stored message.
        """
        if user is None and bot_id is None:
            raise ValueError("a message needs a user= or a bot_id=")
        with self._lock:
            if channel not in self._channels:
                raise KeyError(f"unknown channel {channel}: add_channel() it first")
            ts = ts or self._next_ts()
            self._clock = max(self._clock, _ts_key(ts))
            message: dict[str, Any] = {"type": "message", "text": text, "ts": ts}
            if user is not None:
                message["user"] = user
            if bot_id is not None:
                message["bot_id"] = bot_id
                if subtype is None and user is None:
                    subtype = "bot_message"
            if username is not None:
                message["username"] = username
            if subtype is not None:
                message["subtype"] = subtype
            if thread_ts is not None and thread_ts != ts:
                message["thread_ts"] = thread_ts
            if blocks is not None:
                message["blocks"] = blocks
            message["team"] = self.team_id
            message.update(extra)
            self._messages[channel][ts] = message
            return _copy(message)

    # -----------------------------------------------------------------------------------
    # Scripting

    def rate_limit(self, method: str, times: int = 1, retry_after: int = 1) -> None:
        """Answer the next ``times`` calls of ``method`` with HTTP 429, ``Retry-After``."""
        with self._lock:
            self._rate_limits[method].extend([retry_after] * times)

    def fail(
        self, method: str, error: str = "internal_error", times: int = 1, **extra: Any
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with ``{"ok": false, "error": error}``
        (plus ``extra`` fields), e.g. ``fail("chat.postMessage", "channel_not_found")``."""
        with self._lock:
            self._failures[method].extend([(error, extra)] * times)

    def hang(self, method: str, when: Callable[[dict[str, Any]], bool]) -> None:
        """Calls of ``method`` whose parameters satisfy ``when`` never get an answer and
        change nothing: each waits until its client goes away (a process killed mid-call).
        ``hang(method, lambda _: False)`` stops it. ``hanging`` counts those waiting."""
        with self._lock:
            self._hangs[method] = when

    @property
    def hanging(self) -> int:
        """How many calls wait on a :meth:`hang` now."""
        with self._lock:
            return self._hanging

    def handle(self, method: str, handler: Handler) -> None:
        """Serve ``method`` with ``handler(params) -> body`` (``ok: true`` is added; raise
        :class:`SlackError` for a failure). Replaces a built-in method of that name."""
        with self._lock:
            self._custom[method] = handler

    # -----------------------------------------------------------------------------------
    # Inspection

    @property
    def calls(self) -> list[SlackCall]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str) -> list[SlackCall]:
        """The requests to ``method`` (failed and rate-limited ones included)."""
        return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Every message in ``channel``, threads included, in ts order."""
        with self._lock:
            stored = sorted(self._messages[channel].values(), key=lambda m: _ts_key(m["ts"]))
            return [self._render(channel, m) for m in stored]

    def thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        """The thread of ``ts``: its parent, then its replies, in ts order."""
        with self._lock:
            return self._thread(channel, ts)

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """The message at ``ts`` in ``channel`` as it is now, or ``None`` once deleted."""
        with self._lock:
            stored = self._messages[channel].get(ts)
            return None if stored is None else self._render(channel, stored)

    def reactions(self, channel: str, ts: str) -> list[str]:
        """The reaction names on a message."""
        message = self.message(channel, ts) or {}
        return [r["name"] for r in message.get("reactions", [])]

    def is_streaming(self, channel: str, ts: str) -> bool:
        """Whether the message at ``ts`` is a stream that was started and not stopped."""
        with self._lock:
            stream = self._streams.get((channel, ts))
            return stream is not None and stream.active

    @property
    def ephemerals(self) -> list[dict[str, Any]]:
        """Ephemeral messages (``chat.postEphemeral`` and ephemeral ``response_url`` posts):
        dicts with ``channel``, ``user``, ``text``, ``blocks``, ``thread_ts``, ``ts``."""
        with self._lock:
            return [dict(e) for e in self._ephemerals]

    @property
    def files(self) -> dict[str, UploadedFile]:
        """Files uploaded through the upload URLs, by file id."""
        with self._lock:
            return {
                f.id: UploadedFile(
                    id=f.id,
                    name=f.name,
                    title=f.title,
                    content=f.content,
                    completed=f.id in self._file_shares,
                    channel=self._file_shares.get(f.id, (None, None))[0],
                    thread_ts=self._file_shares.get(f.id, (None, None))[1],
                )
                for f in self._files.values()
            }

    # -----------------------------------------------------------------------------------
    # Socket Mode (call these from the server's event loop, or any other: they hop over)

    def socket_mode_env(self) -> dict[str, str]:
        """``env()`` plus the app-level token, which makes Corral connect over Socket Mode."""
        return {**self.env(), "SLACK_APP_TOKEN": self.app_token}

    async def socket_send(
        self,
        request: SignedRequest | Mapping[str, Any],
        *,
        kind: str | None = None,
        accepts_response_payload: bool | None = None,
        retry_attempt: int = 0,
        retry_reason: str = "",
    ) -> str:
        """Deliver an envelope on the newest open connection, as Slack does; returns its
        ``envelope_id``.

        ``request`` is what a ``slack_events`` builder returns (its kind — ``events_api``,
        ``slash_commands`` or ``interactive`` — and payload are read from it), or a payload
        with an explicit ``kind``. On a wedged connection the envelope is lost.
        """
        kind, payload = _socket_payload(request, kind)
        if accepts_response_payload is None:
            # What Slack sets: slash commands and modal submissions may be answered in
            # the ack; events and button clicks may not.
            accepts_response_payload = kind == "slash_commands" or (
                kind == "interactive" and payload.get("type") == "view_submission"
            )
        envelope_id = secrets.token_hex(16)
        envelope = {
            "envelope_id": envelope_id,
            "payload": payload,
            "type": kind,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": retry_attempt,
            "retry_reason": retry_reason,
        }
        with self._lock:
            if not self._sockets:
                raise RuntimeError("no Socket Mode connection is open")
            sock = self._sockets[max(self._sockets)]
        if not sock.wedged:
            await self._on_server_loop(sock.ws.send_str(json.dumps(envelope)))
        return envelope_id

    @property
    def socket_acks(self) -> list[SocketAck]:
        """The acknowledgements received so far, oldest first."""
        with self._lock:
            return list(self._socket_acks)

    async def wait_socket_ack(self, envelope_id: str, within: float = 5.0) -> SocketAck:
        """The acknowledgement of ``envelope_id``, once it arrives (``TimeoutError`` after
        ``within`` seconds)."""
        async with asyncio.timeout(within):
            while True:
                for ack in self.socket_acks:
                    if ack.envelope_id == envelope_id:
                        return ack
                await asyncio.sleep(0.005)

    @property
    def socket_connections(self) -> int:
        """How many Socket Mode connections the server has accepted so far."""
        with self._lock:
            return self._socket_count

    @property
    def open_sockets(self) -> list[int]:
        """The numbers of the connections open now (see :attr:`SocketAck.connection`)."""
        with self._lock:
            return sorted(self._sockets)

    async def socket_drop(self, *, close_code: int | None = None) -> int:
        """End every open connection: without a word, as a lost link does (default), or
        with a WebSocket close frame carrying ``close_code``. Returns how many."""
        with self._lock:
            sockets = list(self._sockets.values())
        for sock in sockets:
            if close_code is None:
                transport = sock.request.transport
                if transport is not None:
                    transport.abort()
            else:
                await self._on_server_loop(sock.ws.close(code=close_code))
        return len(sockets)

    def socket_wedge(self) -> int:
        """Wedge every open connection: it stays open, but pings go unanswered, envelopes
        are not delivered and acks are lost. Connections made later work. Returns how
        many."""
        with self._lock:
            for sock in self._sockets.values():
                sock.wedged = True
            return len(self._sockets)

    def refuse_socket_mode(self, seconds: float) -> None:
        """For ``seconds`` from now, ``apps.connections.open`` fails (``internal_error``)
        and WebSocket upgrades are refused (HTTP 503), as during a Slack outage."""
        with self._lock:
            self._refuse_socket_until = time.monotonic() + seconds

    async def socket_disconnect(self, reason: str = "refresh_requested") -> int:
        """Send a ``disconnect`` message on every open connection, as Slack does before it
        recycles one (``warning``, ``refresh_requested``, ``link_disabled``). The link
        stays open; the app is expected to reconnect. Returns how many."""
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )
        with self._lock:
            sockets = [s for s in self._sockets.values() if not s.wedged]
        for sock in sockets:
            await self._on_server_loop(sock.ws.send_str(message))
        return len(sockets)

    async def _on_server_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's event loop (WebSockets belong to their loop)."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the fake Slack server is not running")
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def _socket_link(self, request: web.Request) -> web.StreamResponse:
        """The WebSocket URL ``apps.connections.open`` hands out."""
        ticket = request.query.get("ticket", "")
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            if time.monotonic() < self._refuse_socket_until:
                status, text = 503, "Service Unavailable"
            elif ticket not in self._tickets:
                status, text = 401, "invalid or used ticket"
            else:
                self._tickets.discard(ticket)
                self._socket_count += 1
                status, text = 101, f"connection {self._socket_count}"
            number = self._socket_count
            self._calls.append(
                SlackCall(
                    method="socket_mode",
                    params={"ticket": ticket, "app_id": request.query.get("app_id")},
                    headers=headers,
                    http_method=request.method,
                    at=time.monotonic(),
                    status=status,
                    response=text,
                )
            )
        if status != 101:
            return web.Response(status=status, text=text)
        # Pongs are sent by hand, so that a wedged connection can withhold them.
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        sock = _Socket(number, ws, request)
        with self._lock:
            self._sockets[number] = sock
            open_now = len(self._sockets)
        try:
            await ws.send_json(
                {
                    "type": "hello",
                    "num_connections": open_now,
                    "debug_info": {
                        "host": f"applink-fake-{number}",
                        "build_number": 1,
                        "approximate_connection_time": 18060,
                    },
                    "connection_info": {"app_id": self.app_id},
                }
            )
            async for message in ws:
                if sock.wedged:
                    continue
                if message.type == WSMsgType.PING:
                    await ws.pong(message.data)
                elif message.type == WSMsgType.TEXT:
                    self._socket_received(sock, message.data)
        finally:
            with self._lock:
                self._sockets.pop(number, None)
        return ws

    def _socket_received(self, sock: _Socket, data: str) -> None:
        with suppress(ValueError):
            message = json.loads(data)
            if isinstance(message, dict) and message.get("envelope_id"):
                payload = message.get("payload")
                with self._lock:
                    self._socket_acks.append(
                        SocketAck(
                            envelope_id=str(message["envelope_id"]),
                            payload=payload if isinstance(payload, dict) else None,
                            at=time.monotonic(),
                            connection=sock.number,
                        )
                    )

    # -----------------------------------------------------------------------------------
    # HTTP

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params, token_param = await _read_params(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        if self.latency:
            await asyncio.sleep(self.latency)
        with self._lock:
            hangs = self._hangs.get(method, lambda _: False)(params)
            if hangs:
                self._hanging += 1
        if hangs:
            try:
                while request.transport is not None and not request.transport.is_closing():
                    await asyncio.sleep(0.02)
            finally:
                with self._lock:
                    self._hanging -= 1
            return web.Response(status=499)
        with self._lock:
            status, body, extra_headers = self._answer(method, params, headers, token_param)
            self._calls.append(
                SlackCall(
                    method=method,
                    params=params,
                    headers=headers,
                    http_method=request.method,
                    at=time.monotonic(),
                    status=status,
                    response=body,
                )
            )
        return web.json_response(body, status=status, headers=extra_headers)

    def _answer(
        self,
        method: str,
        params: dict[str, Any],
        headers: dict[str, str],
        token_param: str | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """The status, body and headers of the answer; called with the lock held."""
        scope_headers = {"X-OAuth-Scopes": ",".join(sorted(self.scopes))}
        if self._rate_limits[method]:
            retry_after = self._rate_limits[method].popleft()
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(retry_after)}
        if self._failures[method]:
            error, extra = self._failures[method].popleft()
            return 200, {"ok": False, "error": error, **extra}, scope_headers
        handler = self._custom.get(method) or self._methods.get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method", "req_method": method}, {}
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else token_param
        if method != "api.test":
            if not token:
                return 200, {"ok": False, "error": "not_authed"}, {}
            if method in _APP_TOKEN_METHODS:
                if not token.startswith("xapp-"):
                    error = "not_allowed_token_type" if token.startswith("xox") else "invalid_auth"
                    return 200, {"ok": False, "error": error}, {}
            elif not token.startswith("xoxb-"):
                return 200, {"ok": False, "error": "invalid_auth"}, {}
        try:
            body = handler(params)
        except SlackError as exc:
            return 200, {"ok": False, "error": exc.error, **exc.extra}, scope_headers
        return 200, {"ok": True, **body}, scope_headers

    async def _upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        data = await request.read()
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            upload = self._files.get(file_id)
            if upload is None:
                status, text = 404, "Not Found"
            else:
                upload.content = data
                status, text = 200, f"OK - {len(data)}"
            self._calls.append(
                SlackCall(
                    method="upload_url",
                    params={"file_id": file_id, "length": len(data)},
                    headers=headers,
                    http_method=request.method,
                    at=time.monotonic(),
                    status=status,
                    response=text,
                )
            )
        return web.Response(text=text, status=status, content_type="text/plain")

    async def _hook(self, request: web.Request) -> web.Response:
        key = request.match_info["key"]
        params, _ = await _read_params(request)
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            hook = self._hooks.get(key)
            if hook is None:
                status, body = 404, {"ok": False, "error": "no_active_hooks"}
            else:
                try:
                    self._respond(hook, params)
                    status, body = 200, {"ok": True}
                except SlackError as exc:
                    status, body = 400, {"ok": False, "error": exc.error, **exc.extra}
            self._calls.append(
                SlackCall(
                    method="response_url",
                    params={**params, "hook": hook.kind if hook else None},
                    headers=headers,
                    http_method=request.method,
                    at=time.monotonic(),
                    status=status,
                    response=body,
                )
            )
        return web.json_response(body, status=status)

    def _respond(self, hook: _Hook, params: dict[str, Any]) -> None:
        if hook.channel and hook.message_ts and _bool_param(params, "delete_original"):
            if self._messages[hook.channel].pop(hook.message_ts, None) is None:
                raise SlackError("message_not_found")
            return
        self._check_content(params)
        if hook.channel and hook.message_ts and _bool_param(params, "replace_original"):
            stored = self._messages[hook.channel].get(hook.message_ts)
            if stored is None:
                raise SlackError("message_not_found")
            stored["text"] = params.get("text", "")
            if "blocks" in params:
                stored["blocks"] = params["blocks"]
            return
        thread_ts = params.get("thread_ts") or hook.thread_ts
        if params.get("response_type") == "in_channel" and hook.channel:
            self._store_bot_message(hook.channel, params, thread_ts)
        else:
            self._ephemerals.append(
                {
                    "channel": hook.channel,
                    "user": hook.user,
                    "text": params.get("text", ""),
                    "blocks": params.get("blocks"),
                    "thread_ts": thread_ts,
                    "ts": self._next_ts(),
                }
            )

    # -----------------------------------------------------------------------------------
    # Helpers (called with the lock held)

    def _next_ts(self) -> str:
        now = Decimal(f"{time.time():.6f}")
        self._clock = max(now, self._clock + Decimal("0.000001"))
        return f"{self._clock:.6f}"

    def _user_object(
        self,
        id: str,
        name: str,
        real_name: str,
        *,
        display_name: str | None = None,
        is_bot: bool = False,
        deleted: bool = False,
        tz: str = "Europe/Berlin",
    ) -> dict[str, Any]:
        image = f"https://avatars.slack-edge.com/fake/{id}_48.png"
        profile: dict[str, Any] = {
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name if display_name is not None else name,
            "display_name_normalized": display_name if display_name is not None else name,
            "first_name": real_name.split(" ")[0],
            "last_name": " ".join(real_name.split(" ")[1:]),
            "title": "",
            "status_text": "",
            "status_emoji": "",
            "image_48": image,
            "image_72": image.replace("_48", "_72"),
            "team": self.team_id,
        }
        user = {
            "id": id,
            "team_id": self.team_id,
            "name": name,
            "deleted": deleted,
            "color": "9f69e7",
            "real_name": real_name,
            "tz": tz,
            "tz_label": tz,
            "tz_offset": 0,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_bot": is_bot,
            "is_app_user": False,
            "updated": int(time.time()),
        }
        if is_bot and id == self.bot_user_id:
            profile["bot_id"] = self.bot_id
            profile["api_app_id"] = self.app_id
        return user

    def _require_scope(self, *scopes: str) -> None:
        """Raise ``missing_scope`` unless one of ``scopes`` is granted."""
        if not any(s in self.scopes for s in scopes):
            raise SlackError(
                "missing_scope", needed=",".join(scopes), provided=",".join(sorted(self.scopes))
            )

    def _channel(self, params: Mapping[str, Any], key: str = "channel") -> _Channel:
        """The conversation a parameter names: an id, or for posting also ``#name``."""
        value = str(params.get(key) or "")
        if value in self._channels:
            return self._channels[value]
        name = value.removeprefix("#")
        for channel in self._channels.values():
            if value.startswith("#") and channel.name == name:
                return channel
        raise SlackError("channel_not_found")

    def _postable(self, params: Mapping[str, Any]) -> _Channel:
        """The channel a message goes to, checked the way Slack checks it for a bot."""
        value = str(params.get("channel") or "")
        if value.startswith(("U", "W")) and value in self._users:
            # Posting to a user id posts to the DM with that user.
            for channel in self._channels.values():
                if channel.is_im and channel.user == value:
                    return channel
            self._require_scope("im:write")
            return self._open_im(value)
        channel = self._channel(params)
        if channel.is_archived:
            raise SlackError("is_archived")
        if not channel.is_member and not channel.is_im:
            raise SlackError("not_in_channel")
        return channel

    def _open_im(self, user: str) -> _Channel:
        channel = _Channel(id=f"D0{next(self._ids):08d}", name=None, is_im=True, user=user)
        self._channels[channel.id] = channel
        return channel

    def _check_content(self, params: Mapping[str, Any], *, require_text: bool = True) -> None:
        """Slack's checks of a message's text, markdown_text, blocks and attachments."""
        text = params.get("text")
        markdown_text = params.get("markdown_text")
        blocks = params.get("blocks")
        attachments = params.get("attachments")
        if require_text and not (text or markdown_text or blocks or attachments):
            raise SlackError("no_text")
        if text is not None and len(str(text)) > MAX_TEXT:
            raise SlackError("msg_too_long")
        if markdown_text is not None and len(str(markdown_text)) > MAX_MARKDOWN_TEXT:
            raise SlackError("msg_too_long")
        if blocks is not None:
            problems = block_problems(blocks)
            if problems:
                raise SlackError(
                    "invalid_blocks",
                    errors=problems,
                    response_metadata={"messages": [f"[ERROR] {p}" for p in problems]},
                )
        if isinstance(attachments, list) and len(attachments) > MAX_ATTACHMENTS:
            raise SlackError("too_many_attachments")

    def _store_bot_message(
        self, channel: str, params: Mapping[str, Any], thread_ts: str | None
    ) -> dict[str, Any]:
        """Store a message the app posts, as Slack echoes it; returns the stored dict."""
        ts = self._next_ts()
        message: dict[str, Any] = {
            "type": "message",
            "text": str(params.get("text") or params.get("markdown_text") or ""),
            "ts": ts,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
        }
        username = params.get("username")
        if username and "chat:write.customize" in self.scopes:
            message["subtype"] = "bot_message"
            message["username"] = username
            icons: dict[str, str] = {}
            if params.get("icon_emoji"):
                icons["emoji"] = str(params["icon_emoji"])
            elif params.get("icon_url"):
                icons["image_48"] = str(params["icon_url"])
            if icons:
                message["icons"] = icons
        else:
            message["user"] = self.bot_user_id
            message["bot_profile"] = {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": self.bot_name,
                "deleted": False,
                "team_id": self.team_id,
            }
        for key in ("blocks", "attachments", "metadata"):
            if params.get(key) is not None:
                message[key] = params[key]
        if thread_ts:
            message["thread_ts"] = str(thread_ts)
        self._messages[channel][ts] = message
        return message

    def _render(self, channel: str, stored: dict[str, Any]) -> dict[str, Any]:
        """A stored message as the API returns it, with thread and reaction fields."""
        message = _copy(stored)
        thread_ts = stored.get("thread_ts")
        if thread_ts is None or thread_ts == stored["ts"]:
            replies = [
                m for m in self._messages[channel].values() if m.get("thread_ts") == stored["ts"]
            ]
            if replies:
                users = list(dict.fromkeys(m.get("user") or m.get("bot_id") for m in replies))
                message.update(
                    thread_ts=stored["ts"],
                    reply_count=len(replies),
                    reply_users=users,
                    reply_users_count=len(users),
                    latest_reply=max((m["ts"] for m in replies), key=_ts_key),
                )
        else:
            parent = self._messages[channel].get(thread_ts)
            if parent is not None:
                message["parent_user_id"] = parent.get("user") or parent.get("bot_id")
        return message

    def _thread(self, channel: str, ts: str) -> list[dict[str, Any]]:
        stored = self._messages[channel].get(ts)
        if stored is None:
            raise SlackError("thread_not_found")
        root = stored.get("thread_ts") or ts
        members = [
            m
            for m in self._messages[channel].values()
            if m["ts"] == root or m.get("thread_ts") == root
        ]
        members.sort(key=lambda m: _ts_key(m["ts"]))
        return [self._render(channel, m) for m in members]

    def _own_message(self, channel: str, ts: str, error: str) -> dict[str, Any]:
        stored = self._messages[channel].get(ts)
        if stored is None:
            raise SlackError("message_not_found")
        if stored.get("bot_id") != self.bot_id and stored.get("user") != self.bot_user_id:
            raise SlackError(error)
        return stored

    # -----------------------------------------------------------------------------------
    # Methods (called with the lock held)

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        if time.monotonic() < self._refuse_socket_until:
            raise SlackError("internal_error")
        ticket = secrets.token_hex(16)
        self._tickets.add(ticket)
        return {"url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}&app_id={self.app_id}"}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("chat:write")
        channel = self._postable(params)
        self._check_content(params)
        stored = self._store_bot_message(channel.id, params, params.get("thread_ts"))
        return {
            "channel": channel.id,
            "ts": stored["ts"],
            "message": self._render(channel.id, stored),
        }

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("chat:write")
        channel = self._channel(params)
        stored = self._own_message(channel.id, str(params.get("ts")), "cant_update_message")
        self._check_content(params, require_text=False)
        for key in ("text", "blocks", "attachments", "metadata"):
            if key in params:
                stored[key] = params[key]
        if "markdown_text" in params:
            stored["text"] = params["markdown_text"]
        stored["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {
            "channel": channel.id,
            "ts": stored["ts"],
            "text": stored.get("text", ""),
            "message": self._render(channel.id, stored),
        }

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("chat:write")
        channel = self._postable(params)
        if not params.get("user"):
            raise SlackError("user_not_found")
        self._check_content(params)
        ts = self._next_ts()
        self._ephemerals.append(
            {
                "channel": channel.id,
                "user": params["user"],
                "text": params.get("text") or params.get("markdown_text") or "",
                "blocks": params.get("blocks"),
                "thread_ts": params.get("thread_ts"),
                "ts": ts,
            }
        )
        return {"message_ts": ts}

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("chat:write")
        channel = self._channel(params)
        ts = str(params.get("ts"))
        self._own_message(channel.id, ts, "cant_delete_message")
        del self._messages[channel.id][ts]
        self._streams.pop((channel.id, ts), None)
        return {"channel": channel.id, "ts": ts}

    def _chat_start_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("chat:write")
        channel = self._postable(params)
        if not params.get("thread_ts"):
            raise SlackError("invalid_arguments", detail="thread_ts is required")
        if not channel.is_im:
            if not params.get("recipient_user_id"):
                raise SlackError("missing_recipient_user_id")
            if not params.get("recipient_team_id"):
                raise SlackError("missing_recipient_team_id")
        self._check_content(params, require_text=False)
        text = str(params.get("markdown_text") or "") + _chunks_text(params.get("chunks"))
        stored = self._store_bot_message(
            channel.id, {**params, "text": text, "markdown_text": None}, params["thread_ts"]
        )
        stream = _Stream(channel.id, stored["ts"])
        stream.chunks.extend(params.get("chunks") or [])
        self._streams[(channel.id, stored["ts"])] = stream
        return {"channel": channel.id, "ts": stored["ts"]}

    def _streaming(self, params: dict[str, Any]) -> tuple[_Channel, _Stream, dict[str, Any]]:
        self._require_scope("chat:write")
        channel = self._channel(params)
        ts = str(params.get("ts"))
        stored = self._messages[channel.id].get(ts)
        if stored is None:
            raise SlackError("message_not_found")
        stream = self._streams.get((channel.id, ts))
        if stream is None or not stream.active:
            raise SlackError("message_not_in_streaming_state")
        self._check_content(params, require_text=False)
        text = str(params.get("markdown_text") or "") + _chunks_text(params.get("chunks"))
        stored["text"] = stored.get("text", "") + text
        stream.chunks.extend(params.get("chunks") or [])
        return channel, stream, stored

    def _chat_append_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, stream, _ = self._streaming(params)
        return {"channel": channel.id, "ts": stream.ts}

    def _chat_stop_stream(self, params: dict[str, Any]) -> dict[str, Any]:
        channel, stream, stored = self._streaming(params)
        for key in ("blocks", "metadata"):
            if params.get(key) is not None:
                stored[key] = params[key]
        stream.active = False
        return {"channel": channel.id, "ts": stream.ts, "message": self._render(channel.id, stored)}

    def _history_scope(self, channel: _Channel) -> None:
        self._require_scope(f"{channel.scope_prefix}:history")

    def _conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        self._history_scope(channel)
        messages = self._thread(channel.id, str(params.get("ts")))
        oldest, latest = params.get("oldest"), params.get("latest")
        inclusive = _bool_param(params, "inclusive")
        root = messages[0]
        if oldest:
            bound = _ts_key(str(oldest))
            messages = [root] + [
                m
                for m in messages[1:]
                if _ts_key(m["ts"]) > bound or (inclusive and _ts_key(m["ts"]) == bound)
            ]
        if latest:
            bound = _ts_key(str(latest))
            messages = [
                m
                for m in messages
                if _ts_key(m["ts"]) < bound or (inclusive and _ts_key(m["ts"]) == bound)
            ]
        return self._page(params, "messages", messages, default_limit=1000)

    def _conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(params)
        self._history_scope(channel)
        top = [
            self._render(channel.id, m)
            for m in self._messages[channel.id].values()
            if m.get("thread_ts") in (None, m["ts"])
        ]
        top.sort(key=lambda m: _ts_key(m["ts"]), reverse=True)
        return self._page(params, "messages", top, default_limit=100)

    def _page(
        self, params: dict[str, Any], key: str, items: list[dict[str, Any]], default_limit: int
    ) -> dict[str, Any]:
        offset = _decode_cursor(params.get("cursor"))
        limit = _int_param(params, "limit", default_limit, 1000)
        page = items[offset : offset + limit]
        more = offset + limit < len(items)
        body: dict[str, Any] = {key: page}
        if key == "messages":
            body["has_more"] = more
        body["response_metadata"] = {"next_cursor": _encode_cursor(offset + limit) if more else ""}
        return body

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel({"channel": str(params.get("channel") or "").removeprefix("#")})
        self._require_scope(f"{channel.scope_prefix}:read")
        return {"channel": channel.info(self.team_id)}

    def _conversations_list(self, params: dict[str, Any]) -> dict[str, Any]:
        types = [t.strip() for t in str(params.get("types") or "public_channel").split(",")]
        for kind in types:
            scope = {
                "public_channel": "channels:read",
                "private_channel": "groups:read",
                "im": "im:read",
                "mpim": "mpim:read",
            }.get(kind)
            if scope is None:
                raise SlackError("invalid_types")
            self._require_scope(scope)
        exclude_archived = _bool_param(params, "exclude_archived")
        channels = [
            c.info(self.team_id)
            for c in self._channels.values()
            if c.type in types and not (exclude_archived and c.is_archived)
        ]
        return self._page(params, "channels", channels, default_limit=100)

    def _conversations_open(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("im:write")
        users = [u for u in str(params.get("users") or "").split(",") if u]
        if params.get("channel"):
            return {"channel": {"id": self._channel(params).id}}
        if len(users) != 1:
            raise SlackError("users_list_not_supplied" if not users else "not_implemented")
        if users[0] not in self._users:
            raise SlackError("user_not_found")
        for channel in self._channels.values():
            if channel.is_im and channel.user == users[0]:
                return {"channel": {"id": channel.id}, "already_open": True}
        return {"channel": {"id": self._open_im(users[0]).id}}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("users:read")
        user = self._users.get(str(params.get("user")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": _copy(user)}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("usergroups:read")
        group = str(params.get("usergroup") or "")
        if not group:
            raise SlackError("invalid_arguments")
        users = self._usergroups.get(group)
        if users is None:
            raise SlackError("no_such_subteam")
        return {"users": list(users)}

    def _reaction_target(self, params: dict[str, Any], scope: str) -> tuple[dict[str, Any], str]:
        self._require_scope(scope)
        channel = self._channel(params)
        stored = self._messages[channel.id].get(str(params.get("timestamp")))
        if stored is None:
            raise SlackError("message_not_found")
        name = str(params.get("name") or "").strip(":")
        if not name:
            raise SlackError("invalid_name")
        return stored, name

    def _reactions_add(self, params: dict[str, Any]) -> dict[str, Any]:
        stored, name = self._reaction_target(params, "reactions:write")
        reactions = stored.setdefault("reactions", [])
        for reaction in reactions:
            if reaction["name"] == name:
                if self.bot_user_id in reaction["users"]:
                    raise SlackError("already_reacted")
                reaction["users"].append(self.bot_user_id)
                reaction["count"] += 1
                return {}
        reactions.append({"name": name, "users": [self.bot_user_id], "count": 1})
        return {}

    def _reactions_remove(self, params: dict[str, Any]) -> dict[str, Any]:
        stored, name = self._reaction_target(params, "reactions:write")
        for reaction in stored.get("reactions", []):
            if reaction["name"] == name and self.bot_user_id in reaction["users"]:
                reaction["users"].remove(self.bot_user_id)
                reaction["count"] -= 1
                if not reaction["count"]:
                    stored["reactions"].remove(reaction)
                if not stored["reactions"]:
                    del stored["reactions"]
                return {}
        raise SlackError("no_reaction")

    def _files_get_upload_url(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("files:write")
        if not params.get("filename"):
            raise SlackError("invalid_arguments", detail="filename is required")
        length = _int_param(params, "length", 0, 1 << 40)
        if length <= 0:
            raise SlackError("invalid_arguments", detail="length is required")
        file_id = f"F0{next(self._ids):08d}"
        self._files[file_id] = _File(file_id, str(params["filename"]), length)
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, params: dict[str, Any]) -> dict[str, Any]:
        self._require_scope("files:write")
        items = params.get("files")
        if not isinstance(items, list) or not items:
            raise SlackError("invalid_arguments", detail="files is required")
        channel_id = params.get("channel_id") or (str(params.get("channels") or "").split(",")[0])
        channel = self._postable({"channel": channel_id}) if channel_id else None
        thread_ts = params.get("thread_ts")
        shared = []
        for item in items:
            upload = self._files.get(str(item.get("id")))
            if upload is None or upload.content is None:
                raise SlackError("file_not_found")
            upload.title = item.get("title") or upload.name
            self._file_shares[upload.id] = (channel.id if channel else None, thread_ts)
            shared.append(
                {
                    "id": upload.id,
                    "created": int(time.time()),
                    "timestamp": int(time.time()),
                    "name": upload.name,
                    "title": upload.title,
                    "mimetype": "text/plain",
                    "filetype": "text",
                    "pretty_type": "Plain Text",
                    "user": self.bot_user_id,
                    "size": len(upload.content),
                    "mode": "hosted",
                    "is_external": False,
                    "is_public": bool(channel and not channel.is_private and not channel.is_im),
                    "url_private": f"https://files.slack.com/files-pri/{self.team_id}-{upload.id}/{upload.name}",
                    "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/{upload.id}/{upload.name}",
                }
            )
        if channel is not None:
            message = self._store_bot_message(
                channel.id, {"text": params.get("initial_comment") or ""}, thread_ts
            )
            message["files"] = shared
            message["upload"] = True
        return {"files": shared}


def _socket_payload(
    request: SignedRequest | Mapping[str, Any], kind: str | None
) -> tuple[str, dict[str, Any]]:
    """The envelope type and payload Slack sends over Socket Mode for what it would have
    POSTed over HTTP: the event callback's JSON, the slash command's fields, or the
    interactivity ``payload`` decoded."""
    if not isinstance(request, SignedRequest):
        if kind is None:
            raise ValueError("a bare payload needs kind= (events_api, slash_commands …)")
        return kind, dict(request)
    if request.headers.get("Content-Type", "").startswith("application/json"):
        return kind or "events_api", json.loads(request.body)
    fields = dict(parse_qsl(request.body.decode(), keep_blank_values=True))
    if "payload" in fields:
        return kind or "interactive", json.loads(fields["payload"])
    return kind or "slash_commands", fields


async def _read_params(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The parameters of a request, from its query string and its form or JSON body, and
    the ``token`` parameter where Slack accepts one (query or form, never JSON)."""
    params: dict[str, Any] = dict(request.query)
    token: str | None = params.get("token")
    if request.can_read_body:
        if request.content_type == "application/json":
            try:
                body = await request.json()
            except json.JSONDecodeError:
                body = None
            if isinstance(body, dict):
                params.update(body)
        elif request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    params[key] = {"filename": value.filename, "content": value.file.read()}
                elif isinstance(value, str):
                    params[key] = value
                else:
                    params[key] = bytes(value)
            if isinstance(form.get("token"), str):
                token = str(form["token"])
    for key in _JSON_PARAMS:
        raw = params.get(key)
        if isinstance(raw, str) and raw.lstrip().startswith(("[", "{")):
            with suppress(json.JSONDecodeError):
                params[key] = json.loads(raw)
    return params, token
