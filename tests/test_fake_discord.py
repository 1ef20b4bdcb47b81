"""The fake Discord (REST API and Gateway) proven against the real discord.py client, so
tests of the Discord adapter built on it test what Discord would do."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import discord
import pytest
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route
from fakes.discord_server import (
    BOT_PERMISSIONS,
    EPHEMERAL,
    PERMISSIONS,
    FakeDiscordServer,
)

GUILD = "1200000000000000001"
GENERAL = "1200000000000000010"
LOCKED = "1200000000000000011"
THREAD = "1200000000000000020"
DM_CHANNEL = "1200000000000000030"
ALICE = "1300000000000000001"
BOB = "1300000000000000002"

INTENTS = discord.Intents(guilds=True, guild_messages=True, message_content=True, dm_messages=True)
WITHIN = 5.0


class Bot(discord.Client):
    """A plain discord.py client that queues what it receives, for tests to await."""

    def __init__(self, intents: discord.Intents = INTENTS) -> None:
        super().__init__(intents=intents, guild_ready_timeout=0.05)
        self.received: asyncio.Queue[discord.Message] = asyncio.Queue()
        self.resumed = asyncio.Event()
        self.threads_created: asyncio.Queue[discord.Thread] = asyncio.Queue()

    async def on_message(self, message: discord.Message) -> None:
        await self.received.put(message)

    async def on_resumed(self) -> None:
        self.resumed.set()

    async def on_thread_create(self, thread: discord.Thread) -> None:
        await self.threads_created.put(thread)

    async def next_message(
        self, predicate: Callable[[discord.Message], bool] = lambda m: True
    ) -> discord.Message:
        """The next message received that satisfies ``predicate``."""
        async with asyncio.timeout(WITHIN):
            while True:
                message = await self.received.get()
                if predicate(message):
                    return message


@pytest.fixture
async def discord_fake() -> AsyncIterator[FakeDiscordServer]:
    async with FakeDiscordServer() as fake:
        fake.add_guild(GUILD, "corral-test")
        fake.add_channel(GUILD, GENERAL, "general", topic="chatter")
        fake.add_channel(GUILD, LOCKED, "locked")
        fake.deny_webhooks(LOCKED)
        fake.add_thread(GENERAL, THREAD, "ongoing work")
        fake.add_user(ALICE, "alice", "Alice Liddell")
        fake.add_user(BOB, "bob")
        fake.add_dm(DM_CHANNEL, ALICE)
        yield fake


@pytest.fixture
def pointed(discord_fake: FakeDiscordServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """discord.py's REST base and default gateway on the fake, restored afterwards."""
    monkeypatch.setattr(Route, "BASE", discord_fake.api_url)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(discord_fake.gateway_url))


async def _start(fake: FakeDiscordServer, bot: Bot) -> asyncio.Task[None]:
    """Log in, connect, and wait for READY (or the connection's failure)."""
    await bot.login(fake.token)
    connecting = asyncio.create_task(bot.connect())
    ready = asyncio.create_task(bot.wait_until_ready())
    done, _ = await asyncio.wait(
        {connecting, ready}, timeout=WITHIN, return_when=asyncio.FIRST_COMPLETED
    )
    if ready not in done:
        ready.cancel()
        if connecting in done:
            connecting.result()
        raise TimeoutError("discord.py never became ready")
    return connecting


async def _stop(bot: Bot, connecting: asyncio.Task[None]) -> None:
    await bot.close()
    async with asyncio.timeout(WITHIN):
        await connecting


@pytest.fixture
async def client(discord_fake: FakeDiscordServer, pointed: None) -> AsyncIterator[Bot]:
    bot = Bot()
    connecting = await _start(discord_fake, bot)
    yield bot
    await _stop(bot, connecting)


def _general(client: Bot) -> discord.TextChannel:
    channel = client.get_channel(int(GENERAL))
    assert isinstance(channel, discord.TextChannel)
    return channel


# ---------------------------------------------------------------------------------------
# Login, READY and the cache


