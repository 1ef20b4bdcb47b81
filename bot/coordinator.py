"""Routing: which agent answers a message, and why (DESIGN.md, "One message", step 4)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from corral.agents import router
from corral.agents.failures import plain_reason
from corral.agents.llm.types import AllModelsFailed, NoModelConfigured
from corral.agents.model_calls import BoundModel, CallContext, ModelCall
from corral.agents.model_choice import Difficulty
from corral.agents.permissions import agents_allowed_in
from corral.agents.team import Team, channel_key
from corral.bot.inbound import Inbound
from corral.storage.threads import ThreadStore

log = logging.getLogger("corral.coordinator")

_AT_HANDLE = re.compile(r"(?<![\w@<])@([A-Za-z][A-Za-z0-9_-]*)")
_FIRST_WORD = re.compile(r"^\W*([A-Za-z][A-Za-z0-9_-]*)")


@dataclass(frozen=True)
class Route:
    """The agent that answers and the reason, as shown to people and recorded; with the
    message's difficulty when the router rated it (for ``model: auto``)."""

    agent: str
    reason: str
    difficulty: Difficulty | None = None


class Coordinator:
    """Decides who answers, in DESIGN.md's order: explicit address, thread owner,
    channel default, router agent, otherwise nobody."""

    def __init__(
        self,
        team: Team,
        threads: ThreadStore,
        model_call: ModelCall,
    ) -> None:
        self.team = team
        self.threads = threads
        #: The model-call seam: the router's pick is a model call like any other.
        self.model_call = model_call
        self._defaults = _channel_defaults(team)

    def addressed(self, inbound: Inbound) -> str | None:
        """The agent the message names explicitly, if any."""
        for handle in inbound.agent_mentions:
            if handle in self.team.agents:
                return handle
        for match in _AT_HANDLE.finditer(inbound.text):
            handle = match.group(1).lower()
            if handle in self.team.agents:
                return handle
        if inbound.to_app:
            # "@Corral beaver the build is red": the app, then an agent's name.
            first = _FIRST_WORD.match(inbound.text)
            if first:
                word = first.group(1).lower()
                for handle, agent in self.team.agents.items():
                    if word in (handle, agent.display_name.lower()):
                        return handle
        return None

    def unknown_handles(self, text: str) -> list[str]:
        """The ``@handles`` in ``text`` that name no agent, in order, when it names no
        agent at all: ``@nobody hi`` gives ``["nobody"]``; ``@beaver ask @nobody``, an
        e-mail address or a message without ``@`` give nothing."""
        handles = [m.group(1).lower() for m in _AT_HANDLE.finditer(text)]
        if any(handle in self.team.agents for handle in handles):
            return []
        return list(dict.fromkeys(handles))

    async def route(self, inbound: Inbound) -> Route | None:
        """Who answers ``inbound``; None when the message is not for the team."""
        handle = self.addressed(inbound)
        if handle:
            return Route(handle, f"addressed: @{handle}")
        owner = await self.threads.owner(inbound.place.key)
        if owner in self.team.agents:
            return Route(owner, "thread owner")
        name = _hash(inbound.channel_name).lower()
        for key in (inbound.channel, name):
            if key and key in self._defaults:
                return Route(self._defaults[key], f"channel default ({name or inbound.channel})")
        router_handle = self.team.router_handle()
        if router_handle and inbound.to_app:
            return await self._ask_router(router_handle, inbound)
        return None

    async def _ask_router(self, router_handle: str, inbound: Inbound) -> Route:
        """The router's pick among the agents allowed in the message's channel; on any
        failure the router agent answers itself."""
        among = agents_allowed_in(self.team, inbound.channel, inbound.channel_name)
        if not among:
            return Route(router_handle, "router: no agent may answer here")
        model = self.team.agent(router_handle).model
        ctx = CallContext(router_handle, inbound.place, "", "route", model)
        try:
            choice = await router.choose(
                self.team, BoundModel(self.model_call, ctx), inbound.text, among
            )
        except NoModelConfigured:
            return Route(router_handle, "router: no model configured, answering itself")
        except router.RouterError as exc:  # Corral's own words about the router's answer
            log.warning("router failed, %s answers itself: %s", router_handle, exc)
            return Route(router_handle, f"router failed ({exc}); answering itself")
        except AllModelsFailed as exc:  # the reason is recorded: no provider's raw text
            log.warning("router failed, %s answers itself: %s", router_handle, exc)
            return Route(router_handle, f"router failed ({plain_reason(exc)}); answering itself")
        except Exception:  # a routing failure must never lose the message
            log.exception("router raised, %s answers itself", router_handle)
            return Route(router_handle, "router failed (internal error); answering itself")
        return Route(choice.agent, f"router: {choice.reason}", choice.difficulty)


def _hash(name: str) -> str:
    name = name.strip()
    return "" if not name else name if name.startswith("#") else f"#{name}"


def channel_default(team: Team, *channel: str) -> str | None:
    """The agent a channel known by any of ``channel`` (id, name) defaults to, if any."""
    defaults = _channel_defaults(team)
    for name in channel:
        if name and (found := defaults.get(name) or defaults.get(channel_key(name))):
            return found
    return None


def _channel_defaults(team: Team) -> dict[str, str]:
    """Channel (id or #name, as written in team.yaml) → the agent it defaults to."""
    defaults: dict[str, str] = {}
    for handle, agent in team.agents.items():
        for channel in agent.channels:
            defaults.setdefault(channel if not channel.startswith("#") else channel.lower(), handle)
    return defaults
