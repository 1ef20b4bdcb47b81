"""Posting to Slack under each agent's persona (``chat:write.customize``)."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from corral.agents.conversation import Place, Reply
from corral.agents.team import Team
from corral.agents.waiting import waiting
from corral.bot.adapter import OnPart, ThreadLine
from corral.bot.coordinator import Route
from corral.bot.decisions import RequestMessages
from corral.bot.inbound import Inbound
from corral.bot.slack.directory import Directory
from corral.bot.slack.events import PLATFORM, SLACK_TS
from corral.bot.text_split import split_message

log = logging.getLogger("corral.slack")

#: Slack accepts up to 40,000 characters but truncates long messages in practice and
#: section blocks hold 3,000; parts this long always render whole.
MESSAGE_LIMIT = 3_900
SECTION_LIMIT = 3_000
#: Slack's guidance is about one message a second per channel, on average: it tolerates
#: short bursts, so a channel quiet for a while may post this many at once.
POST_INTERVAL_S = 1.0
POST_BURST = 5
PICKED_UP_REACTION = "eyes"
#: An answer sooner than this shows itself that the message was taken; a reaction would
#: only flicker on and off, at two Web API calls.
REACT_AFTER_S = 0.5

APPROVE_ACTION = "corral_approve"
REJECT_ACTION = "corral_reject"
RESOLVE_ACTION = "corral_resolve"


@dataclass(frozen=True)
class Persona:
    """How an agent appears in Slack: its name, and an emoji or image as its icon."""

    username: str
    icon_emoji: str | None = None
    icon_url: str | None = None


class SlackAdapter:
    """The workers' view of Slack: show that a message was taken, post replies."""

    platform = PLATFORM

    def __init__(
        self,
        client: AsyncWebClient,
        team: Team,
        directory: Directory,
        post_interval: float = POST_INTERVAL_S,
        post_burst: int = POST_BURST,
        react_after: float = REACT_AFTER_S,
        *,
        requests: RequestMessages,
    ) -> None:
        self.client = client
        self.team = team
        self.directory = directory
        #: Where the message carrying a request's buttons is recorded.
        self.requests = requests
        self.post_interval = post_interval
        self.post_burst = post_burst
        self.react_after = react_after
        #: (channel, thread) → the message that got the "picked up" reaction.
        self._reacted: dict[tuple[str, str], str] = {}
        #: (channel, thread) → the reaction still to come, and those being added now.
        self._reacting: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._adding: set[tuple[str, str]] = set()
        #: Reactions answered while being added: taken back as soon as they are on.
        self._take_back: set[tuple[str, str]] = set()
        #: channel → when its next post may go without exceeding the pace (a token
        #: bucket kept as one time: the "theoretical arrival time" of GCRA).
        self._next_post: dict[str, float] = {}

    def received(self, inbound: Inbound) -> None:
        """A message for the app was stored, and this process's workers will answer it:
        react with :eyes: unless the answer comes within :attr:`react_after` seconds of
        now, however long the message waits for a free worker. The reaction goes when
        the answer comes (or :meth:`unanswered`)."""
        self._react_later_unless_timed((inbound.channel, inbound.thread), inbound.message_id)

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        """React with :eyes: on the message unless the answer comes within
        :attr:`react_after` seconds, counted from now unless :meth:`received` started
        counting already; the reaction goes when the answer comes."""
        self._react_later_unless_timed((inbound.channel, inbound.thread), inbound.message_id)

    async def with_names(self, inbound: Inbound) -> Inbound:
        """The message with its channel's ``#name`` and its sender's display name, asked
        of Slack here, on the worker's side, where the listener did not know them."""
        channel_name = await self.directory.channel_name(inbound.channel)
        user_name = inbound.user_name or await self.directory.user_name(inbound.user)
        if (channel_name, user_name) == (inbound.channel_name, inbound.user_name):
            return inbound
        return replace(inbound, channel_name=channel_name, user_name=user_name)

    async def unanswered(self, inbound: Inbound) -> None:
        """Take :eyes: back from a message no agent will answer."""
        channel = await self.directory.channel_id(inbound.channel)
        await self._clear_reaction(channel, inbound.thread)

    async def notice(self, inbound: Inbound, text: str) -> None:
        """Tell the person, ephemerally, in the message's thread, as the app."""
        channel = await self.directory.channel_id(inbound.channel)
        await self.client.chat_postEphemeral(
            channel=channel,
            user=inbound.user,
            text=text,
            thread_ts=inbound.thread if inbound.thread != inbound.message_id else None,
        )

    def _react_later_unless_timed(self, key: tuple[str, str], message: str) -> None:
        if key in self._reacting or key in self._reacted:
            return
        task = asyncio.create_task(self._react_later(key, message))
        self._reacting[key] = task

        def forget(done: asyncio.Task[None]) -> None:
            if self._reacting.get(key) is done:
                del self._reacting[key]

        task.add_done_callback(forget)

    def close(self) -> None:
        """Drop the reactions still to come (the process is stopping)."""
        for task in self._reacting.values():
            task.cancel()

    async def _react_later(self, key: tuple[str, str], message: str) -> None:
        await asyncio.sleep(self.react_after)
        # From here on an answer does not cancel this call (a reaction added just after
        # it would stay) nor wait for it (Slack may hold it back with 429s): it leaves
        # the reaction to be taken back here.
        self._adding.add(key)
        try:
            await self.client.reactions_add(
                channel=key[0], timestamp=message, name=PICKED_UP_REACTION
            )
            added = True
        except SlackApiError as exc:  # a missing reaction must not stop the answer
            log.warning("reactions.add: %s", exc.response.get("error"))
            added = False
        finally:
            self._adding.discard(key)
        if key in self._take_back:
            self._take_back.discard(key)
            if added:
                await self._remove_reaction(key[0], message)
        elif added:
            self._reacted[key] = message

    async def post(
        self, place: Place, reply: Reply, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        """Post ``reply`` in the thread under the agent's name and icon, split into
        messages Slack shows whole, from part ``start`` on, telling ``on_part`` of each;
        approval requests get Approve/Reject buttons and escalations a Resolve button, on
        one message recorded as the request's. Returns the messages' ts."""
        channel = await self.directory.channel_id(place.channel)
        persona = self._persona(reply.agent)
        # Corral's own threads (a scheduled fire's) are not Slack messages: post top-level.
        thread = place.thread if SLACK_TS.fullmatch(place.thread) else None
        parts: list[tuple[str, list[dict[str, Any]] | None]]
        request = request_blocks(reply)
        if request is not None:
            parts = [(reply.text, request)]
        else:
            parts = [(part, None) for part in split_message(to_mrkdwn(reply.text), MESSAGE_LIMIT)]
        posted: list[str] = []
        for index in range(start, len(parts)):
            text, blocks = parts[index]
            channel_id, ts = await self._send(channel, thread, persona, text, blocks)
            posted.append(ts)
            if blocks is not None:
                await self.requests.attach(reply.approval_id, channel_id, ts)
            if on_part is not None:
                await on_part(index, ts, index == len(parts) - 1)
        await self._clear_reaction(channel, place.thread)
        return posted

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        """The thread's messages before ``before`` from ``conversations.replies``: people
        by display name, the app's persona posts as the agents that wrote them."""
        personas = {a.display_name: h for h, a in self.team.agents.items()}
        lines: list[ThreadLine] = []
        cursor: str | None = None
        while True:
            page = await self.client.conversations_replies(
                channel=place.channel, ts=place.thread, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                if Decimal(message["ts"]) >= Decimal(before):
                    continue
                line = await self._line(message, personas)
                if line is not None:
                    lines.append(line)
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                return lines

    async def _line(self, message: dict[str, Any], personas: dict[str, str]) -> ThreadLine | None:
        text = str(message.get("text") or "").strip()
        if not text:
            return None
        if message.get("bot_id"):
            agent = personas.get(str(message.get("username") or ""))
            # Another app's messages are context too, under its name.
            return (
                ThreadLine(text, agent=agent)
                if agent
                else ThreadLine(text, user=str(message.get("username") or "a bot"))
            )
        user = str(message.get("user") or "")
        return ThreadLine(text, user=await self.directory.user_name(user) if user else "someone")

    async def _send(
        self,
        channel: str,
        thread: str | None,
        persona: Persona,
        text: str,
        blocks: list[dict[str, Any]] | None,
    ) -> tuple[str, str]:
        """Post one message; its channel id and ts."""
        wait = self._pace(channel)
        if wait > 0:
            async with waiting():
                await asyncio.sleep(wait)
        response = await self.client.chat_postMessage(
            channel=channel,
            thread_ts=thread,
            text=text,
            blocks=blocks,
            username=persona.username,
            icon_emoji=persona.icon_emoji,
            icon_url=persona.icon_url,
        )
        return str(response.get("channel") or channel), str(response.get("ts") or "")

    def _pace(self, channel: str) -> float:
        """Reserve the channel's next slot: how long to wait before posting. Up to
        ``post_burst`` posts go at once; beyond that one per ``post_interval``, so the
        average stays one per interval. Reserved in call order, so posts keep it."""
        if self.post_interval <= 0:
            return 0.0
        now = time.monotonic()
        earliest = now - (self.post_burst - 1) * self.post_interval
        slot = max(self._next_post.get(channel, earliest), earliest)
        self._next_post[channel] = slot + self.post_interval
        return max(0.0, slot - now)

    async def _clear_reaction(self, channel: str, thread: str) -> None:
        key = (channel, thread)
        pending = self._reacting.get(key)
        if pending is not None:
            if key in self._adding:
                # Kept in _reacting (a strong reference) until it has taken it back.
                self._take_back.add(key)
            else:
                del self._reacting[key]
                pending.cancel()
        message = self._reacted.pop(key, None)
        if message is not None:
            await self._remove_reaction(channel, message)

    async def _remove_reaction(self, channel: str, message: str) -> None:
        try:
            await self.client.reactions_remove(
                channel=channel, timestamp=message, name=PICKED_UP_REACTION
            )
        except SlackApiError as exc:
            log.warning("reactions.remove: %s", exc.response.get("error"))

    def _persona(self, handle: str) -> Persona:
        agent = self.team.agents.get(handle)
        if agent is None:
            return Persona("Corral")
        if agent.icon.startswith(("http://", "https://")):
            return Persona(agent.display_name, icon_url=agent.icon)
        return Persona(agent.display_name, icon_emoji=agent.icon or None)


def request_blocks(reply: Reply) -> list[dict[str, Any]] | None:
    """The request with its buttons (value: the request's id): Approve and Reject for an
    approval, Resolve for an escalation; None for a reply that is no request."""
    if not reply.approval_id or reply.kind not in ("approval", "escalation"):
        return None
    if reply.kind == "approval":
        buttons = [
            _button(APPROVE_ACTION, "Approve", reply.approval_id, "primary"),
            _button(REJECT_ACTION, "Reject", reply.approval_id, "danger"),
        ]
    else:
        buttons = [_button(RESOLVE_ACTION, "Resolve", reply.approval_id, None)]
    return [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": to_mrkdwn(reply.text)[:SECTION_LIMIT]},
        },
        {"type": "actions", "block_id": f"request-{reply.approval_id}", "elements": buttons},
    ]


def _button(action: str, label: str, value: str, style: str | None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "action_id": action,
        "text": {"type": "plain_text", "text": label},
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def to_mrkdwn(text: str) -> str:
    """Markdown bold (``**x**``) as Slack's ``*x*``; the rest Slack reads as it is."""
    return text.replace("**", "*")