async def test_ready_fills_the_cache_with_guilds_channels_and_threads(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    assert client.user is not None
    assert str(client.user.id) == discord_fake.bot_user_id and client.user.bot
    assert str(client.application_id) == discord_fake.application_id
    assert client.application_flags.gateway_message_content

    guild = client.get_guild(int(GUILD))
    assert guild is not None and guild.name == "corral-test" and not guild.unavailable
    assert {c.name for c in guild.text_channels} == {"general", "locked"}
    assert _general(client).topic == "chatter"
    thread = guild.get_thread(int(THREAD))
    assert thread is not None and thread.parent_id == int(GENERAL) and thread.name == "ongoing work"
    assert guild.me is not None and guild.me.id == client.user.id

    # The bot's role and the channel overwrite agree with what the REST side enforces.
    assert _general(client).permissions_for(guild.me).manage_webhooks
    locked = guild.get_channel(int(LOCKED))
    assert locked is not None and not locked.permissions_for(guild.me).manage_webhooks
    assert locked.permissions_for(guild.me).send_messages

    [identify] = discord_fake.identifies
    assert identify["token"] == discord_fake.token
    assert identify["intents"] == INTENTS.value
    assert discord_fake.connected == 1
    assert [c.status for c in discord_fake.calls_to("GET", "/users/@me")] == [200]
    assert [c.status for c in discord_fake.calls_to("GET", "/oauth2/applications/@me")] == [200]


async def test_rest_lookups_parse(discord_fake: FakeDiscordServer, client: Bot) -> None:
    alice = await client.fetch_user(int(ALICE))
    assert alice.name == "alice" and alice.display_name == "Alice Liddell"
    channel = await client.fetch_channel(int(GENERAL))
    assert isinstance(channel, discord.TextChannel) and channel.guild.id == int(GUILD)
    thread = await client.fetch_channel(int(THREAD))
    assert isinstance(thread, discord.Thread) and thread.parent_id == int(GENERAL)
    guilds = [g async for g in client.fetch_guilds()]
    assert [g.id for g in guilds] == [int(GUILD)]
    partial = await client.http.get_guilds(200)
    assert int(partial[0]["permissions"]) == BOT_PERMISSIONS
    app = await client.application_info()
    assert app.flags.gateway_message_content and app.owner.name == "owner"
    gateway = await client.http.get_bot_gateway()
    assert gateway[1] == discord_fake.gateway_url


async def test_wrong_token_is_refused_like_discord(
    discord_fake: FakeDiscordServer, pointed: None
) -> None:
    bot = Bot()
    with pytest.raises(discord.LoginFailure):
        await bot.login("not-the-token")
    await bot.close()
    assert discord_fake.calls_to("GET", "/users/@me")[0].status == 401


async def test_gateway_closes_4004_on_a_bad_token(
    discord_fake: FakeDiscordServer, pointed: None
) -> None:
    bot = Bot()
    await bot.login(discord_fake.token)
    discord_fake.token = "rotated"
    with pytest.raises(discord.ConnectionClosed) as info:
        async with asyncio.timeout(WITHIN):
            await bot.connect(reconnect=False)
    assert info.value.code == 4004
    await bot.close()


async def test_message_content_intent_must_be_enabled_for_the_application(
    discord_fake: FakeDiscordServer, pointed: None
) -> None:
    discord_fake.application_flags = 0
    bot = Bot()
    await bot.login(discord_fake.token)
    with pytest.raises(discord.PrivilegedIntentsRequired):
        async with asyncio.timeout(WITHIN):
            await bot.connect()
    await bot.close()


# ---------------------------------------------------------------------------------------
# Gateway events


async def test_message_create_reaches_on_message_parsed(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    payload = discord_fake.message_create(
        GENERAL, ALICE, f"<@{discord_fake.bot_user_id}> can you look at the build?"
    )
    sent = await discord_fake.dispatch("MESSAGE_CREATE", payload)
    assert sent == 1

    message = await client.next_message()
    assert message.id == int(payload["id"])
    assert message.content.endswith("can you look at the build?")
    assert isinstance(message.author, discord.Member)
    assert message.author.id == int(ALICE) and message.author.display_name == "Alice Liddell"
    assert client.user in message.mentions
    assert message.channel.id == int(GENERAL) and message.guild is not None
    assert message.type is discord.MessageType.default and not message.author.bot

    reply = await discord_fake.post_message(
        THREAD, BOB, "replying", message_reference=payload["id"], mentions=[ALICE]
    )
    answer = await client.next_message()
    assert answer.id == int(reply["id"]) and answer.type is discord.MessageType.reply
    assert isinstance(answer.channel, discord.Thread) and answer.channel.id == int(THREAD)
    assert answer.reference is not None and answer.reference.message_id == message.id
    assert [u.id for u in answer.mentions] == [int(ALICE)]

    # Both are stored: history and fetch see them.
    fetched = await _general(client).fetch_message(message.id)
    assert fetched.content == message.content
    assert [m["id"] for m in discord_fake.messages(THREAD)] == [reply["id"]]


async def test_direct_messages(discord_fake: FakeDiscordServer, client: Bot) -> None:
    await discord_fake.post_message(DM_CHANNEL, ALICE, "psst", guild=False)
    message = await client.next_message()
    assert message.guild is None and isinstance(message.channel, discord.DMChannel)
    assert message.content == "psst" and message.author.id == int(ALICE)

    alice = await client.fetch_user(int(ALICE))
    sent = await alice.send("hello back")
    assert sent.channel.id == int(DM_CHANNEL)
    assert discord_fake.messages(DM_CHANNEL)[-1]["content"] == "hello back"


async def test_content_is_blank_without_the_message_content_intent(
    discord_fake: FakeDiscordServer, pointed: None
) -> None:
    bot = Bot(discord.Intents(guilds=True, guild_messages=True))
    connecting = await _start(discord_fake, bot)
    try:
        await discord_fake.post_message(GENERAL, ALICE, "secret plans")
        plain = await bot.next_message()
        assert plain.content == ""
        await discord_fake.post_message(GENERAL, ALICE, f"<@{discord_fake.bot_user_id}> hi")
        mentioned = await bot.next_message()
        assert mentioned.content.endswith(" hi")
    finally:
        await _stop(bot, connecting)


async def test_reconnect_resumes_and_replays_missed_events(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    assert await discord_fake.disconnect() == 1
    # Dispatched while the socket may be down: kept for the session and replayed.
    payload = await discord_fake.post_message(GENERAL, ALICE, "while you were away")
    message = await client.next_message()
    assert message.id == int(payload["id"])
    async with asyncio.timeout(WITHIN):
        await client.resumed.wait()
    [resume] = discord_fake.resumes
    assert resume["token"] == discord_fake.token
    assert len(discord_fake.identifies) == 1
    await discord_fake.wait_connected()

    # And the resumed session carries new events.
    await discord_fake.post_message(GENERAL, ALICE, "welcome back")
    assert (await client.next_message()).content == "welcome back"


# ---------------------------------------------------------------------------------------
# Messages, reactions, threads


async def test_channel_send_is_recorded_and_echoed(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    channel = _general(client)
    sent = await channel.send(
        "build is green", file=discord.File(io.BytesIO(b"log line\n"), "build.log")
    )
    [stored] = discord_fake.sent_messages
    assert stored["id"] == str(sent.id) and stored["content"] == "build is green"
    assert [f.content for f in discord_fake.uploaded_files(sent.id)] == [b"log line\n"]
    assert sent.attachments[0].filename == "build.log"
    assert await sent.attachments[0].read() == b"log line\n"
    call = discord_fake.calls_to("POST", "/channels/{channel_id}/messages")[0]
    assert call.json["content"] == "build is green" and call.files[0].filename == "build.log"

    # Like Discord, the gateway delivers the bot's own message back to it.
    echoed = await client.next_message(lambda m: m.id == sent.id)
    assert echoed.author == client.user

    reply = await sent.reply("and deployed")
    assert reply.reference is not None and reply.reference.message_id == sent.id
    assert reply.type is discord.MessageType.reply

    edited = await sent.edit(content="build is green (edited)")
    assert edited.edited_at is not None
    assert (discord_fake.message(sent.id) or {})["content"] == "build is green (edited)"

    with pytest.raises(discord.HTTPException) as info:
        await channel.send("x" * 2001)
    assert info.value.code == 50035


async def test_history_is_newest_first_and_pages(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    ids = [discord_fake.add_message(GENERAL, ALICE, f"m{i}")["id"] for i in range(5)]
    channel = _general(client)
    assert [m.content async for m in channel.history(limit=3)] == ["m4", "m3", "m2"]
    assert [m.content async for m in channel.history(limit=10, oldest_first=True)] == [
        f"m{i}" for i in range(5)
    ]
    after = [m.content async for m in channel.history(after=discord.Object(int(ids[1])))]
    assert after == ["m2", "m3", "m4"]
    before = [m.content async for m in channel.history(before=discord.Object(int(ids[2])))]
    assert before == ["m1", "m0"]


async def test_reactions(discord_fake: FakeDiscordServer, client: Bot) -> None:
    payload = await discord_fake.post_message(GENERAL, ALICE, "deploy please")
    message = await client.next_message()
    await message.add_reaction("👀")
    await message.add_reaction("✅")
    assert discord_fake.reactions(payload["id"]) == ["👀", "✅"]
    await message.remove_reaction("👀", client.user)  # type: ignore[arg-type]
    assert discord_fake.reactions(payload["id"]) == ["✅"]
    with pytest.raises(discord.HTTPException) as info:
        await message.add_reaction(":eyes:")
    assert info.value.code == 10014
    paths = [c.path for c in discord_fake.calls_to("PUT", "/channels/*/reactions/*/@me")]
    assert paths[0].endswith("/reactions/👀/@me")


async def test_thread_from_a_message_has_the_message_id(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    channel = _general(client)
    root = await channel.send("root of the discussion")
    thread = await root.create_thread(name="discussion")
    assert thread.id == root.id and thread.parent_id == channel.id
    assert thread.type is discord.ChannelType.public_thread
    created = await asyncio.wait_for(client.threads_created.get(), WITHIN)
    assert created.id == root.id
    assert client.get_channel(root.id) is not None  # THREAD_CREATE reached the cache
    assert discord_fake.channel(root.id)["type"] == 11

    await thread.send("inside")
    assert [m["content"] for m in discord_fake.messages(root.id)] == ["inside"]

    with pytest.raises(discord.HTTPException) as info:
        await root.create_thread(name="again")
    assert info.value.code == 160004

    loose = await channel.create_thread(name="side", type=discord.ChannelType.public_thread)
    assert loose.parent_id == channel.id and loose.id != root.id


# ---------------------------------------------------------------------------------------
# Webhooks


async def test_webhook_created_and_executed_with_a_persona_in_a_thread(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    channel = _general(client)
    webhook = await channel.create_webhook(name="corral")
    assert webhook.type is discord.WebhookType.incoming and webhook.token
    assert webhook.user is not None and webhook.user.id == client.user.id  # type: ignore[union-attr]
    assert [w.id for w in await channel.webhooks()] == [webhook.id]

    sent = await webhook.send(
        "on it",
        username="Builder",
        avatar_url="https://example.com/builder.png",
        thread=discord.Object(int(THREAD)),
        wait=True,
    )
    assert sent.author.name == "Builder" and sent.webhook_id == webhook.id
    assert sent.channel.id == int(THREAD)
    [execution] = discord_fake.webhook_executions
    assert execution.username == "Builder"
    assert execution.avatar_url == "https://example.com/builder.png"
    assert execution.thread_id == THREAD and execution.content == "on it"
    stored = discord_fake.messages(THREAD)[-1]
    assert stored["webhook_id"] == str(webhook.id) and stored["author"]["bot"]
    assert stored["application_id"] == discord_fake.application_id

    echoed = await client.next_message(lambda m: m.id == sent.id)
    assert echoed.webhook_id == webhook.id

    edited = await webhook.edit_message(sent.id, content="done", thread=discord.Object(int(THREAD)))
    assert edited.content == "done"

    with pytest.raises(discord.HTTPException) as info:
        await webhook.send("x", username="Discord Bot")
    assert info.value.code == 50035


async def test_permissions_are_the_bot_roles_on_both_sides(
    discord_fake: FakeDiscordServer, pointed: None
) -> None:
    discord_fake.set_permissions(GUILD, PERMISSIONS["VIEW_CHANNEL"])
    bot = Bot()
    connecting = await _start(discord_fake, bot)
    try:
        channel = _general(bot)
        assert channel.guild.me is not None
        seen = channel.permissions_for(channel.guild.me)
        assert seen.read_messages and not seen.send_messages
        with pytest.raises(discord.Forbidden) as info:
            await channel.send("not allowed")
        assert info.value.code == 50013
        assert discord_fake.sent_messages == []
    finally:
        await _stop(bot, connecting)


async def test_webhooks_denied_answer_missing_permissions(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    locked = client.get_channel(int(LOCKED))
    assert isinstance(locked, discord.TextChannel)
    with pytest.raises(discord.Forbidden) as info:
        await locked.create_webhook(name="corral")
    assert info.value.code == 50013
    with pytest.raises(discord.Forbidden):
        await locked.webhooks()
    assert discord_fake.calls_to("POST", f"/channels/{LOCKED}/webhooks")[0].status == 403


# ---------------------------------------------------------------------------------------
# Rate limits and unknown routes


async def test_discord_py_retries_a_429(discord_fake: FakeDiscordServer, client: Bot) -> None:
    discord_fake.rate_limit("POST", "/channels/{channel_id}/messages", times=2, retry_after=0.01)
    sent = await _general(client).send("patience")
    assert sent.content == "patience"
    calls = discord_fake.calls_to("POST", f"/channels/{GENERAL}/messages")
    assert [c.status for c in calls] == [429, 429, 200]
    assert calls[0].response == {
        "message": "You are being rate limited.",
        "retry_after": 0.01,
        "global": False,
    }

    webhook = await _general(client).create_webhook(name="corral")
    discord_fake.rate_limit("POST", "/webhooks/*", retry_after=0.01, is_global=True)
    await webhook.send("also patient", wait=True)
    assert [c.status for c in discord_fake.calls_to("POST", "/webhooks/{id}/{token}")] == [
        429,
        200,
    ]


async def test_unknown_routes_answer_404_and_are_recorded(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    with pytest.raises(discord.NotFound):
        await client.http.request(Route("GET", "/guilds/{guild_id}/audit-logs", guild_id=GUILD))
    [unknown] = discord_fake.unknown_calls
    assert unknown.path == f"/guilds/{GUILD}/audit-logs"
    assert unknown.response == {"message": "404: Not Found", "code": 0}


async def test_scripted_failure_then_recovery(discord_fake: FakeDiscordServer, client: Bot) -> None:
    discord_fake.fail("POST", f"/channels/{GENERAL}/messages", 403, 50013, "Missing Permissions")
    with pytest.raises(discord.Forbidden) as info:
        await _general(client).send("doomed")
    assert info.value.code == 50013
    assert (await _general(client).send("fine now")).content == "fine now"


# ---------------------------------------------------------------------------------------
# Application commands and components


async def test_app_command_synced_and_invoked(discord_fake: FakeDiscordServer, client: Bot) -> None:
    tree = app_commands.CommandTree(client)
    corral = app_commands.Group(name="corral", description="Talk to the team")
    invoked: asyncio.Future[tuple[str, int]] = asyncio.get_running_loop().create_future()

    @corral.command(name="status", description="Show what the team is doing")
    async def status(interaction: discord.Interaction, agent: str) -> None:
        await interaction.response.send_message(f"{agent} is busy", ephemeral=True)
        await interaction.followup.send("details follow", ephemeral=True)
        await interaction.edit_original_response(content=f"{agent} is idle")
        original = await interaction.original_response()
        invoked.set_result((original.content, interaction.user.id))

    tree.add_command(corral, guild=discord.Object(int(GUILD)))
    synced = await tree.sync(guild=discord.Object(int(GUILD)))
    assert [c.name for c in synced] == ["corral"]
    [command] = discord_fake.synced_commands[GUILD]
    assert command["options"][0]["name"] == "status" and command["options"][0]["type"] == 1
    assert discord_fake.calls_to("PUT", "/applications/{app}/guilds/{guild}/commands")

    payload = discord_fake.interaction_create_command(
        "corral", "status", {"agent": "builder"}, user_id=ALICE, channel_id=GENERAL
    )
    assert payload["data"]["guild_id"] == GUILD and payload["data"]["id"] == command["id"]
    await discord_fake.dispatch("INTERACTION_CREATE", payload)
    content, user_id = await asyncio.wait_for(invoked, WITHIN)
    assert content == "builder is idle" and user_id == int(ALICE)

    [response] = discord_fake.interaction_responses
    assert response.type == 4 and response.flags == EPHEMERAL and response.ephemeral
    assert response.data is not None and response.data["content"] == "builder is busy"
    [followup] = discord_fake.followups
    assert followup.ephemeral and followup.message["content"] == "details follow"
    # Ephemeral messages stay out of the channel's history.
    assert discord_fake.messages(GENERAL) == []


async def test_deferred_command_then_followup_edits_the_thinking_message(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    tree = app_commands.CommandTree(client)
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    @tree.command(name="ask", description="Ask the team")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.defer(thinking=True)
        message = await interaction.followup.send(f"answer to {question}", wait=True)
        done.set_result(message.id)

    await tree.sync()
    assert [c["name"] for c in discord_fake.synced_commands[None]] == ["ask"]
    payload = discord_fake.interaction_create_command(
        "ask", options={"question": "why"}, user_id=ALICE, channel_id=GENERAL
    )
    await discord_fake.dispatch("INTERACTION_CREATE", payload)
    message_id = await asyncio.wait_for(done, WITHIN)
    [response] = discord_fake.interaction_responses
    assert response.type == 5 and response.message is not None
    assert response.message["id"] == str(message_id)
    stored = discord_fake.message(message_id)
    assert stored is not None and stored["content"] == "answer to why"
    assert stored["flags"] & 128 == 0  # no longer "thinking"


async def test_component_click_reaches_a_dynamic_item(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    clicked: asyncio.Future[tuple[int, int]] = asyncio.get_running_loop().create_future()

    class Approve(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"approve:(?P<id>\d+)"):
        def __init__(self, task_id: int) -> None:
            super().__init__(discord.ui.Button(label="Approve", custom_id=f"approve:{task_id}"))
            self.task_id = task_id

        @classmethod
        async def from_custom_id(
            cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: Any
        ) -> Approve:
            return cls(int(match["id"]))

        async def callback(self, interaction: discord.Interaction) -> None:
            await interaction.response.defer()
            clicked.set_result((self.task_id, interaction.user.id))

    client.add_dynamic_items(Approve)
    view = discord.ui.View(timeout=None)
    view.add_item(Approve(42))
    sent = await _general(client).send("Approve task 42?", view=view)
    [row] = (discord_fake.message(sent.id) or {})["components"]
    assert row["components"][0]["custom_id"] == "approve:42"

    payload = discord_fake.interaction_create_component(
        "approve:42", user_id=BOB, channel_id=GENERAL, message=sent.id
    )
    await discord_fake.dispatch("INTERACTION_CREATE", payload)
    assert await asyncio.wait_for(clicked, WITHIN) == (42, int(BOB))
    await discord_fake.wait_until(lambda: discord_fake.interaction_responses)
    assert [r.type for r in discord_fake.interaction_responses] == [6]


# ---------------------------------------------------------------------------------------
# Snowflakes


async def test_ids_are_increasing_snowflakes_of_now(
    discord_fake: FakeDiscordServer, client: Bot
) -> None:
    first = discord_fake.add_message(GENERAL, ALICE, "one")
    second = discord_fake.add_message(GENERAL, ALICE, "two")
    assert int(second["id"]) > int(first["id"])
    made = discord.utils.snowflake_time(int(first["id"]))
    assert abs(datetime.now(UTC) - made) < timedelta(minutes=1)
    message = await _general(client).fetch_message(int(first["id"]))
    assert message.created_at == made
    assert message.created_at == datetime.fromisoformat(first["timestamp"])
    assert PERMISSIONS["MANAGE_WEBHOOKS"] & BOT_PERMISSIONS
