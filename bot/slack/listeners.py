"""slack-bolt listeners: thin handlers that parse, hand to the gateway or the command
table, and ack. Bolt verifies signatures and drops the app's own events before these run."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

from slack_bolt.async_app import AsyncApp

from corral.agents.team import Team
from corral.bot.app import Core
from corral.bot.commands.registry import dispatch
from corral.bot.gateway import DecisionError, Gateway, Workers
from corral.bot.slack.adapter import APPROVE_ACTION, REJECT_ACTION, SlackAdapter
from corral.bot.slack.events import PLATFORM, inbound_from_event

log = logging.getLogger("corral.slack")


def register(
    app: AsyncApp,
    core: Core,
    gateway: Gateway,
    workers: Workers,
    adapter: SlackAdapter,
) -> None:
    """Attach Corral's listeners to ``app``."""
    team = core.team
    directory = adapter.directory

    async def on_event(body: dict[str, Any], event: dict[str, Any], context: Any) -> None:
        bot_user_id = str(context.get("bot_user_id") or "")
        channel = str(event.get("channel") or "")
        user = str(event.get("user") or "")
        if not channel or not user or event.get("bot_id"):
            return
        inbound = inbound_from_event(
            body,
            event,
            bot_user_id,
            channel_name=await directory.channel_name(channel),
            user_name=await directory.user_name(user),
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
        ctx = core.command_context(str(command["user_id"]), PLATFORM, channel)
        reply = await dispatch(ctx, f"{command['command']} {command.get('text', '')}")
        await ack(text=reply.text, response_type="ephemeral" if reply.ephemeral else "in_channel")
        if reply.attachment is not None:
            filename, content = reply.attachment
            _in_background(_upload(client, channel, filename, content))

    app.command("/corral")(on_command)
    app.command("/memory")(on_command)

    async def on_decision(
        ack: Any, body: dict[str, Any], action: dict[str, Any], client: Any
    ) -> None:
        await ack()
        await decide(
            team,
            workers,
            client,
            body,
            str(action.get("value", "")),
            approved=action.get("action_id") == APPROVE_ACTION,
        )

    app.action(APPROVE_ACTION)(on_decision)
    app.action(REJECT_ACTION)(on_decision)


async def decide(
    team: Team,
    workers: Workers,
    client: Any,
    body: dict[str, Any],
    approval_id: str,
    *,
    approved: bool,
) -> None:
    """An approver's click: resume the paused run and mark the request decided; anyone
    else is told, only them, that they may not."""
    user = str(body["user"]["id"])
    channel = str((body.get("channel") or {}).get("id", ""))
    message = body.get("message") or {}
    thread = message.get("thread_ts") or message.get("ts")
    if user not in team.approvers:
        await client.chat_postEphemeral(
            channel=channel,
            user=user,
            thread_ts=thread,
            text="Only the team's approvers can decide this.",
        )
        return
    if await workers.runtime.waiting(approval_id) is None:
        await client.chat_postEphemeral(
            channel=channel,
            user=user,
            thread_ts=thread,
            text=f"{approval_id} was already decided.",
        )
        return
    verdict = f"{'Approved' if approved else 'Rejected'} by <@{user}>"
    summary = next(
        (b["text"]["text"] for b in message.get("blocks") or [] if b.get("type") == "section"),
        approval_id,
    )
    # The buttons go at once; the resumed run's answer follows in the thread.
    await client.chat_update(
        channel=channel,
        ts=message.get("ts"),
        text=verdict,
        blocks=[
            {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": verdict}]},
        ],
    )
    # The resumed run may take minutes; Slack wants its answer within 3 seconds.
    _in_background(_resume(workers, client, approval_id, approved, user, channel))


async def _resume(
    workers: Workers, client: Any, approval_id: str, approved: bool, user: str, channel: str
) -> None:
    try:
        await workers.decide(approval_id, approved, user)
    except DecisionError as exc:
        await client.chat_postEphemeral(channel=channel, user=user, text=str(exc))
    except Exception:  # the run itself tells the thread; this is for what precedes it
        log.exception("deciding %s failed", approval_id)


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
