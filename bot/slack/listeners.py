"""slack-bolt listeners: thin handlers that parse, hand to the gateway or the command
table, and ack. Bolt verifies signatures and drops the app's own events before these run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp

from corral.bot.app import ChatServices
from corral.bot.commands.table import dispatch, groups
from corral.bot.decisions import ClickedMessage, DecisionContext, DecisionResult, Verdict, decide
from corral.bot.gateway import Workers
from corral.bot.slack.adapter import APPROVE_ACTION, REJECT_ACTION, RESOLVE_ACTION, SlackAdapter
from corral.bot.slack.events import PLATFORM, inbound_from_event
from corral.bot.slack.replays import once_only

log = logging.getLogger("corral.slack")

#: The buttons' action ids and the decision each one makes.
VERDICTS: dict[str, Verdict] = {
    APPROVE_ACTION: "approve",
    REJECT_ACTION: "reject",
    RESOLVE_ACTION: "resolve",
}


def register(
    app: AsyncApp,
    services: ChatServices,
    workers: Workers,
    adapter: SlackAdapter,
) -> None:
    """Attach Corral's listeners to ``app``, behind the guard against replayed requests."""
    app.middleware(once_only(services.requests))
    gateway = services.gateway
    directory = adapter.directory

    async def on_event(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        bot_user_id = str(context.get("bot_user_id") or "")
        channel = str(event.get("channel") or "")
        user = str(event.get("user") or "")
        if not channel or not user or event.get("bot_id"):
            return
        # Names only as far as they are known here: asking Slack would hold up the ack,
        # so the worker asks for the rest (SlackAdapter.with_names).
        inbound = inbound_from_event(
            body,
            event,
            bot_user_id,
            channel_name=directory.known_channel_name(channel) or "",
            user_name=directory.known_user_name(user) or "",
        )
        if inbound is None:
            return
        stored = await gateway.submit(inbound)
        # Timed from now, not from when a worker is free: the sender sees within a
        # second that the message was taken. Only where this process answers it, since
        # another process would not know to take the reaction back.
        if stored is not None and inbound.to_app and gateway.queue.local:
            adapter.received(inbound)

    app.event("app_mention")(on_event)
    app.event("message")(on_event)

    async def on_command(ack: Any, command: dict[str, Any], client: Any) -> None:
        channel = str(command["channel_id"])
        ctx = services.command_context(str(command["user_id"]), PLATFORM, channel)
        reply = await dispatch(ctx, f"{command['command']} {command.get('text', '')}")
        await ack(text=reply.text, response_type="ephemeral" if reply.ephemeral else "in_channel")
        if reply.attachment is not None:
            filename, content = reply.attachment
            _in_background(_upload(client, channel, filename, content))

    for group in groups():
        if len(group.path) == 1:
            app.command(f"/{group.path[0]}")(on_command)

    deciding = DecisionContext(services.team, services.approvals, workers, PLATFORM)

    async def on_decision(
        ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any
    ) -> None:
        # The shape was checked at the edge (bot/slack/requests.py): a user, a channel.
        user = str(body["user"]["id"])
        container = body.get("container") or {}
        channel = str((body.get("channel") or {}).get("id") or container.get("channel_id"))
        message = body.get("message") or {}
        ts = str(message.get("ts") or container.get("message_ts") or "")
        result = await decide(
            deciding,
            str(action.get("value", "")),
            VERDICTS[str(action.get("action_id"))],
            user,
            ClickedMessage(channel, ts),
        )
        await ack()
        # Recorded before the ack; shown after it, since Slack wants its ack within 3 s.
        _in_background(_render(client, result, channel, user, message))

    for action_id in VERDICTS:
        app.action(action_id)(on_decision)


async def _render(
    client: Any, result: DecisionResult, channel: str, user: str, message: dict[str, Any]
) -> None:
    """A decision on the clicked request: its buttons give way to the verdict; a refusal
    is told only to the person who clicked."""
    try:
        if not result.ok:
            await client.chat_postEphemeral(
                channel=channel,
                user=user,
                thread_ts=message.get("thread_ts") or message.get("ts"),
                text=result.text,
            )
            return
        summary = next(
            (b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section"),
            "",
        )
        blocks: list[dict[str, Any]] = [
            {"type": "context", "elements": [{"type": "mrkdwn", "text": result.verdict}]}
        ]
        if summary:
            blocks.insert(0, {"type": "section", "text": {"type": "mrkdwn", "text": summary}})
        await client.chat_update(
            channel=channel, ts=message.get("ts"), text=result.verdict, blocks=blocks
        )
    except Exception:  # the decision stands; only its display failed
        log.exception("showing a decision in %s failed", channel)


async def _upload(client: Any, channel: str, filename: str, content: str) -> None:
    """A command's document (``/memory export``) as a file in the channel."""
    try:
        await client.files_upload_v2(
            channel=channel, filename=filename, content=content, title=filename
        )
    except Exception:
        log.exception("uploading %s failed", filename)


_background: set[asyncio.Task[None]] = set()


def _in_background(work: Coroutine[Any, Any, None]) -> None:
    task = asyncio.create_task(work)
    # The loop keeps only weak references to tasks: hold one until it is done.
    _background.add(task)
    task.add_done_callback(_background.discard)
