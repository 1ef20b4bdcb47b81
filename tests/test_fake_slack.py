"""The fake Slack (Web API server and signed-request builders) proven against the real
slack_sdk and slack_bolt, so end-to-end tests built on them test what Slack would do."""

from __future__ import annotations

import asyncio
import json
import random
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from fakes import slack_events
from fakes.slack_server import BOT_SCOPES, FakeSlackServer
from ruamel.yaml import YAML
from slack_bolt.app.async_app import AsyncApp
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

GENERAL = "C0GENERAL1"
ALICE = slack_events.USER_ID
TS = re.compile(r"^\d{10}\.\d{6}$")
MANIFEST = Path(__file__).resolve().parents[1] / "deploy" / "slack" / "manifest.yaml"


@pytest.fixture
async def server() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer() as server:
        server.add_channel(GENERAL, "general")
        server.add_user(ALICE, "alice", "Alice Liddell")
        yield server


@pytest.fixture
def client(server: FakeSlackServer) -> AsyncWebClient:
    return AsyncWebClient(token=server.bot_token, base_url=server.api_url)


async def _error(call: Any) -> SlackApiError:
    with pytest.raises(SlackApiError) as info:
        await call
    return info.value


# ---------------------------------------------------------------------------------------
# Web API through slack_sdk


