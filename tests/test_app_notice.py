"""The app's own word to one person (``ChatAdapter.notice``): privately in Slack, in the
conversation and addressed to the person in Discord, never under an agent's persona."""

from __future__ import annotations

from typing import cast

from fakes.slack_server import FakeSlackServer
from harness import make_team
from slack_sdk.web.async_client import AsyncWebClient

from corral.bot.decisions import RequestMessages
from corral.bot.inbound import Inbound
from corral.bot.slack.adapter import SlackAdapter
from corral.bot.slack.directory import Directory


def _inbound(message: str, thread: str) -> Inbound:
    return Inbound(
        platform="slack",
        event_id="Ev1",
        channel="C0GENERAL",
        message_id=message,
        thread=thread,
        user="U0HUMAN001",
        text="hi",
    )


async def test_slack_notice_is_ephemeral_to_the_person_in_the_thread() -> None:
    async with FakeSlackServer() as server:
        server.add_channel("C0GENERAL", "general")
        server.add_user("U0HUMAN001", "alice", "Alice")
        root, reply = "1700000000.000100", "1700000005.000200"
        client = AsyncWebClient(token=server.bot_token, base_url=server.api_url)
        requests = cast(RequestMessages, None)
        slack = SlackAdapter(client, make_team(), Directory(client), requests=requests)

        await slack.notice(_inbound(root, root), "Only you can see this.")
        await slack.notice(_inbound(reply, root), "And this, in the thread.")

        first, second = server.calls_to("chat.postEphemeral")
        assert first.params["user"] == "U0HUMAN001"
        assert first.params["text"] == "Only you can see this."
        # A message that starts a thread gets the notice beside it, not a thread of its own.
        assert not first.params.get("thread_ts")
        assert second.params["thread_ts"] == root
        # Nothing public, nothing under a persona.
        assert server.calls_to("chat.postMessage") == []
