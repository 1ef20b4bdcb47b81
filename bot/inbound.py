"""The platform-neutral message every adapter hands to the gateway."""

from __future__ import annotations

from dataclasses import dataclass, field

from corral.agents.conversation import Place


@dataclass(frozen=True)
class Inbound:
    """One message from a person, as the adapter saw it.

    ``thread`` is the id of the thread's first message (the message's own id when it
    starts a thread). ``agent_mentions`` are handles the platform resolved from its own
    mention syntax. ``to_app`` says the message was addressed to Corral itself: the app
    was mentioned, it is a DM, or it was typed into the console.
    """

    platform: str
    event_id: str
    channel: str
    message_id: str
    thread: str
    user: str
    text: str
    channel_name: str = ""
    user_name: str = ""
    agent_mentions: tuple[str, ...] = ()
    to_app: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def place(self) -> Place:
        return Place(self.platform, self.channel, self.thread, self.channel_name)

    def payload(self) -> dict[str, object]:
        """What the inbox stores beyond its own columns."""
        return {
            "channel_name": self.channel_name,
            "user_name": self.user_name,
            "agent_mentions": list(self.agent_mentions),
            "to_app": self.to_app,
            "extra": dict(self.extra),
        }

    @staticmethod
    def from_stored(
        *,
        platform: str,
        event_id: str,
        channel: str,
        message_id: str,
        thread: str,
        user: str,
        text: str,
        payload: dict[str, object],
    ) -> Inbound:
        """Rebuild a message from its inbox row."""
        mentions = payload.get("agent_mentions") or []
        extra = payload.get("extra") or {}
        return Inbound(
            platform=platform,
            event_id=event_id,
            channel=channel,
            message_id=message_id,
            thread=thread,
            user=user,
            text=text,
            channel_name=str(payload.get("channel_name") or ""),
            user_name=str(payload.get("user_name") or ""),
            agent_mentions=tuple(str(m) for m in mentions) if isinstance(mentions, list) else (),
            to_app=bool(payload.get("to_app")),
            extra={str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {},
        )
