"""A local stand-in for Discord (REST API and Gateway), spoken to by the real discord.py.

discord.py builds every REST and webhook URL from ``discord.http.Route.BASE`` and opens the
gateway at ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (a plain ``Client`` never
asks ``/gateway/bot``; only ``AutoShardedClient`` does). Point both here::

    async with FakeDiscordServer() as discord_fake:
        discord_fake.add_guild(GUILD, "corral")
        discord_fake.add_channel(GUILD, GENERAL, "general")
        discord_fake.add_user(ALICE, "alice", "Alice")
        with discord_fake.patch_discord():  # or monkeypatch Route.BASE / DEFAULT_GATEWAY
            client = discord.Client(intents=intents)
            await client.login(discord_fake.token)
            task = asyncio.create_task(client.connect())
            await client.wait_until_ready()
            await discord_fake.post_message(GENERAL, ALICE, "hello")  # -> on_message

The world (guilds, channels, threads, DMs, users, messages, webhooks) is seeded with the
``add_*`` methods; seed before the client connects, since GUILD_CREATE carries it to
discord.py's cache (or dispatch CHANNEL_CREATE / THREAD_CREATE yourself afterwards).

Every REST request is recorded (``calls``, ``calls_to("POST", "/channels/{id}/messages")``),
unknown routes included (404, Discord's error body). Discord's rules that matter to a chat
adapter are enforced: the bot token, the bot's permissions per guild and per channel
(``set_permissions``, ``deny``, ``deny_webhooks``), 2000-character content, empty messages,
webhook names, unknown emoji, one thread per message, one response per interaction.
Failures are scriptable: ``rate_limit(method, pattern)`` answers 429 exactly as Discord
does (so discord.py's own limiter retries) and ``fail(...)`` any error.

Like Discord, the gateway echoes what the bot itself posts (MESSAGE_CREATE for its messages,
its webhooks' messages and its non-ephemeral interaction responses), filters events by the
intents of the IDENTIFY and blanks message content without the MESSAGE_CONTENT intent.
Sessions are resumable: ``disconnect()`` drops the sockets, discord.py RESUMEs, and the
events dispatched meanwhile are replayed.
"""

from __future__ import annotations

import asyncio
import copy
import json
import math
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import unquote

from aiohttp import WSMsgType, web

from .local_server import LocalServer

T = TypeVar("T")

#: Discord's epoch (2015-01-01) in milliseconds, the base of every snowflake.
DISCORD_EPOCH = 1_420_070_400_000

#: The bot's identity by default. Modern applications share their id with their bot user.
BOT_USER_ID = "1100000000000000001"
APPLICATION_ID = BOT_USER_ID
OWNER_USER_ID = "1100000000000000002"
#: Shaped like a real token (base64 of the bot id, a timestamp, an HMAC) but never valid.
BOT_TOKEN = "MTEwMDAwMDAwMDAwMDAwMDAwMQ.GfAkEd.fake-corral-discord-token-000000000000"

#: Permission bits (https://discord.com/developers/docs/topics/permissions).
PERMISSIONS: dict[str, int] = {
    "CREATE_INSTANT_INVITE": 1 << 0,
    "KICK_MEMBERS": 1 << 1,
    "ADMINISTRATOR": 1 << 3,
    "MANAGE_CHANNELS": 1 << 4,
    "ADD_REACTIONS": 1 << 6,
    "VIEW_CHANNEL": 1 << 10,
    "SEND_MESSAGES": 1 << 11,
    "MANAGE_MESSAGES": 1 << 13,
    "EMBED_LINKS": 1 << 14,
    "ATTACH_FILES": 1 << 15,
    "READ_MESSAGE_HISTORY": 1 << 16,
    "MENTION_EVERYONE": 1 << 17,
    "USE_EXTERNAL_EMOJIS": 1 << 18,
    "MANAGE_WEBHOOKS": 1 << 29,
    "USE_APPLICATION_COMMANDS": 1 << 31,
    "MANAGE_THREADS": 1 << 34,
    "CREATE_PUBLIC_THREADS": 1 << 35,
    "CREATE_PRIVATE_THREADS": 1 << 36,
    "SEND_MESSAGES_IN_THREADS": 1 << 38,
}
_P = PERMISSIONS

#: What a Corral bot is granted in a guild unless a test says otherwise.
BOT_PERMISSIONS = (
    _P["VIEW_CHANNEL"]
    | _P["SEND_MESSAGES"]
    | _P["SEND_MESSAGES_IN_THREADS"]
    | _P["CREATE_PUBLIC_THREADS"]
    | _P["READ_MESSAGE_HISTORY"]
    | _P["ADD_REACTIONS"]
    | _P["EMBED_LINKS"]
    | _P["ATTACH_FILES"]
    | _P["MANAGE_WEBHOOKS"]
    | _P["USE_APPLICATION_COMMANDS"]
)
#: What @everyone may do. Nothing, so that the bot's permissions are exactly its role's
#: (``set_permissions``) on both sides: the REST checks and discord.py's permissions_for.
EVERYONE_PERMISSIONS = 0
#: What a human member has, as interactions report it (``member.permissions``).
MEMBER_PERMISSIONS = (
    _P["VIEW_CHANNEL"]
    | _P["SEND_MESSAGES"]
    | _P["SEND_MESSAGES_IN_THREADS"]
    | _P["CREATE_PUBLIC_THREADS"]
    | _P["READ_MESSAGE_HISTORY"]
    | _P["ADD_REACTIONS"]
    | _P["EMBED_LINKS"]
    | _P["ATTACH_FILES"]
    | _P["USE_APPLICATION_COMMANDS"]
)

#: Application flags: the privileged intents the application was approved for.
GATEWAY_PRESENCE = 1 << 12
GATEWAY_PRESENCE_LIMITED = 1 << 13
GATEWAY_GUILD_MEMBERS = 1 << 14
GATEWAY_GUILD_MEMBERS_LIMITED = 1 << 15
GATEWAY_MESSAGE_CONTENT = 1 << 18
GATEWAY_MESSAGE_CONTENT_LIMITED = 1 << 19
APPLICATION_COMMAND_BADGE = 1 << 23

#: Gateway intents.
INTENTS: dict[str, int] = {
    "GUILDS": 1 << 0,
    "GUILD_MEMBERS": 1 << 1,
    "GUILD_PRESENCES": 1 << 8,
    "GUILD_MESSAGES": 1 << 9,
    "GUILD_MESSAGE_REACTIONS": 1 << 10,
    "GUILD_MESSAGE_TYPING": 1 << 11,
    "DIRECT_MESSAGES": 1 << 12,
    "DIRECT_MESSAGE_REACTIONS": 1 << 13,
    "DIRECT_MESSAGE_TYPING": 1 << 14,
    "MESSAGE_CONTENT": 1 << 15,
}
#: Privileged intents and the application flags that allow each.
_PRIVILEGED = {
    INTENTS["GUILD_MEMBERS"]: GATEWAY_GUILD_MEMBERS | GATEWAY_GUILD_MEMBERS_LIMITED,
    INTENTS["GUILD_PRESENCES"]: GATEWAY_PRESENCE | GATEWAY_PRESENCE_LIMITED,
    INTENTS["MESSAGE_CONTENT"]: GATEWAY_MESSAGE_CONTENT | GATEWAY_MESSAGE_CONTENT_LIMITED,
}

#: Message flags.
EPHEMERAL = 1 << 6
LOADING = 1 << 7

#: Channel types.
GUILD_TEXT = 0
DM = 1
GUILD_CATEGORY = 4
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12
_THREAD_TYPES = (10, PUBLIC_THREAD, PRIVATE_THREAD)

#: Interaction callback types.
PONG = 1
CHANNEL_MESSAGE_WITH_SOURCE = 4
DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE = 5
DEFERRED_UPDATE_MESSAGE = 6
UPDATE_MESSAGE = 7

MAX_CONTENT = 2000
MAX_EMBEDS = 10
MAX_WEBHOOK_NAME = 80

#: Close codes after which Discord will not let the session be resumed.
_FATAL_CLOSE_CODES = frozenset({1000, 1001, 4004, 4007, 4009, 4010, 4011, 4012, 4013, 4014})

#: Events and the intent each needs; those absent need none.
_GUILD_INTENT_EVENTS = {
    "MESSAGE_CREATE": ("GUILD_MESSAGES", "DIRECT_MESSAGES"),
    "MESSAGE_UPDATE": ("GUILD_MESSAGES", "DIRECT_MESSAGES"),
    "MESSAGE_DELETE": ("GUILD_MESSAGES", "DIRECT_MESSAGES"),
    "MESSAGE_REACTION_ADD": ("GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"),
    "MESSAGE_REACTION_REMOVE": ("GUILD_MESSAGE_REACTIONS", "DIRECT_MESSAGE_REACTIONS"),
    "TYPING_START": ("GUILD_MESSAGE_TYPING", "DIRECT_MESSAGE_TYPING"),
}
_GUILDS_INTENT_EVENTS = frozenset(
    {
        "GUILD_CREATE",
        "GUILD_UPDATE",
        "GUILD_DELETE",
        "CHANNEL_CREATE",
        "CHANNEL_UPDATE",
        "CHANNEL_DELETE",
        "THREAD_CREATE",
        "THREAD_UPDATE",
        "THREAD_DELETE",
        "THREAD_LIST_SYNC",
        "THREAD_MEMBER_UPDATE",
    }
)

_MENTION = re.compile(r"<@!?(\d+)>")
_CUSTOM_EMOJI = re.compile(r"^a?:?[\w~]{2,32}:\d{15,25}$")


class DiscordError(Exception):
    """An error answer: ``status`` with Discord's body ``{"message", "code"[, "errors"]}``."""

    def __init__(
        self, status: int, code: int, message: str, errors: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def body(self) -> dict[str, Any]:
        """The JSON body Discord answers with."""
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return body


def _invalid_form(field_name: str, code: str, message: str) -> DiscordError:
    """Discord's 50035 "Invalid Form Body" for one field."""
    return DiscordError(
        400,
        50035,
        "Invalid Form Body",
        {field_name: {"_errors": [{"code": code, "message": message}]}},
    )


def _missing_permissions() -> DiscordError:
    return DiscordError(403, 50013, "Missing Permissions")


def _missing_access() -> DiscordError:
    return DiscordError(403, 50001, "Missing Access")


@dataclass(frozen=True)
class UploadedFile:
    """A file sent in a multipart request (``files[n]``)."""

    filename: str
    content: bytes
    content_type: str | None = None


@dataclass(frozen=True)
class Call:
    """One REST request as the server received it, and what it answered."""

    method: str
    #: The path below ``/api/v10`` as sent (``/channels/123/messages``), percent-decoded.
    path: str
    #: The route template it matched (``/channels/{channel_id}/messages``), None if unknown.
    route: str | None
    query: dict[str, str]
    #: The JSON body, or the ``payload_json`` part of a multipart body; None without one.
    json: Any
    status: int
    #: Request headers, names lower-case.
    headers: dict[str, str] = field(default_factory=dict)
    files: tuple[UploadedFile, ...] = ()
    #: The JSON answered (None for 204).
    response: Any = None
    #: ``time.monotonic()`` when it arrived.
    at: float = 0.0

    @property
    def body(self) -> Any:
        """Alias of :attr:`json`."""
        return self.json


@dataclass(frozen=True)
class WebhookExecution:
    """A message sent through an incoming webhook (not an interaction follow-up)."""

    webhook_id: str
    channel_id: str
    thread_id: str | None
    username: str | None
    avatar_url: str | None
    content: str | None
    components: list[dict[str, Any]] | None
    embeds: list[dict[str, Any]] | None
    files: tuple[UploadedFile, ...]
    payload: dict[str, Any]
    #: The message stored (``?wait=true`` answers it).
    message: dict[str, Any]


@dataclass(frozen=True)
class InteractionResponse:
    """An interaction callback: its ``type`` (4 message, 5 defer, 6 deferred update, 7
    update, 9 modal…) and ``data`` as sent."""

    interaction_id: str
    token: str
    type: int
    data: dict[str, Any] | None
    files: tuple[UploadedFile, ...]
    #: The message it created or updated, if any.
    message: dict[str, Any] | None

    @property
    def flags(self) -> int:
        """The message flags sent (64 for ephemeral)."""
        return int((self.data or {}).get("flags") or 0)

    @property
    def ephemeral(self) -> bool:
        """Whether the response message is ephemeral."""
        return bool(self.flags & EPHEMERAL)


@dataclass(frozen=True)
class Followup:
    """A follow-up message sent with an interaction's token."""

    interaction_id: str
    token: str
    payload: dict[str, Any]
    files: tuple[UploadedFile, ...]
    message: dict[str, Any]

    @property
    def ephemeral(self) -> bool:
        """Whether the message is ephemeral (after a defer, the defer decided)."""
        return bool(int(self.message.get("flags") or 0) & EPHEMERAL)


@dataclass
class _Guild:
    id: str
    name: str
    permissions: int
    owner_id: str
    bot_role_id: str
    joined_at: str
    #: Roles added by a test (id → name), and who has them (user id → role ids).
    roles: dict[str, str] = field(default_factory=dict)
    member_roles: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Interaction:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    message_id: str | None
    responded: bool = False
    original_message_id: str | None = None


@dataclass
class _Scripted:
    times: int
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass
class _Session:
    id: str
    intents: int
    shard: list[int] | None
    seq: int = 0
    resumable: bool = True
    conn: _Conn | None = None
    buffer: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=1000))


