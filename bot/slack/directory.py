"""Names of Slack channels and users, looked up through the Web API and cached."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from corral.bot.inbound import Inbound

log = logging.getLogger("corral.slack")

#: How long the members of a user group are trusted before Slack is asked again: a person
#: added to (or removed from) a group is let in (or kept out) within this time.
GROUP_TTL_S = 300.0


class Directory:
    """Channel ids ↔ ``#names`` and user ids → display names, cached for the process;
    the members of user groups, cached for :data:`GROUP_TTL_S`."""

    def __init__(
        self, client: AsyncWebClient, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.client = client
        self.clock = clock
        self._channel_names: dict[str, str] = {}
        self._channel_ids: dict[str, str] = {}
        self._user_names: dict[str, str] = {}
        self._groups: dict[str, tuple[float, frozenset[str]]] = {}

    def known_channel_name(self, channel_id: str) -> str | None:
        """The channel's ``#name`` if this process knows it already ("" for a DM); None
        when only Slack could say. Never a Web API call: fit for an ack's path."""
        return self._channel_names.get(channel_id)

    def known_user_name(self, user_id: str) -> str | None:
        """A person's display name if this process knows it already; None when only
        Slack could say. Never a Web API call: fit for an ack's path."""
        return self._user_names.get(user_id)

    async def channel_name(self, channel_id: str) -> str:
        """``#name`` of a channel ("" for DMs or when Slack will not say)."""
        if channel_id not in self._channel_names:
            name = ""
            try:
                info = await self.client.conversations_info(channel=channel_id)
                channel = info.get("channel") or {}
                if channel.get("name") and not channel.get("is_im"):
                    name = f"#{channel['name']}"
            except SlackApiError as exc:
                log.warning("conversations.info %s: %s", channel_id, exc.response.get("error"))
            self._remember_channel(channel_id, name)
        return self._channel_names[channel_id]

    async def channel_id(self, channel: str) -> str:
        """The id of ``channel``, given as an id or a ``#name``."""
        if not channel.startswith("#"):
            return channel
        name = channel.lower()
        if name not in self._channel_ids:
            cursor: str | None = None
            while True:
                page = await self.client.conversations_list(
                    types="public_channel,private_channel", limit=200, cursor=cursor
                )
                for found in page.get("channels") or []:
                    self._remember_channel(found["id"], f"#{found['name']}")
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if name in self._channel_ids or not cursor:
                    break
        if name not in self._channel_ids:
            raise LookupError(f"no Slack channel {channel} that Corral can see")
        return self._channel_ids[name]

    async def user_name(self, user_id: str) -> str:
        """A person's display name, or their id when Slack will not say."""
        if user_id not in self._user_names:
            name = user_id
            try:
                info = await self.client.users_info(user=user_id)
                user = info.get("user") or {}
                profile = user.get("profile") or {}
                name = (
                    profile.get("display_name")
                    or user.get("real_name")
                    or user.get("name")
                    or user_id
                )
            except SlackApiError as exc:
                log.warning("users.info %s: %s", user_id, exc.response.get("error"))
            self._user_names[user_id] = name
        return self._user_names[user_id]

    async def aliases(self, channel: str) -> tuple[str, ...]:
        """The other name of ``channel``: the ``#name`` of an id, the id of a ``#name``;
        none when Slack cannot say."""
        if channel.startswith("#"):
            try:
                return (await self.channel_id(channel),)
            except (LookupError, SlackApiError):
                return ()
        name = await self.channel_name(channel)
        return (name,) if name else ()

    async def group_members(self, group: str) -> frozenset[str]:
        """The user ids in the user group ``group`` (``S…``), from
        ``usergroups.users.list`` (scope ``usergroups:read``); nobody when Slack will not
        say, so that a group Corral cannot read lets no one in."""
        cached = self._groups.get(group)
        if cached is not None and self.clock() - cached[0] < GROUP_TTL_S:
            return cached[1]
        try:
            answer = await self.client.usergroups_users_list(usergroup=group)
            members = frozenset(str(u) for u in answer.get("users") or [])
        except SlackApiError as exc:
            error = exc.response.get("error")
            log.warning("usergroups.users.list %s: %s", group, error)
            if cached is not None:
                # Slack is briefly away: the last answer is better than shutting people out.
                return cached[1]
            members = frozenset()
        self._groups[group] = (self.clock(), members)
        return members

    async def in_group(self, inbound: Inbound, group: str) -> bool:
        """Whether the sender of ``inbound`` is in the user group ``group``; only ``S…``
        ids are user groups."""
        return group.startswith("S") and inbound.user in await self.group_members(group)

    def _remember_channel(self, channel_id: str, name: str) -> None:
        self._channel_names[channel_id] = name
        if name:
            self._channel_ids[name.lower()] = channel_id