async def test_post_in_thread_echoes_persona_and_shows_in_replies(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    root = server.add_message(GENERAL, "1700000000.000100", "the login page 500s", user=ALICE)
    response = await client.chat_postMessage(
        channel=GENERAL,
        thread_ts=root["ts"],
        text="Looking into it.",
        username="Beaver",
        icon_emoji=":beaver:",
    )
    assert response["channel"] == GENERAL
    assert TS.match(response["ts"])
    assert response["message"]["username"] == "Beaver"
    assert response["message"]["icons"] == {"emoji": ":beaver:"}
    assert response["message"]["bot_id"] == server.bot_id
    assert response["message"]["thread_ts"] == root["ts"]

    replies = await client.conversations_replies(channel=GENERAL, ts=root["ts"])
    assert [m["text"] for m in replies["messages"]] == ["the login page 500s", "Looking into it."]
    assert replies["has_more"] is False
    assert replies["messages"][0]["reply_count"] == 1
    assert replies["messages"][1]["parent_user_id"] == ALICE

    [call] = server.calls_to("chat.postMessage")
    assert call.params["username"] == "Beaver"
    assert call.headers["authorization"] == f"Bearer {server.bot_token}"
    assert call.token == server.bot_token
    assert call.headers["content-type"].startswith("application/json")


async def test_posted_ts_are_unique_increasing_and_after_seeded_messages(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    server.add_message(GENERAL, "9999999999.000001", "from the future", user=ALICE)
    stamps = [(await client.chat_postMessage(channel=GENERAL, text=str(i)))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=Decimal)
    assert len(set(stamps)) == 5
    assert Decimal(stamps[0]) > Decimal("9999999999.000001")


async def test_lookups(server: FakeSlackServer, client: AsyncWebClient) -> None:
    auth = await client.auth_test()
    assert (auth["user_id"], auth["bot_id"], auth["team_id"]) == (
        slack_events.BOT_USER_ID,
        slack_events.BOT_ID,
        slack_events.TEAM_ID,
    )
    assert "chat:write.customize" in auth.headers["X-OAuth-Scopes"]

    user = (await client.users_info(user=ALICE))["user"]
    assert (user["name"], user["real_name"], user["profile"]["real_name"]) == (
        "alice",
        "Alice Liddell",
        "Alice Liddell",
    )
    assert (await _error(client.users_info(user="U0NOBODY"))).response["error"] == "user_not_found"

    info = (await client.conversations_info(channel=GENERAL))["channel"]
    assert (info["id"], info["name"], info["is_im"]) == (GENERAL, "general", False)
    server.add_channel("D0DM000001", is_im=True, user=ALICE)
    dm = (await client.conversations_info(channel="D0DM000001"))["channel"]
    assert (dm["is_im"], dm["user"]) == (True, ALICE)


async def test_conversations_list_paginates(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    for i in range(4):
        server.add_channel(f"C0TEAM000{i}", f"team-{i}")
    server.add_channel("G0SECRET01", "secret", is_private=True)
    # slack_sdk pages by following next_cursor, reusing one response object.
    pages = [dict(page.data) async for page in await client.conversations_list(limit=2)]
    assert len(pages) == 3
    assert pages[0]["response_metadata"]["next_cursor"]
    assert pages[-1]["response_metadata"]["next_cursor"] == ""
    names = [c["name"] for page in pages for c in page["channels"]]
    assert names == ["general", "team-0", "team-1", "team-2", "team-3"]
    both = await client.conversations_list(types="public_channel,private_channel", limit=100)
    assert "secret" in [c["name"] for c in both["channels"]]


async def test_slack_limits_are_enforced(server: FakeSlackServer, client: AsyncWebClient) -> None:
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x"}}
    long_section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    cases = {
        "msg_too_long": client.chat_postMessage(channel=GENERAL, text="x" * 40_001),
        "invalid_blocks": client.chat_postMessage(channel=GENERAL, text="t", blocks=[section] * 51),
        "channel_not_found": client.chat_postMessage(channel="C0NOWHERE", text="hi"),
    }
    for error, call in cases.items():
        assert (await _error(call)).response["error"] == error
    with pytest.warns(UserWarning, match="`text` argument is missing"):
        assert (await _error(client.chat_postMessage(channel=GENERAL))).response["error"] == (
            "no_text"
        )
    too_long = await _error(
        client.chat_postMessage(channel=GENERAL, text="t", blocks=[long_section])
    )
    assert too_long.response["errors"] == [
        "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"
    ]
    ok = await client.chat_postMessage(channel=GENERAL, text="x" * 40_000, blocks=[section] * 50)
    assert ok["ok"]

    server.add_channel("C0NOTJOINED", "elsewhere", is_member=False)
    outside = client.chat_postMessage(channel="C0NOTJOINED", text="hi")
    assert (await _error(outside)).response["error"] == "not_in_channel"

    bad = AsyncWebClient(token="xoxp-a-user-token", base_url=server.api_url)
    assert (await _error(bad.chat_postMessage(channel=GENERAL, text="hi"))).response[
        "error"
    ] == "invalid_auth"
    anonymous = AsyncWebClient(base_url=server.api_url)
    assert (await _error(anonymous.auth_test())).response["error"] == "not_authed"

    server.scopes.discard("reactions:write")
    missing = await _error(client.reactions_add(channel=GENERAL, name="eyes", timestamp="1.0"))
    assert (missing.response["error"], missing.response["needed"]) == (
        "missing_scope",
        "reactions:write",
    )


async def test_rate_limit_is_retried_after_retry_after(
    server: FakeSlackServer, client: AsyncWebClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a retry handler the 429 reaches the caller, as Slack sends it.
    server.rate_limit("chat.postMessage", times=1, retry_after=1)
    error = await _error(client.chat_postMessage(channel=GENERAL, text="hi"))
    assert error.response.status_code == 429
    assert error.response.headers["Retry-After"] == "1"
    assert error.response["error"] == "ratelimited"

    # slack_sdk's handler waits Retry-After plus up to a second of jitter; drop the jitter.
    monkeypatch.setattr(random, "random", lambda: 0.0)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=2))
    server.rate_limit("chat.postMessage", times=1, retry_after=1)
    response = await client.chat_postMessage(channel=GENERAL, text="patience")
    assert response["ok"]
    limited, answered = server.calls_to("chat.postMessage")[-2:]
    assert (limited.status, answered.status) == (429, 200)
    waited = answered.at - limited.at
    assert waited >= 1.0 and waited < 1.5


async def test_scripted_failure_and_unknown_method(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    server.fail("chat.postMessage", "fatal_error")
    assert (await _error(client.chat_postMessage(channel=GENERAL, text="a"))).response[
        "error"
    ] == "fatal_error"
    assert (await client.chat_postMessage(channel=GENERAL, text="b"))["ok"]
    unknown = await _error(client.api_call("corral.frobnicate", params={"x": "1"}))
    assert unknown.response["error"] == "unknown_method"
    [call] = server.calls_to("corral.frobnicate")
    assert call.params == {"x": "1"}


async def test_update_delete_ephemeral_reactions(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    root = server.add_message(GENERAL, None, "please deploy", user=ALICE)
    await client.reactions_add(channel=GENERAL, name="eyes", timestamp=root["ts"])
    assert server.reactions(GENERAL, root["ts"]) == ["eyes"]
    again = client.reactions_add(channel=GENERAL, name="eyes", timestamp=root["ts"])
    assert (await _error(again)).response["error"] == "already_reacted"
    await client.reactions_remove(channel=GENERAL, name="eyes", timestamp=root["ts"])
    assert server.reactions(GENERAL, root["ts"]) == []
    gone = client.reactions_remove(channel=GENERAL, name="eyes", timestamp=root["ts"])
    assert (await _error(gone)).response["error"] == "no_reaction"

    posted = await client.chat_postMessage(channel=GENERAL, thread_ts=root["ts"], text="Approve?")
    updated = await client.chat_update(channel=GENERAL, ts=posted["ts"], text="Approved by @alice")
    assert updated["text"] == "Approved by @alice"
    assert server.message(GENERAL, posted["ts"])["text"] == "Approved by @alice"  # type: ignore[index]
    not_ours = client.chat_update(channel=GENERAL, ts=root["ts"], text="x")
    assert (await _error(not_ours)).response["error"] == "cant_update_message"

    ephemeral = await client.chat_postEphemeral(channel=GENERAL, user=ALICE, text="only you")
    assert TS.match(ephemeral["message_ts"])
    assert server.ephemerals[0]["user"] == ALICE

    await client.chat_delete(channel=GENERAL, ts=posted["ts"])
    assert server.message(GENERAL, posted["ts"]) is None
    [delete] = server.calls_to("chat.delete")
    assert delete.params["ts"] == posted["ts"]  # sent in the query string


async def test_streaming_assembles_the_message(
    server: FakeSlackServer, client: AsyncWebClient
) -> None:
    root = server.add_message(GENERAL, None, "write the summary", user=ALICE)
    stream = await client.chat_stream(
        channel=GENERAL,
        thread_ts=root["ts"],
        recipient_team_id=server.team_id,
        recipient_user_id=ALICE,
        username="Owl",
        icon_emoji=":owl:",
        buffer_size=8,
    )
    for piece in ["The login ", "fix is ", "**deployed**", "."]:
        await stream.append(markdown_text=piece)
    assert stream.ts is not None and server.is_streaming(GENERAL, stream.ts)
    await stream.stop()

    final = server.message(GENERAL, stream.ts)
    assert final is not None
    assert final["text"] == "The login fix is **deployed**."
    assert (final["username"], final["thread_ts"]) == ("Owl", root["ts"])
    assert not server.is_streaming(GENERAL, stream.ts)
    methods = [c.method for c in server.calls if c.method.startswith("chat.")]
    assert methods[0] == "chat.startStream" and methods[-1] == "chat.stopStream"
    assert [m["text"] for m in server.thread(GENERAL, root["ts"])][-1] == final["text"]

    late = client.chat_appendStream(channel=GENERAL, ts=stream.ts, markdown_text="more")
    assert (await _error(late)).response["error"] == "message_not_in_streaming_state"
    no_recipient = client.chat_startStream(channel=GENERAL, thread_ts=root["ts"])
    assert (await _error(no_recipient)).response["error"] == "missing_recipient_user_id"


async def test_files_upload_v2(server: FakeSlackServer, client: AsyncWebClient) -> None:
    root = server.add_message(GENERAL, None, "export the memory", user=ALICE)
    response = await client.files_upload_v2(
        channel=GENERAL,
        thread_ts=root["ts"],
        filename="memory.json",
        content='{"facts": []}',
        title="Memory export",
        initial_comment="Here it is.",
    )
    file_id = response["file"]["id"]
    uploaded = server.files[file_id]
    assert (uploaded.content, uploaded.title, uploaded.completed) == (
        b'{"facts": []}',
        "Memory export",
        True,
    )
    shared = server.thread(GENERAL, root["ts"])[-1]
    assert (shared["text"], shared["files"][0]["id"]) == ("Here it is.", file_id)
    assert [c.method for c in server.calls] == [
        "files.getUploadURLExternal",
        "upload_url",
        "files.completeUploadExternal",
    ]


async def test_form_encoded_calls_and_token_parameter(server: FakeSlackServer) -> None:
    async with aiohttp.ClientSession() as http:
        form = {
            "token": server.bot_token,
            "channel": GENERAL,
            "text": "from a form",
            "blocks": json.dumps([{"type": "divider"}]),
        }
        async with http.post(f"{server.api_url}chat.postMessage", data=form) as response:
            body = await response.json()
    assert body["ok"], body
    [call] = server.calls_to("chat.postMessage")
    assert call.params["blocks"] == [{"type": "divider"}]
    assert call.token == server.bot_token
    assert call.http_method == "POST"


def test_in_thread_serves_synchronous_clients() -> None:
    with FakeSlackServer.in_thread() as server:
        server.add_channel(GENERAL, "general")
        client = WebClient(token=server.bot_token, base_url=server.env()["SLACK_API_URL"])
        posted = client.chat_postMessage(channel="#general", text="hello from a subprocess")
        assert posted["channel"] == GENERAL
        assert server.messages(GENERAL)[0]["text"] == "hello from a subprocess"


# ---------------------------------------------------------------------------------------
# slack_bolt driven by signed requests


@pytest.fixture
def app(client: AsyncWebClient) -> AsyncApp:
    return AsyncApp(signing_secret=slack_events.SIGNING_SECRET, client=client)


async def _wait(event: asyncio.Event) -> None:
    await asyncio.wait_for(event.wait(), timeout=5)


async def test_app_mention_reaches_the_handler(server: FakeSlackServer, app: AsyncApp) -> None:
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        seen.append(event)
        await say(text="On it.", thread_ts=event["ts"], username="Beaver")
        done.set()

    event = slack_events.app_mention("beaver the login page 500s", channel=GENERAL)
    server.add_message(GENERAL, event["ts"], event["text"], user=ALICE)
    response = await app.async_dispatch(slack_events.event_callback(event).bolt_request())
    assert response.status == 200
    await _wait(done)
    assert seen[0]["text"] == f"<@{slack_events.BOT_USER_ID}> beaver the login page 500s"
    assert seen[0]["blocks"][0]["elements"][0]["elements"][0] == {
        "type": "user",
        "user_id": slack_events.BOT_USER_ID,
    }
    [reply] = server.thread(GENERAL, event["ts"])[1:]
    assert (reply["text"], reply["username"]) == ("On it.", "Beaver")
    assert [c.method for c in server.calls] == ["auth.test", "chat.postMessage"]


async def test_bad_or_stale_signature_is_refused(app: AsyncApp) -> None:
    called = asyncio.Event()

    @app.event("app_mention")
    async def on_mention() -> None:
        called.set()

    request = slack_events.event_callback(slack_events.app_mention("hi", channel=GENERAL))
    forged = request.with_headers(**{"X-Slack-Signature": "v0=" + "0" * 64})
    assert (await app.async_dispatch(forged.bolt_request())).status == 401
    wrong_secret = slack_events.event_callback(
        slack_events.app_mention("hi", channel=GENERAL), secret="not-the-secret"
    )
    assert (await app.async_dispatch(wrong_secret.bolt_request())).status == 401
    stale = slack_events.event_callback(
        slack_events.app_mention("hi", channel=GENERAL), timestamp=int(time.time()) - 301
    )
    assert (await app.async_dispatch(stale.bolt_request())).status == 401
    await asyncio.sleep(0.05)
    assert not called.is_set()


async def test_own_bot_messages_are_ignored_and_retries_carry_headers(app: AsyncApp) -> None:
    messages: list[tuple[dict[str, Any], str | None]] = []
    done = asyncio.Event()

    @app.event("message")
    async def on_message(event: dict[str, Any], request: Any) -> None:
        messages.append((event, request.headers.get("x-slack-retry-num", [None])[0]))
        done.set()

    own = slack_events.bot_message("Looking into it.", channel=GENERAL, username="Beaver")
    assert (await app.async_dispatch(slack_events.event_callback(own).bolt_request())).status == 200
    human = slack_events.message("@owl can you re-test?", channel="D0DM000001", channel_type="im")
    first = slack_events.event_callback(human, event_id="Ev0RETRY001")
    retry = first.with_retry(1, "http_timeout")
    assert retry.body == first.body and retry.headers["X-Slack-Retry-Reason"] == "http_timeout"
    assert (await app.async_dispatch(retry.bolt_request())).status == 200
    await _wait(done)
    assert len(messages) == 1  # the app's own post never reached the handler
    assert messages[0][0]["channel_type"] == "im"
    assert messages[0][1] == "1"


async def test_url_verification_echoes_the_challenge(app: AsyncApp) -> None:
    response = await app.async_dispatch(slack_events.url_verification("c-123").bolt_request())
    assert response.status == 200
    assert json.loads(response.body) == {"challenge": "c-123"}


async def test_block_action_reaches_the_action_handler(
    server: FakeSlackServer, app: AsyncApp
) -> None:
    root = server.add_message(GENERAL, None, "deploy please", user=ALICE)
    posted = await app.client.chat_postMessage(
        channel=GENERAL,
        thread_ts=root["ts"],
        text="Beaver wants to run deploy",
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": "Beaver wants to run deploy"}},
            {
                "type": "actions",
                "block_id": "approval",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "corral_approve",
                        "text": {"type": "plain_text", "text": "Approve"},
                        "value": "apr_42",
                    },
                    {
                        "type": "button",
                        "action_id": "corral_reject",
                        "text": {"type": "plain_text", "text": "Reject"},
                        "value": "apr_42",
                    },
                ],
            },
        ],
    )
    seen: list[dict[str, Any]] = []
    done = asyncio.Event()

    @app.action("corral_approve")
    async def approve(ack: Any, body: dict[str, Any], action: dict[str, Any], respond: Any) -> None:
        await ack()
        seen.append({"value": action["value"], "user": body["user"]["id"], "body": body})
        await respond(replace_original=True, text="Approved by <@U0HUMAN001>")
        done.set()

    request = slack_events.block_actions(
        "corral_approve",
        "apr_42",
        channel=GENERAL,
        message_ts=posted["ts"],
        thread_ts=root["ts"],
        message=server.message(GENERAL, posted["ts"]),
        block_id="approval",
        button_text="Approve",
        response_url=server.response_url("actions", channel=GENERAL, message_ts=posted["ts"]),
    )
    response = await app.async_dispatch(request.bolt_request())
    assert response.status == 200
    await _wait(done)
    assert (seen[0]["value"], seen[0]["user"]) == ("apr_42", ALICE)
    assert seen[0]["body"]["container"]["thread_ts"] == root["ts"]
    assert server.message(GENERAL, posted["ts"])["text"] == "Approved by <@U0HUMAN001>"  # type: ignore[index]
    [hook] = server.calls_to("response_url")
    assert hook.params["replace_original"] is True


async def test_slash_command_reaches_the_command_handler(
    server: FakeSlackServer, app: AsyncApp
) -> None:
    done = asyncio.Event()
    seen: list[dict[str, Any]] = []

    @app.command("/corral")
    async def corral(ack: Any, command: dict[str, Any], respond: Any) -> None:
        seen.append(command)
        await ack("Working on it…")
        await respond("3 agents, all idle")
        done.set()

    request = slack_events.slash_command(
        "/corral",
        "status",
        channel_id=GENERAL,
        response_url=server.response_url("commands", channel=GENERAL, user=ALICE),
    )
    response = await app.async_dispatch(request.bolt_request())
    assert response.status == 200
    assert response.body == "Working on it…"
    await _wait(done)
    assert (seen[0]["text"], seen[0]["user_id"], seen[0]["channel_id"]) == (
        "status",
        ALICE,
        GENERAL,
    )
    assert seen[0]["trigger_id"]
    [ephemeral] = server.ephemerals
    assert (ephemeral["user"], ephemeral["text"]) == (ALICE, "3 agents, all idle")


async def test_signed_bytes_work_over_http(server: FakeSlackServer, app: AsyncApp) -> None:
    done = asyncio.Event()

    @app.event("app_mention")
    async def on_mention() -> None:
        done.set()

    async with TestServer(app.web_app()) as web, aiohttp.ClientSession() as http:
        request = slack_events.event_callback(slack_events.app_mention("hi", channel=GENERAL))
        async with http.post(
            web.make_url("/slack/events"), data=request.body, headers=request.headers
        ) as r:
            assert r.status == 200
        await _wait(done)
        body, headers = slack_events.slash_command("/memory", "list", channel_id=GENERAL)
        headers["X-Slack-Signature"] = "v0=" + "f" * 64
        async with http.post(web.make_url("/slack/events"), data=body, headers=headers) as r:
            assert r.status == 401


# ---------------------------------------------------------------------------------------
# The app manifest


def test_manifest_matches_what_the_fake_grants() -> None:
    manifest = YAML(typ="safe").load(MANIFEST.read_text())
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == BOT_SCOPES
    assert {c["command"] for c in manifest["features"]["slash_commands"]} == {"/corral", "/memory"}
    assert manifest["features"]["bot_user"]["display_name"] == "Corral"
    settings = manifest["settings"]
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
        "message.mpim",
    }
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["socket_mode_enabled"] is True
    assert settings["org_deploy_enabled"] is False
