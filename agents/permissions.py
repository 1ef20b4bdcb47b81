"""Where each agent may act: ``allowed_channels`` of ``team.yaml`` applied to the tools
that reach a channel (``post_message``, ``schedule``) or bring another agent into this
one (``handoff``), as a wrapper of the tool-call seam.

Every check reads the team's configuration and nothing else: no tool, memory or message
can widen an agent's grants.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from corral.agents.team import Team
from corral.agents.tool import ToolContext, ToolOutcome
from corral.agents.tool_calls import ToolCall, ToolInvoker
from corral.storage.audit import Where

#: ``(platform, channel)`` → every name the channel is known by there (its id, its
#: ``#name``), the channel as given among them. Supplied by the chat platforms (bot/),
#: which know names and ids; a channel they cannot look up is known by itself alone.
ChannelAliases = Callable[[str, str], Awaitable[Sequence[str]]]

#: The audit action of every refusal for want of a permission.
REFUSED = "permission.refused"

#: Tools whose ``channel`` argument names where they act.
_CHANNEL_TOOLS = ("post_message", "schedule")


async def known_as(platform: str, channel: str) -> Sequence[str]:
    """The aliases of a platform that cannot look channels up: the channel itself."""
    return (channel,)


def agents_allowed_in(team: Team, *channel: str) -> list[str]:
    """The handles of the agents that may answer in a channel known by any of
    ``channel``, in ``team.yaml``'s order."""
    return [h for h, a in team.agents.items() if a.may_answer_in(*channel)]


def who_can_help(team: Team, default: str | None, *channel: str) -> str | None:
    """The agent to point a person to in a channel: its default agent if it may answer
    there, else the router if it may, else the first agent that may; None when none may."""
    allowed = agents_allowed_in(team, *channel)
    for handle in (default, team.router_handle()):
        if handle in allowed:
            return handle
    return allowed[0] if allowed else None


class ChannelPermissions:
    """A :class:`~corral.agents.tool_calls.ToolWrapper` that refuses, before the tool
    runs, a ``post_message`` or ``schedule`` to a channel outside the agent's
    ``allowed_channels`` and a ``handoff`` to an agent not allowed in this thread's
    channel; the agent is told why (the tool's result) and the refusal is audited."""

    def __init__(self, aliases: ChannelAliases = known_as) -> None:
        self.aliases = aliases

    async def __call__(
        self, ctx: ToolContext, call: ToolCall, call_next: ToolInvoker
    ) -> ToolOutcome:
        """Refuse the call, or go on."""
        refusal = await self._refusal(ctx, call.tool.name, call.args)
        if refusal is None:
            return await call_next(ctx, call)
        subject, why = refusal
        place = ctx.place
        await ctx.storage.audit.record(
            f"agent:{ctx.handle}",
            REFUSED,
            subject,
            why,
            agent=ctx.handle,
            where=Where(place.platform, place.channel, place.thread),
            outcome="refused",
        )
        return ToolOutcome(f"{call.tool.name} refused: {why}", is_error=True)

    async def _refusal(
        self, ctx: ToolContext, tool: str, args: Mapping[str, Any]
    ) -> tuple[str, str] | None:
        """``(subject, why)`` when the call is not allowed; None when it is (or when its
        arguments are wrong, which the tool itself says)."""
        if tool in _CHANNEL_TOOLS:
            channel = args.get("channel")
            agent = ctx.team.agents.get(ctx.handle)
            if not isinstance(channel, str) or not channel.strip() or agent is None:
                return None
            if agent.allowed_channels is None:
                return None
            channel = channel.strip()
            if agent.may_answer_in(*await self.aliases(ctx.place.platform, channel)):
                return None
            return (
                f"{tool} {channel}",
                f"you may not post in {channel}; you may post only in "
                f"{', '.join(agent.allowed_channels)}",
            )
        if tool == "handoff":
            target = args.get("agent")
            if not isinstance(target, str):
                return None
            handle = target.strip().lstrip("@").lower()
            other = ctx.team.agents.get(handle)
            if other is None or other.allowed_channels is None:
                return None
            place = ctx.place
            names = [place.channel, place.channel_name]
            names += await self.aliases(place.platform, place.channel)
            if other.may_answer_in(*names):
                return None
            where = place.channel_name or place.channel
            return (
                f"handoff {handle}",
                f"{other.display_name} may not answer in {where}; hand off to a teammate "
                "who may, or answer yourself",
            )
        return None