@dataclass
class _Conn:
    number: int
    ws: web.WebSocketResponse
    query: dict[str, str]
    session: _Session | None = None
    closed_by_server: bool = False


@dataclass
class _Request:
    match: dict[str, str]
    query: dict[str, str]
    json: Any
    files: tuple[UploadedFile, ...]


Handler = Callable[[_Request], tuple[int, Any]]


def _compile(pattern: str) -> re.Pattern[str]:
    """A pattern for a path: ``{anything}`` is one segment, ``*`` anything at all."""
    parts = re.split(r"(\{[^}]*\}|\*)", pattern)
    regex = "".join(
        "[^/]+" if part.startswith("{") else ".*" if part == "*" else re.escape(part)
        for part in parts
    )
    return re.compile(regex)


def _id(value: int | str) -> str:
    return str(value)


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="microseconds")


def snowflake_time(snowflake: str | int) -> datetime:
    """When a snowflake was made."""
    ms = (int(snowflake) >> 22) + DISCORD_EPOCH
    return datetime.fromtimestamp(ms / 1000, UTC)


class FakeDiscordServer(LocalServer):
    """Discord's REST API (``/api/v10``) and Gateway (``/gateway``) on 127.0.0.1.

    Use it as an async context manager in the test's event loop, or with :meth:`in_thread`
    from synchronous code. Seeding and inspection are thread-safe.
    """

    # Attachments arrive whole in one multipart request body.
    client_max_size = 64 * 1024**2

    def __init__(
        self,
        *,
        token: str = BOT_TOKEN,
        bot_user_id: int | str = BOT_USER_ID,
        bot_username: str = "corral",
        application_id: int | str = APPLICATION_ID,
        application_name: str = "Corral",
        application_flags: int = GATEWAY_MESSAGE_CONTENT | APPLICATION_COMMAND_BADGE,
        heartbeat_interval: int = 45_000,
    ) -> None:
        super().__init__()
        #: The bot token accepted; any other ``Authorization: Bot …`` gets 401.
        self.token = token
        self.application_id = _id(application_id)
        self.application_name = application_name
        #: Application flags; remove GATEWAY_MESSAGE_CONTENT to make the intent disallowed.
        self.application_flags = application_flags
        #: HELLO's heartbeat interval in milliseconds.
        self.heartbeat_interval = heartbeat_interval
        self._lock = threading.RLock()
        self._last_snowflake = 0
        self._users: dict[str, dict[str, Any]] = {}
        self._guilds: dict[str, _Guild] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._denied: defaultdict[str, int] = defaultdict(int)
        self._messages: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
        self._message_index: dict[str, dict[str, Any]] = {}
        self._ephemeral: dict[str, dict[str, Any]] = {}
        self._files: dict[str, list[UploadedFile]] = {}
        self._attachments: dict[str, UploadedFile] = {}
        self._attachment_meta: dict[str, dict[str, Any]] = {}
        self._reactions: defaultdict[str, list[str]] = defaultdict(list)
        self._webhooks: dict[str, dict[str, Any]] = {}
        self._interactions: dict[str, _Interaction] = {}
        self._commands: dict[str | None, list[dict[str, Any]]] = {}
        self._calls: list[Call] = []
        self._scripted: list[tuple[str, re.Pattern[str], _Scripted]] = []
        self._pending_events: list[tuple[str, dict[str, Any]]] = []
        self._webhook_executions: list[WebhookExecution] = []
        self._sent_messages: list[dict[str, Any]] = []
        self._interaction_responses: list[InteractionResponse] = []
        self._followups: list[Followup] = []
        self._typing: list[str] = []
        self._identifies: list[dict[str, Any]] = []
        self._resumes: list[dict[str, Any]] = []
        self._sessions: dict[str, _Session] = {}
        self._conns: dict[int, _Conn] = {}
        self._conn_count = 0
        self.bot_user: dict[str, Any] = self.add_user(bot_user_id, bot_username, bot=True)
        self.owner_user: dict[str, Any] = self.add_user(OWNER_USER_ID, "owner", "Owner")
        self._routes: list[tuple[str, str, re.Pattern[str], Handler, bool]] = []
        for method, template, handler, auth in (
            ("GET", "/users/@me", self._get_me, True),
            ("GET", "/users/@me/guilds", self._get_my_guilds, True),
            ("POST", "/users/@me/channels", self._create_dm, True),
            ("GET", "/users/{user_id}", self._get_user, True),
            ("GET", "/oauth2/applications/@me", self._get_application, True),
            ("GET", "/applications/@me", self._get_application, True),
            ("GET", "/gateway", self._get_gateway, False),
            ("GET", "/gateway/bot", self._get_gateway_bot, True),
            ("GET", "/guilds/{guild_id}", self._get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self._get_guild_channels, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self._get_member, True),
            ("GET", "/channels/{channel_id}", self._get_channel, True),
            ("GET", "/channels/{channel_id}/messages", self._get_messages, True),
            ("POST", "/channels/{channel_id}/messages", self._post_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self._get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self._edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self._delete_message, True),
            (
                "PUT",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._add_reaction,
                True,
            ),
            (
                "DELETE",
                "/channels/{channel_id}/messages/{message_id}/reactions/{emoji}/@me",
                self._remove_reaction,
                True,
            ),
            (
                "POST",
                "/channels/{channel_id}/messages/{message_id}/threads",
                self._thread_from_message,
                True,
            ),
            ("POST", "/channels/{channel_id}/threads", self._thread_without_message, True),
            ("POST", "/channels/{channel_id}/typing", self._trigger_typing, True),
            ("GET", "/channels/{channel_id}/webhooks", self._get_webhooks, True),
            ("POST", "/channels/{channel_id}/webhooks", self._create_webhook, True),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self._execute_webhook, False),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._get_webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._edit_webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self._delete_webhook_message,
                False,
            ),
            (
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self._interaction_callback,
                False,
            ),
            ("GET", "/applications/{application_id}/commands", self._get_commands, True),
            ("PUT", "/applications/{application_id}/commands", self._put_commands, True),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._get_commands,
                True,
            ),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self._put_commands,
                True,
            ),
        ):
            regex = re.compile(re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))
            self._routes.append((method, template, regex, handler, auth))

    # -----------------------------------------------------------------------------------
    # Addresses and lifecycle

    @property
    def api_url(self) -> str:
        """The value for ``discord.http.Route.BASE``."""
        return f"{self.url}/api/v10"

    @property
    def gateway_url(self) -> str:
        """The gateway, for ``DiscordWebSocket.DEFAULT_GATEWAY`` (and in ``/gateway/bot``)."""
        return f"ws://127.0.0.1:{self._port}/gateway"

    @property
    def bot_user_id(self) -> str:
        """The bot user's id."""
        return str(self.bot_user["id"])

    @contextmanager
    def patch_discord(self) -> Iterator[None]:
        """Point discord.py's ``Route.BASE`` and default gateway here while the block runs."""
        import yarl
        from discord.gateway import DiscordWebSocket
        from discord.http import Route

        base, gateway = Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY
        Route.BASE = self.api_url
        DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(self.gateway_url)
        try:
            yield
        finally:
            Route.BASE, DiscordWebSocket.DEFAULT_GATEWAY = base, gateway

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{attachment_id}/{filename}", self._attachment)
        app.router.add_route("*", "/api/v10{tail:.*}", self._api)

    async def _close_connections(self) -> None:
        """Close the gateway sockets as "going away"."""
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            conn.closed_by_server = True
            with suppress(Exception):
                await conn.ws.close(code=1001)

    # -----------------------------------------------------------------------------------
    # Seeding the world

    def add_user(
        self,
        user_id: int | str,
        username: str,
        global_name: str | None = None,
        *,
        bot: bool = False,
    ) -> dict[str, Any]:
        """Add (or replace) a user; returns its user object."""
        user: dict[str, Any] = {
            "id": _id(user_id),
            "username": username,
            "global_name": global_name,
            "discriminator": "0",
            "avatar": None,
            "avatar_decoration_data": None,
            "banner": None,
            "accent_color": None,
            "public_flags": 0,
            "flags": 0,
            "primary_guild": None,
            "collectibles": None,
        }
        if bot:
            user["bot"] = True
            user["global_name"] = None
        with self._lock:
            self._users[user["id"]] = user
        return copy.deepcopy(user)

    def add_guild(
        self,
        guild_id: int | str,
        name: str,
        *,
        permissions: int = BOT_PERMISSIONS,
        owner_id: int | str = OWNER_USER_ID,
    ) -> dict[str, Any]:
        """Add a guild the bot is a member of, with ``permissions`` for the bot's role."""
        guild = _Guild(
            id=_id(guild_id),
            name=name,
            permissions=permissions,
            owner_id=_id(owner_id),
            bot_role_id=self._next_id(),
            joined_at=_iso(datetime.now(UTC)),
        )
        with self._lock:
            self._guilds[guild.id] = guild
            return self._partial_guild(guild)

    def add_role(
        self, guild_id: int | str, role_id: int | str, name: str, members: Iterable[int | str]
    ) -> None:
        """Add a role to a guild, given to ``members`` (user ids)."""
        with self._lock:
            guild = self._guilds[_id(guild_id)]
            guild.roles[_id(role_id)] = name
            for member in members:
                guild.member_roles.setdefault(_id(member), []).append(_id(role_id))

    def set_permissions(self, guild_id: int | str, permissions: int) -> None:
        """Set the bot's permissions in a guild (its managed role's)."""
        with self._lock:
            self._guilds[_id(guild_id)].permissions = permissions

    def add_channel(
        self,
        guild_id: int | str,
        channel_id: int | str,
        name: str,
        *,
        type: int = GUILD_TEXT,
        topic: str | None = None,
        parent_id: int | str | None = None,
        position: int | None = None,
    ) -> dict[str, Any]:
        """Add a guild channel (a text channel unless ``type`` says otherwise)."""
        guild_id = _id(guild_id)
        with self._lock:
            if guild_id not in self._guilds:
                raise KeyError(f"add_guild({guild_id!r}) first")
            siblings = [c for c in self._channels.values() if c.get("guild_id") == guild_id]
            channel: dict[str, Any] = {
                "id": _id(channel_id),
                "type": type,
                "guild_id": guild_id,
                "name": name,
                "position": len(siblings) if position is None else position,
                "permission_overwrites": [],
                "parent_id": None if parent_id is None else _id(parent_id),
                "topic": topic,
                "nsfw": False,
                "last_message_id": None,
                "rate_limit_per_user": 0,
                "default_auto_archive_duration": 1440,
                "default_thread_rate_limit_per_user": 0,
                "flags": 0,
            }
            self._channels[channel["id"]] = channel
            return self._channel_payload(channel["id"])

    def add_thread(
        self,
        parent_id: int | str,
        thread_id: int | str,
        name: str,
        *,
        type: int = PUBLIC_THREAD,
        owner_id: int | str | None = None,
        archived: bool = False,
        joined: bool = True,
    ) -> dict[str, Any]:
        """Add a thread in a channel (public unless ``type`` is 12); ``joined``: whether
        the bot is a member of it."""
        with self._lock:
            return self._make_thread(
                _id(parent_id),
                _id(thread_id),
                name,
                type=type,
                owner_id=self.bot_user_id if owner_id is None else _id(owner_id),
                archived=archived,
                joined=joined,
            )

    def add_dm(self, channel_id: int | str, user_id: int | str) -> dict[str, Any]:
        """Add the DM channel between the bot and a user."""
        with self._lock:
            recipient = self._user(_id(user_id))
            channel: dict[str, Any] = {
                "id": _id(channel_id),
                "type": DM,
                "last_message_id": None,
                "recipients": [recipient],
                "flags": 0,
            }
            self._channels[channel["id"]] = channel
            return self._channel_payload(channel["id"])

    def deny(self, channel_id: int | str, permissions: int) -> None:
        """Deny the bot ``permissions`` in a channel (an overwrite on the bot's role, which
        discord.py sees too); threads inherit their parent's."""
        channel_id = _id(channel_id)
        with self._lock:
            self._denied[channel_id] |= permissions
            channel = self._channels[channel_id]
            guild = self._guilds[channel["guild_id"]]
            channel["permission_overwrites"] = [
                {
                    "id": guild.bot_role_id,
                    "type": 0,
                    "allow": "0",
                    "deny": str(self._denied[channel_id]),
                }
            ]

    def deny_webhooks(self, channel_id: int | str) -> None:
        """Deny Manage Webhooks in a channel: listing or creating webhooks there answers
        403 Missing Permissions (50013)."""
        self.deny(channel_id, _P["MANAGE_WEBHOOKS"])

    def add_message(
        self,
        channel_id: int | str,
        author_id: int | str,
        content: str,
        *,
        message_id: int | str | None = None,
        mentions: Iterable[int | str] = (),
        mention_roles: Iterable[int | str] = (),
        mention_everyone: bool = False,
        message_reference: int | str | Mapping[str, Any] | None = None,
        webhook_id: int | str | None = None,
        username: str | None = None,
        bot: bool = False,
        attachments: Iterable[tuple[str, bytes]] = (),
        embeds: Sequence[Mapping[str, Any]] = (),
        components: Sequence[Mapping[str, Any]] = (),
        guild: bool = True,
    ) -> dict[str, Any]:
        """Store a message as if a user (or a webhook, with ``webhook_id``) had posted it,
        and return it in MESSAGE_CREATE's shape. Nothing is dispatched."""
        with self._lock:
            channel_id = _id(channel_id)
            channel = self._channels.get(channel_id)
            guild_id = channel.get("guild_id") if channel is not None and guild else None
            if webhook_id is not None:
                author = self._webhook_author(_id(webhook_id), username)
            else:
                author = self._user(_id(author_id))
                if bot:
                    author = {**author, "bot": True}
            stored_attachments = [
                self._store_attachment(UploadedFile(name, data)) for name, data in attachments
            ]
            message = self._new_message(
                channel_id,
                author,
                guild_id=guild_id,
                message_id=None if message_id is None else _id(message_id),
                content=content,
                mentions=[_id(m) for m in mentions],
                mention_roles=[_id(r) for r in mention_roles],
                mention_everyone=mention_everyone,
                reference=message_reference,
                webhook_id=None if webhook_id is None else _id(webhook_id),
                attachments=stored_attachments,
                embeds=[dict(e) for e in embeds],
                components=[dict(c) for c in components],
            )
            self._store(message)
            return self._gateway_message(message)

    def message_create(
        self,
        channel_id: int | str,
        author_id: int | str,
        content: str,
        *,
        guild: bool = True,
        mentions: Iterable[int | str] = (),
        message_reference: int | str | Mapping[str, Any] | None = None,
        webhook_id: int | str | None = None,
        bot: bool = False,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """A MESSAGE_CREATE payload (stored, so history and fetch see it) for
        :meth:`dispatch`. Mentions are the ids given plus the ``<@id>`` in ``content``; a
        ``message_reference`` (a message id or a reference object) makes a reply (type 19).
        Takes :meth:`add_message`'s other keywords."""
        return self.add_message(
            channel_id,
            author_id,
            content,
            guild=guild,
            mentions=mentions,
            message_reference=message_reference,
            webhook_id=webhook_id,
            bot=bot,
            **kwargs,
        )

    async def post_message(
        self, channel_id: int | str, author_id: int | str, content: str, **kwargs: Any
    ) -> dict[str, Any]:
        """:meth:`message_create` and dispatch it: a user posts in the channel."""
        payload = self.message_create(channel_id, author_id, content, **kwargs)
        await self.dispatch("MESSAGE_CREATE", payload)
        return payload

    # -----------------------------------------------------------------------------------
    # Interactions

    def interaction_create_command(
        self,
        name: str,
        subcommand: str | None = None,
        options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None = None,
        *,
        user_id: int | str,
        channel_id: int | str,
        guild_id: int | str | None = None,
        resolved: Mapping[str, Any] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a slash command (type 2) for :meth:`dispatch`.

        ``subcommand`` may be ``"group sub"``. ``options`` is ``{name: value}`` (the
        option type is inferred) or Discord's option objects. The command's id and
        ``data.guild_id`` come from the commands synced (discord.py looks guild commands up
        by ``data.guild_id``). The guild defaults to the channel's.
        """
        with self._lock:
            channel_id = _id(channel_id)
            channel = self._channels.get(channel_id)
            if guild_id is None and channel is not None:
                guild_id = channel.get("guild_id")
            guild_key = None if guild_id is None else _id(guild_id)
            data: dict[str, Any] = {"name": name, "type": 1}
            synced = next((c for c in self._commands.get(guild_key, []) if c["name"] == name), None)
            if synced is not None and guild_key is not None:
                data["guild_id"] = guild_key
            else:
                synced = next((c for c in self._commands.get(None, []) if c["name"] == name), None)
            data["id"] = synced["id"] if synced is not None else self._next_id()
            opts = _options(options)
            if subcommand:
                parts = subcommand.split()
                opts = [{"name": parts[-1], "type": 1, "options": opts}]
                if len(parts) > 1:
                    opts = [{"name": parts[0], "type": 2, "options": opts}]
            if opts:
                data["options"] = opts
            if resolved:
                data["resolved"] = dict(resolved)
            return self._interaction(
                2, data, _id(user_id), channel_id, guild_key, None, locale=locale
            )

    def interaction_create_component(
        self,
        custom_id: str,
        *,
        user_id: int | str,
        channel_id: int | str,
        message: Mapping[str, Any] | int | str,
        component_type: int = 2,
        values: Sequence[str] | None = None,
        locale: str = "en-US",
    ) -> dict[str, Any]:
        """An INTERACTION_CREATE payload for a click on a component (type 3) of
        ``message`` (a message dict or a stored message's id) for :meth:`dispatch`.
        discord.py's DynamicItem and View dispatch need the message to carry the component
        with this ``custom_id``."""
        with self._lock:
            channel_id = _id(channel_id)
            if isinstance(message, Mapping):
                msg = copy.deepcopy(dict(message))
            else:
                found = self._find_message(_id(message))
                if found is None:
                    raise KeyError(f"no message {message}")
                msg = copy.deepcopy(found)
            msg.pop("member", None)
            channel = self._channels.get(channel_id)
            guild_id = channel.get("guild_id") if channel is not None else None
            data: dict[str, Any] = {"custom_id": custom_id, "component_type": component_type}
            if values is not None:
                data["values"] = list(values)
            payload = self._interaction(
                3, data, _id(user_id), channel_id, guild_id, str(msg["id"]), locale=locale
            )
            payload["message"] = msg
            return payload

    # -----------------------------------------------------------------------------------
    # Scripting failures

    def rate_limit(
        self,
        method: str,
        path_pattern: str,
        times: int = 1,
        *,
        retry_after: float = 0.05,
        is_global: bool = False,
    ) -> None:
        """Answer the next ``times`` calls matching with 429, Discord's rate-limit headers
        (and ``Via``, without which discord.py takes a 429 for a Cloudflare ban) and body
        ``{"message", "retry_after", "global"}``. ``path_pattern``: a route template
        (``/channels/{channel_id}/messages``; any ``{name}`` is one segment), a concrete
        path, or a glob with ``*``."""
        reset = time.time() + retry_after
        headers = {
            "Retry-After": str(max(1, math.ceil(retry_after))),
            "X-RateLimit-Limit": "5",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": f"{reset:.3f}",
            "X-RateLimit-Reset-After": f"{retry_after:.3f}",
            "X-RateLimit-Bucket": secrets.token_hex(16),
            "X-RateLimit-Scope": "global" if is_global else "user",
            "Via": "1.1 google",
        }
        if is_global:
            headers["X-RateLimit-Global"] = "true"
        body = {"message": "You are being rate limited.", "retry_after": retry_after}
        body["global"] = is_global
        with self._lock:
            self._scripted.append(
                (method.upper(), _compile(path_pattern), _Scripted(times, 429, body, headers))
            )

    def fail(
        self,
        method: str,
        path_pattern: str,
        status: int,
        code: int,
        message: str,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls matching (as in :meth:`rate_limit`) with
        ``status`` and ``{"message", "code"}``."""
        body = {"message": message, "code": code}
        with self._lock:
            self._scripted.append(
                (method.upper(), _compile(path_pattern), _Scripted(times, status, body, {}))
            )

    # -----------------------------------------------------------------------------------
    # Inspection

    @property
    def calls(self) -> list[Call]:
        """Every REST request so far, oldest first."""
        with self._lock:
            return list(self._calls)

    def calls_to(self, method: str, path_pattern: str) -> list[Call]:
        """The calls with ``method`` whose route template equals ``path_pattern`` or whose
        path matches it (``{name}`` one segment, ``*`` anything)."""
        pattern = _compile(path_pattern)
        return [
            c
            for c in self.calls
            if c.method == method.upper()
            and (c.route == path_pattern or pattern.fullmatch(c.path) is not None)
        ]

    @property
    def unknown_calls(self) -> list[Call]:
        """Calls to routes this fake does not know (answered 404)."""
        return [c for c in self.calls if c.route is None]

    def messages(self, channel_id: int | str) -> list[dict[str, Any]]:
        """The messages in a channel or thread, oldest first (ephemeral ones excluded)."""
        with self._lock:
            return copy.deepcopy(self._messages.get(_id(channel_id), []))

    def message(self, message_id: int | str) -> dict[str, Any] | None:
        """A stored message (ephemeral ones included) by id."""
        with self._lock:
            found = self._find_message(_id(message_id))
            return copy.deepcopy(found)

    def reactions(self, message_id: int | str) -> list[str]:
        """The emoji the bot has on a message (``"👀"``, ``"name:id"``), in order added."""
        with self._lock:
            return list(self._reactions.get(_id(message_id), []))

    def uploaded_files(self, message_id: int | str) -> list[UploadedFile]:
        """The files uploaded with a message, in attachment order."""
        with self._lock:
            return list(self._files.get(_id(message_id), []))

    def channel(self, channel_id: int | str) -> dict[str, Any]:
        """A channel's (or thread's) object as Discord answers ``GET /channels/{id}``."""
        with self._lock:
            return self._channel_payload(_id(channel_id))

    def threads(self, parent_id: int | str) -> list[dict[str, Any]]:
        """The threads of a channel."""
        with self._lock:
            return [
                self._channel_payload(c["id"])
                for c in self._channels.values()
                if c["type"] in _THREAD_TYPES and c.get("parent_id") == _id(parent_id)
            ]

    @property
    def webhooks(self) -> list[dict[str, Any]]:
        """Every webhook created, with its token."""
        with self._lock:
            return copy.deepcopy(list(self._webhooks.values()))

    @property
    def webhook_executions(self) -> list[WebhookExecution]:
        """Messages sent through webhooks, oldest first."""
        with self._lock:
            return list(self._webhook_executions)

    @property
    def sent_messages(self) -> list[dict[str, Any]]:
        """Messages the bot posted with ``POST /channels/{id}/messages``, as stored then."""
        with self._lock:
            return copy.deepcopy(self._sent_messages)

    @property
    def interaction_responses(self) -> list[InteractionResponse]:
        """Interaction callbacks, oldest first."""
        with self._lock:
            return list(self._interaction_responses)

    @property
    def followups(self) -> list[Followup]:
        """Interaction follow-up messages, oldest first."""
        with self._lock:
            return list(self._followups)

    @property
    def synced_commands(self) -> dict[str | None, list[dict[str, Any]]]:
        """The application commands last put, by guild id (None: global), with their ids."""
        with self._lock:
            return copy.deepcopy(self._commands)

    @property
    def typing(self) -> list[str]:
        """The channels the bot triggered a typing indicator in, one entry per call."""
        with self._lock:
            return list(self._typing)

    async def wait_until(self, predicate: Callable[[], Any], within: float = 5.0) -> Any:
        """Wait until ``predicate()`` is truthy (checked as the fake records things) and
        return its value; ``TimeoutError`` after ``within`` seconds."""
        async with asyncio.timeout(within):
            while not (value := predicate()):
                await asyncio.sleep(0.005)
            return value

    # -----------------------------------------------------------------------------------
    # Gateway: inspection and control

    @property
    def connected(self) -> int:
        """Open gateway connections that have identified or resumed."""
        with self._lock:
            return sum(1 for c in self._conns.values() if c.session is not None)

    @property
    def identifies(self) -> list[dict[str, Any]]:
        """The ``d`` of every IDENTIFY (token, intents, properties…)."""
        with self._lock:
            return copy.deepcopy(self._identifies)

    @property
    def resumes(self) -> list[dict[str, Any]]:
        """The ``d`` of every RESUME (token, session_id, seq)."""
        with self._lock:
            return copy.deepcopy(self._resumes)

    async def wait_connected(self, count: int = 1, within: float = 5.0) -> None:
        """Wait until ``count`` gateway connections have identified or resumed."""
        await self.wait_until(lambda: self.connected >= count, within)

    async def dispatch(self, event: str, payload: Mapping[str, Any]) -> int:
        """Push a dispatch (op 0) to every live session, each with its next ``s``; returns
        how many connections it was sent on. A session whose socket is down (after
        :meth:`disconnect`) keeps it for replay on RESUME. Events are filtered by each
        session's intents, and message content blanked without MESSAGE_CONTENT."""
        return await self._on_server_loop(self._broadcast(event, dict(payload)))

    async def disconnect(self, code: int = 4000) -> int:
        """Close every gateway socket from the server's side with ``code`` (4000, "unknown
        error", is resumable: discord.py reconnects and RESUMEs); returns how many."""
        return await self._on_server_loop(self._disconnect(code))

    async def request_reconnect(self) -> int:
        """Send RECONNECT (op 7) on every socket: discord.py closes it and RESUMEs."""
        return await self._on_server_loop(self._send_op_all({"op": 7, "d": None}))

    async def invalidate_sessions(self, resumable: bool = False) -> int:
        """Send INVALID_SESSION (op 9): discord.py IDENTIFYs anew unless ``resumable``."""
        if not resumable:
            with self._lock:
                for session in self._sessions.values():
                    session.resumable = False
        return await self._on_server_loop(self._send_op_all({"op": 9, "d": resumable}))

    # -----------------------------------------------------------------------------------
    # Gateway: the socket

    async def _on_server_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the server's event loop (WebSockets belong to their loop)."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError("the fake Discord server is not running")
        if asyncio.get_running_loop() is loop:
            return await coro
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        # Frames go out as text: discord.py decompresses only bytes frames, so the
        # zlib-stream it asks for is optional in practice.
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        with self._lock:
            self._conn_count += 1
            conn = _Conn(self._conn_count, ws, dict(request.query))
            self._conns[conn.number] = conn
        try:
            await ws.send_str(
                json.dumps(
                    {
                        "op": 10,
                        "d": {"heartbeat_interval": self.heartbeat_interval, "_trace": ["fake"]},
                        "s": None,
                        "t": None,
                    }
                )
            )
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    await self._gateway_received(conn, message.data)
                elif message.type == WSMsgType.BINARY:
                    await self._close(conn, 4002, "Error while decoding payload.")
        finally:
            with self._lock:
                self._conns.pop(conn.number, None)
                session = conn.session
                if session is not None and session.conn is conn:
                    session.conn = None
                    client_code = None if conn.closed_by_server else ws.close_code
                    if client_code in _FATAL_CLOSE_CODES:
                        session.resumable = False
        return ws

    async def _gateway_received(self, conn: _Conn, data: str) -> None:
        try:
            frame = json.loads(data)
            op = frame["op"]
            d = frame.get("d")
        except (ValueError, KeyError, TypeError):
            await self._close(conn, 4002, "Error while decoding payload.")
            return
        if op == 1:
            await conn.ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
        elif op == 2:
            await self._identify(conn, d if isinstance(d, dict) else {})
        elif op == 6:
            await self._resume(conn, d if isinstance(d, dict) else {})
        elif op in (3, 4, 8):
            if conn.session is None:
                await self._close(conn, 4003, "Not authenticated.")
        else:
            await self._close(conn, 4001, "Unknown opcode.")

    async def _close(self, conn: _Conn, code: int, reason: str) -> None:
        conn.closed_by_server = True
        if conn.session is not None and code in _FATAL_CLOSE_CODES:
            conn.session.resumable = False
        await conn.ws.close(code=code, message=reason.encode())

    async def _identify(self, conn: _Conn, d: dict[str, Any]) -> None:
        with self._lock:
            self._identifies.append(copy.deepcopy(d))
        if conn.session is not None:
            await self._close(conn, 4005, "Already authenticated.")
            return
        if d.get("token") != self.token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        intents = d.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            await self._close(conn, 4013, "Invalid intent(s).")
            return
        for intent, flags in _PRIVILEGED.items():
            if intents & intent and not self.application_flags & flags:
                await self._close(conn, 4014, "Disallowed intent(s).")
                return
        with self._lock:
            session = _Session(secrets.token_hex(16), intents, d.get("shard"))
            session.conn = conn
            conn.session = session
            self._sessions[session.id] = session
            ready = {
                "v": 10,
                "user": {
                    **self._user(self.bot_user_id),
                    "verified": True,
                    "mfa_enabled": True,
                    "email": None,
                },
                "guilds": [{"id": g, "unavailable": True} for g in self._guilds],
                "session_id": session.id,
                "session_type": "normal",
                "resume_gateway_url": self.gateway_url,
                "shard": session.shard or [0, 1],
                "application": {"id": self.application_id, "flags": self.application_flags},
                "private_channels": [],
                "relationships": [],
                "presences": [],
                "user_settings": {},
                "guild_join_requests": [],
                "geo_ordered_rtc_regions": [],
                "auth": {},
                "_trace": ["fake-discord"],
            }
            guilds = [self._guild_create(g) for g in self._guilds.values()]
        await self._send_event(session, "READY", ready)
        for guild in guilds:
            if session.intents & INTENTS["GUILDS"]:
                await self._send_event(session, "GUILD_CREATE", guild)

    async def _resume(self, conn: _Conn, d: dict[str, Any]) -> None:
        with self._lock:
            self._resumes.append(copy.deepcopy(d))
            session = self._sessions.get(str(d.get("session_id")))
        if d.get("token") != self.token:
            await self._close(conn, 4004, "Authentication failed.")
            return
        seq = d.get("seq")
        if session is None or not session.resumable or not isinstance(seq, int):
            await conn.ws.send_str(json.dumps({"op": 9, "d": False, "s": None, "t": None}))
            return
        if seq > session.seq:
            await self._close(conn, 4007, "Invalid seq.")
            return
        old = session.conn
        session.conn = conn
        conn.session = session
        if old is not None and old is not conn:
            old.session = None
            old.closed_by_server = True
            with suppress(Exception):
                await old.ws.close(code=4000)
        for frame in list(session.buffer):
            if frame["s"] > seq:
                await conn.ws.send_str(json.dumps(frame))
        await self._send_event(session, "RESUMED", {"_trace": ["fake-discord"]})

    async def _send_event(self, session: _Session, event: str, data: dict[str, Any]) -> bool:
        with self._lock:
            session.seq += 1
            frame = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.buffer.append(frame)
            conn = session.conn
        if conn is None or conn.ws.closed:
            return False
        try:
            await conn.ws.send_str(json.dumps(frame))
        except (ConnectionError, RuntimeError):
            return False
        return True

    async def _broadcast(self, event: str, payload: dict[str, Any]) -> int:
        with self._lock:
            sessions = [s for s in self._sessions.values() if s.resumable]
        sent = 0
        for session in sessions:
            data = self._for_session(session, event, payload)
            if data is not None and await self._send_event(session, event, data):
                sent += 1
        return sent

    def _for_session(
        self, session: _Session, event: str, payload: dict[str, Any]
    ) -> dict[str, Any] | None:
        """The event as this session would get it, or None if its intents exclude it."""
        in_guild = payload.get("guild_id") is not None
        if event in _GUILD_INTENT_EVENTS:
            guild_intent, dm_intent = _GUILD_INTENT_EVENTS[event]
            if not session.intents & INTENTS[guild_intent if in_guild else dm_intent]:
                return None
        elif event in _GUILDS_INTENT_EVENTS and not session.intents & INTENTS["GUILDS"]:
            return None
        data = copy.deepcopy(payload)
        if (
            event in ("MESSAGE_CREATE", "MESSAGE_UPDATE")
            and in_guild
            and not session.intents & INTENTS["MESSAGE_CONTENT"]
        ):
            author = (data.get("author") or {}).get("id")
            mentioned = any(m.get("id") == self.bot_user_id for m in data.get("mentions", []))
            if author != self.bot_user_id and not mentioned:
                data.update(content="", embeds=[], attachments=[], components=[])
                data.pop("poll", None)
        return data

    async def _disconnect(self, code: int) -> int:
        with self._lock:
            conns = list(self._conns.values())
        for conn in conns:
            conn.closed_by_server = True
            with suppress(Exception):
                await conn.ws.close(code=code)
        return len(conns)

    async def _send_op_all(self, frame: dict[str, Any]) -> int:
        with self._lock:
            conns = [c for c in self._conns.values() if not c.ws.closed]
        for conn in conns:
            with suppress(Exception):
                await conn.ws.send_str(json.dumps({**frame, "s": None, "t": None}))
        return len(conns)

    async def _flush_events(self) -> None:
        with self._lock:
            events, self._pending_events = self._pending_events, []
        for event, payload in events:
            await self._broadcast(event, payload)

    # -----------------------------------------------------------------------------------
    # HTTP

    async def _attachment(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            upload = self._attachments.get(request.match_info["attachment_id"])
        if upload is None:
            return web.Response(status=404, text="Not Found")
        return web.Response(
            body=upload.content, content_type=upload.content_type or "application/octet-stream"
        )

    async def _api(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.rel_url.raw_path[len("/api/v10") :] or "/"
        path = unquote(raw_path)
        query = dict(request.query)
        headers = {k.lower(): v for k, v in request.headers.items()}
        body, files = await _read_body(request)
        method = request.method.upper()
        matched: tuple[str, Handler, bool, dict[str, str]] | None = None
        for route_method, template, regex, handler, auth in self._routes:
            found = regex.fullmatch(raw_path)
            if found is not None and route_method == method:
                match = {k: unquote(v) for k, v in found.groupdict().items()}
                matched = (template, handler, auth, match)
                break
        extra_headers: dict[str, str] = {}
        with self._lock:
            self._pending_events = []
            if matched is None:
                status, answer = 404, {"message": "404: Not Found", "code": 0}
            else:
                template, handler, auth, match = matched
                scripted = self._take_scripted(method, path, template)
                if scripted is not None:
                    status, answer, extra_headers = scripted
                elif auth and headers.get("authorization") != f"Bot {self.token}":
                    status, answer = 401, {"message": "401: Unauthorized", "code": 0}
                else:
                    try:
                        status, answer = handler(_Request(match, query, body, files))
                    except DiscordError as exc:
                        status, answer = exc.status, exc.body()
                        self._pending_events = []
            self._calls.append(
                Call(
                    method=method,
                    path=path,
                    route=None if matched is None else matched[0],
                    query=query,
                    json=copy.deepcopy(body),
                    status=status,
                    headers=headers,
                    files=files,
                    response=copy.deepcopy(answer),
                    at=time.monotonic(),
                )
            )
        # Discord's gateway usually beats the HTTP answer; sending first makes that
        # ordering deterministic (e.g. a thread is cached before create_thread returns).
        await self._flush_events()
        if status == 204:
            return web.Response(status=204, headers=extra_headers)
        # Exactly "application/json", as Discord sends it: discord.py compares the whole
        # header and treats anything else (aiohttp's "; charset=utf-8") as plain text.
        return web.Response(
            body=json.dumps(answer).encode(),
            status=status,
            headers={**extra_headers, "Content-Type": "application/json"},
        )

    def _take_scripted(
        self, method: str, path: str, template: str
    ) -> tuple[int, Any, dict[str, str]] | None:
        for scripted_method, pattern, scripted in self._scripted:
            if scripted_method != method or scripted.times <= 0:
                continue
            if pattern.fullmatch(path) is None and pattern.fullmatch(template) is None:
                continue
            scripted.times -= 1
            return scripted.status, copy.deepcopy(scripted.body), dict(scripted.headers)
        return None

    # -----------------------------------------------------------------------------------
    # Model helpers (called with the lock held)

    def _next_id(self) -> str:
        """A snowflake for now, strictly greater than every one before it."""
        with self._lock:
            ms = int(time.time() * 1000) - DISCORD_EPOCH
            value = max((ms << 22) | (1 << 17), self._last_snowflake + 1)
            self._last_snowflake = value
            return str(value)

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            raise KeyError(f"unknown user {user_id}: add_user() it first")
        return copy.deepcopy(user)

    def _member(self, guild_id: str, user_id: str, *, with_user: bool = False) -> dict[str, Any]:
        guild = self._guilds[guild_id]
        is_bot = user_id == self.bot_user_id
        member: dict[str, Any] = {
            "roles": [guild.bot_role_id] if is_bot else list(guild.member_roles.get(user_id, [])),
            "joined_at": guild.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "banner": None,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = self._user(user_id)
        return member

    def _partial_guild(self, guild: _Guild) -> dict[str, Any]:
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "banner": None,
            "owner": guild.owner_id == self.bot_user_id,
            "permissions": str(guild.permissions),
            "features": [],
            "approximate_member_count": len(self._users),
            "approximate_presence_count": 1,
        }

    def _roles(self, guild: _Guild) -> list[dict[str, Any]]:
        def role(role_id: str, name: str, permissions: int, position: int) -> dict[str, Any]:
            return {
                "id": role_id,
                "name": name,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "icon": None,
                "unicode_emoji": None,
                "position": position,
                "permissions": str(permissions),
                "managed": position > 0,
                "mentionable": False,
                "flags": 0,
            }

        bot_role = role(guild.bot_role_id, str(self.bot_user["username"]), guild.permissions, 1)
        bot_role["tags"] = {"bot_id": self.bot_user_id}
        added = [role(i, name, 0, 0) for i, name in guild.roles.items()]
        return [role(guild.id, "@everyone", EVERYONE_PERMISSIONS, 0), bot_role, *added]

    def _guild_create(self, guild: _Guild) -> dict[str, Any]:
        channels = [
            self._channel_payload(c["id"], with_guild_id=False)
            for c in self._channels.values()
            if c.get("guild_id") == guild.id and c["type"] not in _THREAD_TYPES
        ]
        threads = [
            self._channel_payload(c["id"])
            for c in self._channels.values()
            if c.get("guild_id") == guild.id
            and c["type"] in _THREAD_TYPES
            and not c["thread_metadata"]["archived"]
        ]
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": guild.owner_id,
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "roles": self._roles(guild),
            "emojis": [],
            "stickers": [],
            "features": [],
            "mfa_level": 0,
            "application_id": None,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500000,
            "vanity_url_code": None,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "nsfw": False,
            "joined_at": guild.joined_at,
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(self._users),
            "members": [self._member(guild.id, self.bot_user_id, with_user=True)],
            "channels": channels,
            "threads": threads,
            "presences": [],
            "voice_states": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        }

    def _channel_payload(self, channel_id: str, *, with_guild_id: bool = True) -> dict[str, Any]:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        payload = copy.deepcopy(channel)
        payload.pop("_joined", None)
        if channel["type"] in _THREAD_TYPES and channel.get("_joined"):
            payload["member"] = {
                "id": channel_id,
                "user_id": self.bot_user_id,
                "join_timestamp": channel["thread_metadata"]["create_timestamp"],
                "flags": 1,
            }
        if not with_guild_id:
            payload.pop("guild_id", None)
        return payload

    def _make_thread(
        self,
        parent_id: str,
        thread_id: str,
        name: str,
        *,
        type: int,
        owner_id: str,
        archived: bool = False,
        joined: bool = True,
        auto_archive_duration: int = 1440,
    ) -> dict[str, Any]:
        parent = self._channels.get(parent_id)
        if parent is None or parent.get("guild_id") is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        now = _iso(datetime.now(UTC))
        thread: dict[str, Any] = {
            "id": thread_id,
            "type": type,
            "guild_id": parent["guild_id"],
            "parent_id": parent_id,
            "owner_id": owner_id,
            "name": name,
            "last_message_id": None,
            "rate_limit_per_user": 0,
            "message_count": 0,
            "member_count": 1,
            "total_message_sent": 0,
            "flags": 0,
            "thread_metadata": {
                "archived": archived,
                "auto_archive_duration": auto_archive_duration,
                "archive_timestamp": now,
                "locked": False,
                "create_timestamp": now,
            },
            "_joined": joined,
        }
        if type == PRIVATE_THREAD:
            thread["thread_metadata"]["invitable"] = True
        self._channels[thread_id] = thread
        return self._channel_payload(thread_id)

    def _permissions(self, channel: dict[str, Any]) -> int:
        """The bot's effective permissions in a channel (all of them in a DM)."""
        guild_id = channel.get("guild_id")
        if guild_id is None:
            return (1 << 50) - 1
        guild = self._guilds[guild_id]
        if guild.owner_id == self.bot_user_id or guild.permissions & _P["ADMINISTRATOR"]:
            return (1 << 50) - 1
        allowed = guild.permissions | EVERYONE_PERMISSIONS
        denied_in = channel["parent_id"] if channel["type"] in _THREAD_TYPES else channel["id"]
        return allowed & ~self._denied.get(denied_in or "", 0)

    def _visible_channel(self, channel_id: str) -> dict[str, Any]:
        channel = self._channels.get(channel_id)
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        if not self._permissions(channel) & _P["VIEW_CHANNEL"]:
            raise _missing_access()
        return channel

    def _require(self, channel: dict[str, Any], *names: str) -> None:
        perms = self._permissions(channel)
        if any(not perms & _P[name] for name in names):
            raise _missing_permissions()

    def _webhook_author(self, webhook_id: str, username: str | None) -> dict[str, Any]:
        webhook = self._webhooks.get(webhook_id)
        name = username or (webhook or {}).get("name") or "Captain Hook"
        return {
            "id": webhook_id,
            "username": name,
            "avatar": None,
            "discriminator": "0000",
            "public_flags": 0,
            "flags": 0,
            "bot": True,
            "global_name": None,
        }

    def _new_message(
        self,
        channel_id: str,
        author: dict[str, Any],
        *,
        guild_id: str | None,
        content: str = "",
        message_id: str | None = None,
        mentions: Iterable[str] = (),
        mention_roles: Iterable[str] = (),
        mention_everyone: bool = False,
        reference: int | str | Mapping[str, Any] | None = None,
        webhook_id: str | None = None,
        application_id: str | None = None,
        attachments: Sequence[dict[str, Any]] = (),
        embeds: Sequence[dict[str, Any]] = (),
        components: Sequence[dict[str, Any]] = (),
        flags: int = 0,
        type: int = 0,
        nonce: Any = None,
        tts: bool = False,
        allowed_mentions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        message_id = message_id or self._next_id()
        mentioned = list(dict.fromkeys([*mentions, *_MENTION.findall(content)]))
        if allowed_mentions is not None:
            parse = allowed_mentions.get("parse") or []
            users = [str(u) for u in allowed_mentions.get("users") or []]
            mentioned = [m for m in mentioned if "users" in parse or m in users]
        mention_users = []
        for user_id in mentioned:
            if user_id in self._users:
                user = self._user(user_id)
                if guild_id is not None:
                    user["member"] = self._member(guild_id, user_id)
                mention_users.append(user)
        message: dict[str, Any] = {
            "id": message_id,
            "type": type,
            "channel_id": channel_id,
            "author": author,
            "content": content,
            "timestamp": _iso(snowflake_time(message_id)),
            "edited_timestamp": None,
            "tts": tts,
            "mention_everyone": mention_everyone,
            "mentions": mention_users,
            "mention_roles": list(mention_roles),
            "attachments": list(attachments),
            "embeds": [{"type": "rich", **e} for e in embeds],
            "pinned": False,
            "flags": flags,
            "components": list(components),
        }
        if guild_id is not None:
            message["guild_id"] = guild_id
        if webhook_id is not None:
            message["webhook_id"] = webhook_id
        if application_id is not None:
            message["application_id"] = application_id
        if nonce is not None:
            message["nonce"] = nonce
        if reference is not None:
            ref = (
                dict(reference)
                if isinstance(reference, Mapping)
                else {"message_id": str(reference), "channel_id": channel_id}
            )
            ref = {"type": 0, "channel_id": channel_id, **ref}
            ref["message_id"] = str(ref["message_id"])
            ref.pop("fail_if_not_exists", None)
            if guild_id is not None:
                ref.setdefault("guild_id", guild_id)
            message["message_reference"] = ref
            if ref["type"] == 0:
                message["type"] = 19
                referenced = self._find_message(ref["message_id"])
                message["referenced_message"] = (
                    _rest_message(referenced) if referenced is not None else None
                )
        channel = self._channels.get(channel_id)
        if channel is not None and channel["type"] in _THREAD_TYPES:
            message["position"] = channel["total_message_sent"]
        return message

    def _store(self, message: dict[str, Any], *, ephemeral: bool = False) -> None:
        """Keep a message (in its channel's history unless ephemeral); the MESSAGE_CREATE
        shape is kept, ``member`` included, and stripped for REST answers."""
        author = message["author"]
        guild_id = message.get("guild_id")
        if (
            guild_id is not None
            and "webhook_id" not in message
            and author["id"] in self._users
            and "member" not in message
        ):
            message["member"] = self._member(guild_id, author["id"])
        if ephemeral:
            self._ephemeral[message["id"]] = message
            return
        channel_id = message["channel_id"]
        history = self._messages[channel_id]
        history.append(message)
        history.sort(key=lambda m: int(m["id"]))
        self._message_index[message["id"]] = message
        channel = self._channels.get(channel_id)
        if channel is not None:
            channel["last_message_id"] = max((m["id"] for m in history), key=int, default=None)
            if channel["type"] in _THREAD_TYPES:
                channel["message_count"] += 1
                channel["total_message_sent"] += 1

    def _find_message(self, message_id: str) -> dict[str, Any] | None:
        return self._message_index.get(message_id) or self._ephemeral.get(message_id)

    def _gateway_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(message)

    def _channel_message(self, channel_id: str, message_id: str) -> dict[str, Any]:
        message = self._message_index.get(message_id)
        if message is None or message["channel_id"] != channel_id:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def _store_attachment(
        self, upload: UploadedFile, description: str | None = None
    ) -> dict[str, Any]:
        attachment_id = self._next_id()
        self._attachments[attachment_id] = upload
        url = f"{self.url}/attachments/{attachment_id}/{upload.filename}"
        attachment: dict[str, Any] = {
            "id": attachment_id,
            "filename": upload.filename,
            "size": len(upload.content),
            "url": url,
            "proxy_url": url,
            "content_type": upload.content_type or _guess_type(upload.filename),
        }
        if description:
            attachment["description"] = description
        self._attachment_meta[attachment_id] = attachment
        return copy.deepcopy(attachment)

    def _message_fields(
        self,
        payload: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        require_content: bool = True,
    ) -> dict[str, Any]:
        """Validate a create/edit message body as Discord does and return the fields to
        store (attachments made from ``files``)."""
        content = payload.get("content")
        if content is not None and not isinstance(content, str):
            content = str(content)
        if content is not None and len(content) > MAX_CONTENT:
            raise _invalid_form(
                "content", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_CONTENT} or fewer in length."
            )
        embeds = payload.get("embeds")
        if embeds is not None and len(embeds) > MAX_EMBEDS:
            raise _invalid_form(
                "embeds", "BASE_TYPE_MAX_LENGTH", f"Must be {MAX_EMBEDS} or fewer in length."
            )
        attachments: list[dict[str, Any]] | None = None
        if files or payload.get("attachments") is not None:
            described = {str(a.get("id")): a for a in payload.get("attachments") or [] if "id" in a}
            attachments = []
            for index, upload in enumerate(files):
                meta = described.get(str(index), {})
                name = meta.get("filename") or upload.filename
                attachments.append(
                    self._store_attachment(
                        UploadedFile(name, upload.content, upload.content_type),
                        meta.get("description"),
                    )
                )
            # On edit, attachments to keep are listed by their real ids (not file indexes).
            for kept in payload.get("attachments") or []:
                meta = self._attachment_meta.get(str(kept.get("id")))
                if meta is not None:
                    attachments.append(copy.deepcopy(meta))
        fields: dict[str, Any] = {}
        if content is not None:
            fields["content"] = content
        if embeds is not None:
            fields["embeds"] = [{"type": "rich", **e} for e in embeds]
        if payload.get("components") is not None:
            fields["components"] = payload["components"]
        if attachments is not None:
            fields["attachments"] = attachments
        if payload.get("flags") is not None:
            fields["flags"] = int(payload["flags"])
        if (
            require_content
            and not fields.get("content")
            and not fields.get("embeds")
            and not fields.get("attachments")
            and not fields.get("components")
            and not payload.get("sticker_ids")
            and not payload.get("poll")
        ):
            raise DiscordError(400, 50006, "Cannot send an empty message")
        return fields

    def _check_webhook_name(self, name: Any, field_name: str) -> None:
        if name is None:
            return
        name = str(name)
        if not 1 <= len(name) <= MAX_WEBHOOK_NAME:
            raise _invalid_form(
                field_name,
                "BASE_TYPE_BAD_LENGTH",
                f"Must be between 1 and {MAX_WEBHOOK_NAME} in length.",
            )
        lowered = name.lower()
        for banned in ("clyde", "discord"):
            if banned in lowered:
                raise _invalid_form(
                    field_name,
                    "USERNAME_INVALID_CONTAINS",
                    f'Username cannot contain "{banned}"',
                )

    def _queue_event(self, event: str, payload: dict[str, Any]) -> None:
        self._pending_events.append((event, copy.deepcopy(payload)))

    def _post(
        self,
        channel_id: str,
        author: dict[str, Any],
        fields: dict[str, Any],
        payload: Mapping[str, Any],
        files: Sequence[UploadedFile],
        *,
        webhook_id: str | None = None,
        application_id: str | None = None,
        type: int = 0,
        extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Make, store and echo (MESSAGE_CREATE, unless ephemeral) a message."""
        channel = self._channels[channel_id]
        flags = int(fields.get("flags", 0))
        message = self._new_message(
            channel_id,
            author,
            guild_id=channel.get("guild_id"),
            content=fields.get("content", ""),
            reference=payload.get("message_reference"),
            webhook_id=webhook_id,
            application_id=application_id,
            attachments=fields.get("attachments", []),
            embeds=[],
            components=fields.get("components", []),
            flags=flags,
            type=type,
            nonce=payload.get("nonce"),
            tts=bool(payload.get("tts")),
            allowed_mentions=payload.get("allowed_mentions"),
        )
        message["embeds"] = fields.get("embeds", [])
        if extra:
            message.update(extra)
        ephemeral = bool(flags & EPHEMERAL)
        self._store(message, ephemeral=ephemeral)
        if files:
            self._files[message["id"]] = list(files)
        if not ephemeral:
            self._queue_event("MESSAGE_CREATE", message)
        return message

    def _edit(self, message: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
        if "flags" in fields:
            # Only SUPPRESS_EMBEDS can change on edit; the rest are Discord's to set.
            fields["flags"] = (message["flags"] & ~(4 | LOADING)) | (fields["flags"] & 4)
        else:
            fields["flags"] = message["flags"] & ~LOADING
        message.update(fields)
        message["edited_timestamp"] = _iso(datetime.now(UTC))
        if not message["flags"] & EPHEMERAL:
            self._queue_event("MESSAGE_UPDATE", message)
        return message

    def _interaction(
        self,
        type: int,
        data: dict[str, Any],
        user_id: str,
        channel_id: str,
        guild_id: str | None,
        message_id: str | None,
        *,
        locale: str,
    ) -> dict[str, Any]:
        interaction = _Interaction(
            id=self._next_id(),
            token="aW50ZXJhY3Rpb246" + secrets.token_urlsafe(48),
            type=type,
            channel_id=channel_id,
            guild_id=guild_id,
            user_id=user_id,
            message_id=message_id,
        )
        self._interactions[interaction.token] = interaction
        channel = self._channels.get(channel_id)
        permissions = self._permissions(channel) if channel is not None else BOT_PERMISSIONS
        payload: dict[str, Any] = {
            "id": interaction.id,
            "application_id": self.application_id,
            "type": type,
            "data": data,
            "token": interaction.token,
            "version": 1,
            "app_permissions": str(permissions),
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": 10 * 1024 * 1024,
            "channel_id": channel_id,
        }
        if channel is not None:
            payload["channel"] = {
                **self._channel_payload(channel_id),
                "permissions": str(permissions),
            }
        if guild_id is not None:
            payload["guild_id"] = guild_id
            payload["guild"] = {"id": guild_id, "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            member = self._member(guild_id, user_id, with_user=True)
            member["permissions"] = str(MEMBER_PERMISSIONS)
            payload["member"] = member
            payload["authorizing_integration_owners"] = {"0": guild_id}
            payload["context"] = 0
        else:
            payload["user"] = self._user(user_id)
            payload["authorizing_integration_owners"] = {"0": "0"}
            payload["context"] = 1
        return payload

    def _interaction_message_extra(self, interaction: _Interaction) -> dict[str, Any]:
        user = self._user(interaction.user_id)
        metadata: dict[str, Any] = {
            "id": interaction.id,
            "type": interaction.type,
            "user": user,
            "authorizing_integration_owners": {"0": interaction.guild_id or "0"},
        }
        if interaction.message_id is not None:
            metadata["interacted_message_id"] = interaction.message_id
        return {"interaction_metadata": metadata}

    # -----------------------------------------------------------------------------------
    # Routes: identity

    def _get_me(self, req: _Request) -> tuple[int, Any]:
        user = self._user(self.bot_user_id)
        return 200, {
            **user,
            "verified": True,
            "mfa_enabled": True,
            "email": None,
            "locale": "en-US",
        }

    def _get_my_guilds(self, req: _Request) -> tuple[int, Any]:
        guilds = sorted(self._guilds.values(), key=lambda g: int(g.id))
        if "after" in req.query:
            guilds = [g for g in guilds if int(g.id) > int(req.query["after"])]
        if "before" in req.query:
            guilds = [g for g in guilds if int(g.id) < int(req.query["before"])]
        limit = min(int(req.query.get("limit", 200)), 200)
        return 200, [self._partial_guild(g) for g in guilds[:limit]]

    def _get_user(self, req: _Request) -> tuple[int, Any]:
        user = self._users.get(req.match["user_id"])
        if user is None:
            raise DiscordError(404, 10013, "Unknown User")
        return 200, copy.deepcopy(user)

    def _create_dm(self, req: _Request) -> tuple[int, Any]:
        recipient_id = str((req.json or {}).get("recipient_id"))
        if recipient_id not in self._users:
            raise DiscordError(400, 50007, "Cannot send messages to this user")
        for channel in self._channels.values():
            if channel["type"] == DM and channel["recipients"][0]["id"] == recipient_id:
                return 200, self._channel_payload(channel["id"])
        channel_id = self._next_id()
        self.add_dm(channel_id, recipient_id)
        return 200, self._channel_payload(channel_id)

    def _get_application(self, req: _Request) -> tuple[int, Any]:
        bot = self._user(self.bot_user_id)
        install = {"scopes": ["bot", "applications.commands"], "permissions": str(BOT_PERMISSIONS)}
        return 200, {
            "id": self.application_id,
            "name": self.application_name,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self.application_flags,
            "owner": self._user(OWNER_USER_ID),
            "team": None,
            "bot": bot,
            "rpc_origins": [],
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "role_connections_verification_url": None,
            "tags": [],
            "install_params": install,
            "integration_types_config": {"0": {"oauth2_install_params": install}, "1": {}},
            "approximate_guild_count": len(self._guilds),
            "is_monetized": False,
            "is_verified": False,
            "is_discoverable": False,
        }

    def _get_gateway(self, req: _Request) -> tuple[int, Any]:
        return 200, {"url": self.gateway_url}

    def _get_gateway_bot(self, req: _Request) -> tuple[int, Any]:
        return 200, {
            "url": self.gateway_url,
            "shards": 1,
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - len(self._identifies),
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
        }

    def _known_guild(self, guild_id: str) -> _Guild:
        guild = self._guilds.get(guild_id)
        if guild is None:
            raise DiscordError(404, 10004, "Unknown Guild")
        return guild

    def _get_guild(self, req: _Request) -> tuple[int, Any]:
        guild = self._known_guild(req.match["guild_id"])
        payload = self._guild_create(guild)
        for key in ("members", "channels", "threads", "presences", "voice_states", "joined_at"):
            payload.pop(key, None)
        return 200, payload

    def _get_guild_channels(self, req: _Request) -> tuple[int, Any]:
        guild = self._known_guild(req.match["guild_id"])
        return 200, [
            self._channel_payload(c["id"])
            for c in self._channels.values()
            if c.get("guild_id") == guild.id and c["type"] not in _THREAD_TYPES
        ]

    def _get_member(self, req: _Request) -> tuple[int, Any]:
        guild = self._known_guild(req.match["guild_id"])
        if req.match["user_id"] not in self._users:
            raise DiscordError(404, 10007, "Unknown Member")
        return 200, self._member(guild.id, req.match["user_id"], with_user=True)

    # -----------------------------------------------------------------------------------
    # Routes: channels and messages

    def _get_channel(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        return 200, self._channel_payload(channel["id"])

    def _get_messages(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        if not self._permissions(channel) & _P["READ_MESSAGE_HISTORY"]:
            return 200, []
        try:
            limit = int(req.query.get("limit", 50))
        except ValueError:
            raise _invalid_form("limit", "NUMBER_TYPE_COERCE", "Value is not int.") from None
        if not 1 <= limit <= 100:
            raise _invalid_form("limit", "NUMBER_TYPE_MAX", "int value should be <= 100 and >= 1.")
        history = self._messages.get(channel["id"], [])
        if "after" in req.query:
            after = int(req.query["after"])
            page = [m for m in history if int(m["id"]) > after][:limit]
        elif "around" in req.query:
            around = int(req.query["around"])
            older = [m for m in history if int(m["id"]) < around]
            rest = [m for m in history if int(m["id"]) >= around]
            half = limit // 2
            page = older[max(0, len(older) - half) :] + rest[: limit - min(half, len(older))]
        else:
            if "before" in req.query:
                before = int(req.query["before"])
                history = [m for m in history if int(m["id"]) < before]
            page = history[-limit:]
        return 200, [_rest_message(m) for m in reversed(page)]

    def _get_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        self._require(channel, "READ_MESSAGE_HISTORY")
        return 200, _rest_message(self._channel_message(channel["id"], req.match["message_id"]))

    def _post_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        in_thread = channel["type"] in _THREAD_TYPES
        self._require(channel, "SEND_MESSAGES_IN_THREADS" if in_thread else "SEND_MESSAGES")
        if req.files:
            self._require(channel, "ATTACH_FILES")
        if in_thread and channel["thread_metadata"]["locked"]:
            raise DiscordError(400, 50083, "Thread is archived")
        payload = req.json if isinstance(req.json, dict) else {}
        reference = payload.get("message_reference")
        if (
            reference
            and reference.get("fail_if_not_exists", True)
            and self._find_message(str(reference.get("message_id"))) is None
        ):
            raise _invalid_form(
                "message_reference", "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "Unknown message"
            )
        fields = self._message_fields(payload, req.files)
        fields.pop("flags", None)
        if in_thread:
            channel["thread_metadata"]["archived"] = False
        message = self._post(
            channel["id"],
            self._user(self.bot_user_id),
            {**fields, "flags": int(payload.get("flags") or 0) & (4 | 4096)},
            payload,
            req.files,
        )
        self._sent_messages.append(copy.deepcopy(_rest_message(message)))
        return 200, _rest_message(message)

    def _edit_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        message = self._channel_message(channel["id"], req.match["message_id"])
        if message["author"]["id"] != self.bot_user_id or "webhook_id" in message:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        payload = req.json if isinstance(req.json, dict) else {}
        fields = self._message_fields(payload, req.files, require_content=False)
        return 200, _rest_message(self._edit(message, fields))

    def _delete_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        message = self._channel_message(channel["id"], req.match["message_id"])
        if message["author"]["id"] != self.bot_user_id:
            self._require(channel, "MANAGE_MESSAGES")
        self._delete(message)
        return 204, None

    def _delete(self, message: dict[str, Any]) -> None:
        history = self._messages[message["channel_id"]]
        history[:] = [m for m in history if m["id"] != message["id"]]
        self._message_index.pop(message["id"], None)
        self._ephemeral.pop(message["id"], None)
        event = {"id": message["id"], "channel_id": message["channel_id"]}
        if message.get("guild_id"):
            event["guild_id"] = message["guild_id"]
        if not message["flags"] & EPHEMERAL:
            self._queue_event("MESSAGE_DELETE", event)

    def _reaction_target(self, req: _Request) -> tuple[dict[str, Any], dict[str, Any], str]:
        channel = self._visible_channel(req.match["channel_id"])
        self._require(channel, "READ_MESSAGE_HISTORY")
        message = self._channel_message(channel["id"], req.match["message_id"])
        emoji = req.match["emoji"]
        if ":" in emoji:
            if not _CUSTOM_EMOJI.match(emoji):
                raise DiscordError(400, 10014, "Unknown Emoji")
        elif emoji.isascii():
            raise DiscordError(400, 10014, "Unknown Emoji")
        return channel, message, emoji

    def _reaction_event(
        self, message: dict[str, Any], emoji: str, *, added: bool
    ) -> dict[str, Any]:
        event: dict[str, Any] = {
            "user_id": self.bot_user_id,
            "channel_id": message["channel_id"],
            "message_id": message["id"],
            "emoji": _emoji_object(emoji),
            "burst": False,
            "type": 0,
        }
        if message.get("guild_id"):
            event["guild_id"] = message["guild_id"]
            if added:
                event["member"] = self._member(
                    message["guild_id"], self.bot_user_id, with_user=True
                )
        if added:
            event["message_author_id"] = message["author"]["id"]
        return event

    def _sync_reactions(self, message: dict[str, Any]) -> None:
        reactions = []
        for emoji in self._reactions.get(message["id"], []):
            reactions.append(
                {
                    "emoji": _emoji_object(emoji),
                    "count": 1,
                    "count_details": {"burst": 0, "normal": 1},
                    "me": True,
                    "me_burst": False,
                    "burst_colors": [],
                    "burst_count": 0,
                }
            )
        if reactions:
            message["reactions"] = reactions
        else:
            message.pop("reactions", None)

    def _add_reaction(self, req: _Request) -> tuple[int, Any]:
        channel, message, emoji = self._reaction_target(req)
        mine = self._reactions[message["id"]]
        if emoji not in mine:
            self._require(channel, "ADD_REACTIONS")
            mine.append(emoji)
            self._sync_reactions(message)
            self._queue_event(
                "MESSAGE_REACTION_ADD", self._reaction_event(message, emoji, added=True)
            )
        return 204, None

    def _remove_reaction(self, req: _Request) -> tuple[int, Any]:
        _, message, emoji = self._reaction_target(req)
        mine = self._reactions[message["id"]]
        if emoji in mine:
            mine.remove(emoji)
            self._sync_reactions(message)
            self._queue_event(
                "MESSAGE_REACTION_REMOVE", self._reaction_event(message, emoji, added=False)
            )
        return 204, None

    def _thread_payload_checks(self, channel: dict[str, Any], payload: Mapping[str, Any]) -> str:
        if channel.get("guild_id") is None or channel["type"] in _THREAD_TYPES:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        name = payload.get("name")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            raise _invalid_form(
                "name", "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 100 in length."
            )
        return name

    def _thread_created(self, thread: dict[str, Any]) -> dict[str, Any]:
        event = {**thread, "newly_created": True}
        self._queue_event("THREAD_CREATE", event)
        return thread

    def _thread_from_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        payload = req.json if isinstance(req.json, dict) else {}
        name = self._thread_payload_checks(channel, payload)
        self._require(channel, "CREATE_PUBLIC_THREADS", "READ_MESSAGE_HISTORY")
        message = self._channel_message(channel["id"], req.match["message_id"])
        if message["id"] in self._channels:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        thread = self._make_thread(
            channel["id"],
            message["id"],
            name,
            type=PUBLIC_THREAD,
            owner_id=self.bot_user_id,
            auto_archive_duration=int(payload.get("auto_archive_duration") or 1440),
        )
        message["thread"] = thread
        message["flags"] |= 1 << 5  # HAS_THREAD
        return 201, self._thread_created(thread)

    def _thread_without_message(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        payload = req.json if isinstance(req.json, dict) else {}
        name = self._thread_payload_checks(channel, payload)
        # Discord's default here is a private thread, as discord.py's create_thread is.
        thread_type = int(payload.get("type") or PRIVATE_THREAD)
        if thread_type not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise _invalid_form("type", "BASE_TYPE_CHOICES", "Value must be one of {11, 12}.")
        self._require(
            channel,
            "CREATE_PUBLIC_THREADS" if thread_type == PUBLIC_THREAD else "CREATE_PRIVATE_THREADS",
        )
        thread = self._make_thread(
            channel["id"],
            self._next_id(),
            name,
            type=thread_type,
            owner_id=self.bot_user_id,
            auto_archive_duration=int(payload.get("auto_archive_duration") or 1440),
        )
        return 201, self._thread_created(thread)

    def _trigger_typing(self, req: _Request) -> tuple[int, Any]:
        channel = self._visible_channel(req.match["channel_id"])
        in_thread = channel["type"] in _THREAD_TYPES
        self._require(channel, "SEND_MESSAGES_IN_THREADS" if in_thread else "SEND_MESSAGES")
        self._typing.append(channel["id"])
        return 204, None

    # -----------------------------------------------------------------------------------
    # Routes: webhooks

    def _webhook_channel(self, channel_id: str) -> dict[str, Any]:
        channel = self._visible_channel(channel_id)
        if channel.get("guild_id") is None or channel["type"] in _THREAD_TYPES:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        self._require(channel, "MANAGE_WEBHOOKS")
        return channel

    def _get_webhooks(self, req: _Request) -> tuple[int, Any]:
        channel = self._webhook_channel(req.match["channel_id"])
        return 200, [
            copy.deepcopy(w) for w in self._webhooks.values() if w["channel_id"] == channel["id"]
        ]

    def _create_webhook(self, req: _Request) -> tuple[int, Any]:
        channel = self._webhook_channel(req.match["channel_id"])
        payload = req.json if isinstance(req.json, dict) else {}
        name = payload.get("name")
        if name is None:
            raise _invalid_form("name", "BASE_TYPE_REQUIRED", "This field is required")
        self._check_webhook_name(name, "name")
        webhook = {
            "id": self._next_id(),
            "type": 1,
            "guild_id": channel["guild_id"],
            "channel_id": channel["id"],
            "name": name,
            "avatar": None,
            "token": secrets.token_urlsafe(51),
            "application_id": self.application_id,
            "user": self._user(self.bot_user_id),
        }
        self._webhooks[webhook["id"]] = webhook
        return 200, copy.deepcopy(webhook)

    def _webhook_by_token(self, webhook_id: str, token: str) -> dict[str, Any]:
        webhook = self._webhooks.get(webhook_id)
        if webhook is None:
            raise DiscordError(404, 10015, "Unknown Webhook")
        if webhook["token"] != token:
            raise DiscordError(401, 50027, "Invalid Webhook Token")
        return webhook

    def _interaction_by_token(self, application_id: str, token: str) -> _Interaction | None:
        if application_id != self.application_id:
            return None
        return self._interactions.get(token)

    def _execute_webhook(self, req: _Request) -> tuple[int, Any]:
        webhook_id, token = req.match["webhook_id"], req.match["webhook_token"]
        payload = req.json if isinstance(req.json, dict) else {}
        interaction = self._interaction_by_token(webhook_id, token)
        if interaction is not None:
            return self._followup(interaction, payload, req.files)
        webhook = self._webhook_by_token(webhook_id, token)
        self._check_webhook_name(payload.get("username"), "username")
        channel_id = webhook["channel_id"]
        thread_id = req.query.get("thread_id")
        if thread_id is not None:
            thread = self._channels.get(thread_id)
            if (
                thread is None
                or thread["type"] not in _THREAD_TYPES
                or thread.get("parent_id") != channel_id
            ):
                raise DiscordError(400, 10003, "Unknown Channel")
            if thread["thread_metadata"]["locked"]:
                raise DiscordError(400, 50083, "Thread is archived")
            thread["thread_metadata"]["archived"] = False
            channel_id = thread_id
        fields = self._message_fields(payload, req.files)
        fields["flags"] = int(fields.get("flags", 0)) & (4 | 4096)
        author = self._webhook_author(webhook["id"], payload.get("username"))
        message = self._post(
            channel_id,
            author,
            fields,
            payload,
            req.files,
            webhook_id=webhook["id"],
            application_id=webhook.get("application_id"),
        )
        self._webhook_executions.append(
            WebhookExecution(
                webhook_id=webhook["id"],
                channel_id=webhook["channel_id"],
                thread_id=thread_id,
                username=payload.get("username"),
                avatar_url=payload.get("avatar_url"),
                content=payload.get("content"),
                components=payload.get("components"),
                embeds=payload.get("embeds"),
                files=tuple(req.files),
                payload=copy.deepcopy(payload),
                message=_rest_message(message),
            )
        )
        if req.query.get("wait", "").lower() in ("1", "true"):
            return 200, _rest_message(message)
        return 204, None

    def _webhook_message(self, req: _Request) -> tuple[dict[str, Any], _Interaction | None]:
        webhook_id, token = req.match["webhook_id"], req.match["webhook_token"]
        message_id = req.match["message_id"]
        interaction = self._interaction_by_token(webhook_id, token)
        if interaction is not None:
            if message_id == "@original":
                message_id = interaction.original_message_id or ""
            message = self._find_message(message_id)
            metadata = (message or {}).get("interaction_metadata") or {}
            if message is None or (
                metadata.get("id") != interaction.id
                and message["id"] != interaction.original_message_id
            ):
                raise DiscordError(404, 10008, "Unknown Message")
            return message, interaction
        webhook = self._webhook_by_token(webhook_id, token)
        message = self._message_index.get(message_id)
        if message is None or message.get("webhook_id") != webhook["id"]:
            raise DiscordError(404, 10008, "Unknown Message")
        thread_id = req.query.get("thread_id")
        if message["channel_id"] != (thread_id or webhook["channel_id"]):
            raise DiscordError(404, 10008, "Unknown Message")
        return message, None

    def _get_webhook_message(self, req: _Request) -> tuple[int, Any]:
        message, _ = self._webhook_message(req)
        return 200, _rest_message(message)

    def _edit_webhook_message(self, req: _Request) -> tuple[int, Any]:
        message, _ = self._webhook_message(req)
        payload = req.json if isinstance(req.json, dict) else {}
        fields = self._message_fields(payload, req.files, require_content=False)
        if req.files:
            self._files[message["id"]] = list(req.files)
        return 200, _rest_message(self._edit(message, fields))

    def _delete_webhook_message(self, req: _Request) -> tuple[int, Any]:
        message, _ = self._webhook_message(req)
        self._delete(message)
        return 204, None

    # -----------------------------------------------------------------------------------
    # Routes: interactions

    def _interaction_callback(self, req: _Request) -> tuple[int, Any]:
        interaction = self._interactions.get(req.match["interaction_token"])
        if interaction is None or interaction.id != req.match["interaction_id"]:
            raise DiscordError(404, 10062, "Unknown interaction")
        if interaction.responded:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        payload = req.json if isinstance(req.json, dict) else {}
        callback_type = int(payload.get("type", 0))
        data = payload.get("data") if isinstance(payload.get("data"), dict) else None
        if callback_type not in (1, 4, 5, 6, 7, 8, 9, 10, 12):
            raise _invalid_form("type", "BASE_TYPE_CHOICES", "Value must be a valid type.")
        if callback_type in (6, 7) and interaction.type != 3:
            raise DiscordError(400, 40004, "Interaction callback type is not valid here")
        message: dict[str, Any] | None = None
        summary: dict[str, Any] = {"id": interaction.id, "type": interaction.type}
        extra = self._interaction_message_extra(interaction)
        author = self._user(self.bot_user_id)
        message_type = 20 if interaction.type == 2 else 0
        if callback_type == CHANNEL_MESSAGE_WITH_SOURCE:
            fields = self._message_fields(data or {}, req.files)
            fields["flags"] = int(fields.get("flags", 0)) & (EPHEMERAL | 4 | 4096)
            message = self._post(
                interaction.channel_id,
                author,
                fields,
                data or {},
                req.files,
                webhook_id=self.application_id,
                application_id=self.application_id,
                type=message_type,
                extra=extra,
            )
        elif callback_type == DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            flags = LOADING | (int((data or {}).get("flags") or 0) & EPHEMERAL)
            message = self._post(
                interaction.channel_id,
                author,
                {"flags": flags},
                {},
                (),
                webhook_id=self.application_id,
                application_id=self.application_id,
                type=message_type,
                extra=extra,
            )
            summary["response_message_loading"] = True
        elif callback_type == UPDATE_MESSAGE and interaction.message_id is not None:
            target = self._find_message(interaction.message_id)
            if target is not None:
                fields = self._message_fields(data or {}, req.files, require_content=False)
                message = self._edit(target, fields)
        if message is not None:
            summary["response_message_id"] = message["id"]
            summary["response_message_ephemeral"] = bool(message["flags"] & EPHEMERAL)
            if callback_type in (4, 5):
                interaction.original_message_id = message["id"]
                if req.files:
                    self._files[message["id"]] = list(req.files)
        elif callback_type == DEFERRED_UPDATE_MESSAGE:
            interaction.original_message_id = interaction.message_id
        if callback_type == UPDATE_MESSAGE:
            interaction.original_message_id = interaction.message_id
        interaction.responded = True
        self._interaction_responses.append(
            InteractionResponse(
                interaction_id=interaction.id,
                token=interaction.token,
                type=callback_type,
                data=copy.deepcopy(data),
                files=tuple(req.files),
                message=None if message is None else _rest_message(message),
            )
        )
        if req.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        resource: dict[str, Any] = {"type": callback_type}
        if message is not None:
            resource["message"] = _rest_message(message)
        return 200, {"interaction": summary, "resource": resource}

    def _followup(
        self, interaction: _Interaction, payload: dict[str, Any], files: Sequence[UploadedFile]
    ) -> tuple[int, Any]:
        if not interaction.responded:
            raise DiscordError(404, 10015, "Unknown Webhook")
        fields = self._message_fields(payload, files)
        original = self._find_message(interaction.original_message_id or "")
        if original is not None and original["flags"] & LOADING:
            # Discord turns the first follow-up after a "thinking" defer into an edit of
            # that message, whose ephemerality was fixed by the defer.
            fields.pop("flags", None)
            message = self._edit(original, fields)
        else:
            fields["flags"] = int(fields.get("flags", 0)) & (EPHEMERAL | 4 | 4096)
            message = self._post(
                interaction.channel_id,
                self._user(self.bot_user_id),
                fields,
                payload,
                files,
                webhook_id=self.application_id,
                application_id=self.application_id,
                extra=self._interaction_message_extra(interaction),
            )
        if files:
            self._files[message["id"]] = list(files)
        self._followups.append(
            Followup(
                interaction_id=interaction.id,
                token=interaction.token,
                payload=copy.deepcopy(payload),
                files=tuple(files),
                message=_rest_message(message),
            )
        )
        return 200, _rest_message(message)

    # -----------------------------------------------------------------------------------
    # Routes: application commands

    def _command_scope(self, req: _Request) -> str | None:
        if req.match["application_id"] != self.application_id:
            raise DiscordError(403, 50001, "Missing Access")
        guild_id = req.match.get("guild_id")
        if guild_id is not None:
            self._known_guild(guild_id)
        return guild_id

    def _get_commands(self, req: _Request) -> tuple[int, Any]:
        return 200, copy.deepcopy(self._commands.get(self._command_scope(req), []))

    def _put_commands(self, req: _Request) -> tuple[int, Any]:
        guild_id = self._command_scope(req)
        if not isinstance(req.json, list):
            raise _invalid_form("_root", "LIST_TYPE_CONVERT", "Only iterables may be used.")
        if len(req.json) > 100:
            raise _invalid_form("_root", "BASE_TYPE_MAX_LENGTH", "Must be 100 or fewer in length.")
        existing = {(c["name"], c.get("type", 1)): c for c in self._commands.get(guild_id, [])}
        commands = []
        for index, body in enumerate(req.json):
            name = body.get("name")
            kind = body.get("type", 1)
            if not isinstance(name, str) or not re.fullmatch(r"[-_\w]{1,32}", name):
                raise _invalid_form(
                    f"{index}.name", "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            if kind == 1 and not body.get("description"):
                raise _invalid_form(
                    f"{index}.description", "BASE_TYPE_REQUIRED", "This field is required"
                )
            old = existing.get((name, kind))
            command = {
                "id": old["id"] if old is not None else self._next_id(),
                "application_id": self.application_id,
                "version": self._next_id(),
                "default_member_permissions": None,
                "type": kind,
                "nsfw": False,
                "description": "",
                "dm_permission": True,
                "contexts": None,
                "integration_types": [0],
                **copy.deepcopy(body),
            }
            if guild_id is not None:
                command["guild_id"] = guild_id
            commands.append(command)
        self._commands[guild_id] = commands
        return 200, copy.deepcopy(commands)


def _rest_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stored message as the REST API answers it (no ``member``)."""
    rest = copy.deepcopy(message)
    rest.pop("member", None)
    for user in rest.get("mentions", []):
        user.pop("member", None)
    return rest


def _options(
    options: Mapping[str, Any] | Sequence[Mapping[str, Any]] | None,
) -> list[dict[str, Any]]:
    """Slash-command options as Discord sends them, from ``{name: value}`` or as given."""
    if options is None:
        return []
    if isinstance(options, Mapping):
        result = []
        for name, value in options.items():
            if isinstance(value, bool):
                kind = 5
            elif isinstance(value, int):
                kind = 4
            elif isinstance(value, float):
                kind = 10
            else:
                kind, value = 3, str(value)
            result.append({"name": name, "type": kind, "value": value})
        return result
    return [dict(option) for option in options]


def _emoji_object(emoji: str) -> dict[str, Any]:
    """A reaction's emoji object from its URL form: ``"👀"``, ``"name:id"``, ``"a:name:id"``."""
    if ":" not in emoji:
        return {"id": None, "name": emoji}
    parts = emoji.split(":")
    result: dict[str, Any] = {"id": parts[-1], "name": parts[-2]}
    if len(parts) == 3 and parts[0] == "a":
        result["animated"] = True
    return result


def _guess_type(filename: str) -> str | None:
    import mimetypes

    return mimetypes.guess_type(filename)[0]


async def _read_body(request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
    """The JSON of a request (a multipart's ``payload_json``) and its uploaded files."""
    if not request.can_read_body:
        return None, ()
    if request.content_type == "multipart/form-data":
        form = await request.post()
        body: Any = None
        files: list[tuple[int, UploadedFile]] = []
        for name, value in form.items():
            if isinstance(value, web.FileField):
                index = re.search(r"\d+", name)
                files.append(
                    (
                        int(index.group()) if index else len(files),
                        UploadedFile(value.filename, value.file.read(), value.content_type),
                    )
                )
            elif name == "payload_json":
                text = value if isinstance(value, str) else bytes(value).decode()
                with suppress(ValueError):
                    body = json.loads(text)
        return body, tuple(upload for _, upload in sorted(files, key=lambda f: f[0]))
    raw = await request.read()
    if not raw:
        return None, ()
    try:
        return json.loads(raw), ()
    except ValueError:
        return raw.decode(errors="replace"), ()
