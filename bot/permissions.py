"""Who may talk to which agent, and where: ``allowed_channels`` and ``allowed_users`` of
``team.yaml`` applied to every message after it is routed, whatever the route.

A message refused here gets no run (no model call, no reaction left on it): the app
itself tells the person why (``ChatAdapter.notice``: ephemeral in Slack, never under an
agent's persona), and the refusal is audited.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from corral.agents.conversation import Place
from corral.agents.permissions import REFUSED, who_can_help
from corral.agents.team import Team
from corral.bot.adapter import ChatAdapter
from corral.bot.coordinator import Route, channel_default
from corral.bot.inbound import Inbound
from corral.storage.audit import AuditLog, Where

log = logging.getLogger("corral.permissions")

#: Whether the sender of a message belongs to a group that ``allowed_users`` names
#: (a Slack user group ``S…``, a Discord role): the platform says what a group is.
Membership = Callable[[Inbound, str], Awaitable[bool]]


class PlatformDirectory:
    """What each chat platform can say about its channels and people, for the
    permission checks: filled in as the platforms open, read by the checks."""

    def __init__(self) -> None:
        self._aliases: dict[str, Callable[[str], Awaitable[Sequence[str]]]] = {}
        self._members: dict[str, Membership] = {}

    def register(
        self,
        platform: str,
        *,
        aliases: Callable[[str], Awaitable[Sequence[str]]] | None = None,
        membership: Membership | None = None,
    ) -> None:
        """What ``platform`` knows: the names a channel goes by, and who is in a group."""
        if aliases is not None:
            self._aliases[platform] = aliases
        if membership is not None:
            self._members[platform] = membership

    async def aliases(self, platform: str, channel: str) -> Sequence[str]:
        """Every name ``channel`` is known by on ``platform`` (id, ``#name``), itself
        included; only itself where the platform cannot say."""
        look_up = self._aliases.get(platform)
        if look_up is None:
            return (channel,)
        return (channel, *await look_up(channel))

    async def in_group(self, inbound: Inbound, group: str) -> bool:
        """Whether the sender of ``inbound`` is in ``group``; False where the platform
        has no groups."""
        membership = self._members.get(inbound.platform)
        return membership is not None and await membership(inbound, group)


@dataclass(frozen=True)
class Refusal:
    """Why a routed message is not answered: what the person is told, and what the
    audit records."""

    notice: str
    subject: str
    detail: str


class Gatekeeper:
    """Decides whether the routed agent may answer a message here and for this person,
    and turns the message away when it may not."""

    def __init__(self, team: Team, directory: PlatformDirectory, audit: AuditLog) -> None:
        self.team = team
        self.directory = directory
        self.audit = audit

    async def refusal(self, inbound: Inbound, route: Route) -> Refusal | None:
        """Why ``route.agent`` may not answer ``inbound``; None when it may."""
        agent = self.team.agents.get(route.agent)
        if agent is None:
            return None
        names = (inbound.channel, inbound.channel_name)
        if not agent.may_answer_in(*names):
            where = _shown(inbound.channel_name) or "this conversation"
            helper = who_can_help(self.team, channel_default(self.team, *names), *names)
            if helper is None:
                tip = "No agent of the team answers here."
            else:
                tip = (
                    f"{self.team.agents[helper].display_name} can help here: "
                    f"write @{helper} and your question."
                )
            return Refusal(
                f"{agent.display_name} does not answer in {where}. {tip}",
                f"answer {route.agent}",
                f"{route.agent} may not answer in {where} ({route.reason})",
            )
        if not await self.may_talk(inbound, agent.allowed_users):
            return Refusal(
                f"Sorry, {agent.display_name} takes requests only from certain people, "
                "and this message was not passed on. An admin of the team can give you "
                "access.",
                f"talk {route.agent}",
                f"{inbound.user} may not talk to {route.agent} ({route.reason})",
            )
        return None

    async def may_post(self, agent: str, place: Place) -> bool:
        """Whether ``agent`` may post in ``place``'s channel (a schedule's fire)."""
        config = self.team.agents.get(agent)
        if config is None or config.allowed_channels is None:
            return True
        names = [place.channel, place.channel_name]
        names += await self.directory.aliases(place.platform, place.channel)
        return config.may_answer_in(*names)

    async def may_talk(self, inbound: Inbound, allowed: Sequence[str] | None) -> bool:
        """Whether the sender is allowed: everyone when ``allowed`` is None, else the
        people it lists and the members of the groups it lists. The person at the
        console is the machine's owner, as for admin commands."""
        if allowed is None or inbound.user in allowed or inbound.platform == "console":
            return True
        for group in allowed:
            if await self.directory.in_group(inbound, group):
                return True
        return False

    async def turned_away(self, adapter: ChatAdapter, inbound: Inbound, route: Route) -> bool:
        """Turn the message away if ``route.agent`` may not answer it: the person is
        told by the app, any sign that it was taken is taken back, the refusal is
        audited. False when the agent may answer."""
        refusal = await self.refusal(inbound, route)
        if refusal is None:
            return False
        try:
            await adapter.unanswered(inbound)
            await adapter.notice(inbound, refusal.notice)
        except Exception:  # the refusal stands; only telling the person failed
            log.exception("could not tell %s of a refusal", inbound.user)
        await self.audit.record(
            inbound.user,
            REFUSED,
            refusal.subject,
            refusal.detail,
            agent=route.agent,
            where=Where(inbound.platform, inbound.channel, inbound.thread),
            outcome="refused",
        )
        return True


def _shown(channel_name: str) -> str:
    name = channel_name.strip()
    return "" if not name else name if name.startswith("#") else f"#{name}"
