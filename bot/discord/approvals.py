"""Approve / Reject buttons as persistent Discord components.

The buttons are :class:`discord.ui.DynamicItem` s whose custom id carries the approval's
id (``corral_approve:<id>``), registered on the client at start, so a click is handled
by whichever process runs — also after a restart, with no view kept in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

APPROVE_ACTION = "corral_approve"
REJECT_ACTION = "corral_reject"

#: What a click calls: (interaction, approval id, approved?).
Decide = Callable[[discord.Interaction[Any], str, bool], Awaitable[None]]


class DecidingClient(discord.Client):
    """A client that knows how to carry out a decision (set by the Discord wiring)."""

    decide: Decide | None = None


async def _dispatch(
    interaction: discord.Interaction[Any], approval_id: str, approved: bool
) -> None:
    client = interaction.client
    decide = client.decide if isinstance(client, DecidingClient) else None
    if decide is None:
        await interaction.response.send_message(
            "This Corral cannot decide approvals right now.", ephemeral=True
        )
        return
    await decide(interaction, approval_id, approved)


class ApproveButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=APPROVE_ACTION + r":(?P<id>[\w-]+)",
):
    """**Approve**: the paused run goes on."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Approve",
                style=discord.ButtonStyle.success,
                custom_id=f"{APPROVE_ACTION}:{approval_id}",
            )
        )
        self.approval_id = approval_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: Any, /
    ) -> ApproveButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _dispatch(interaction, self.approval_id, True)


class RejectButton(
    discord.ui.DynamicItem[discord.ui.Button[Any]],
    template=REJECT_ACTION + r":(?P<id>[\w-]+)",
):
    """**Reject**: the agent is told, and answers accordingly."""

    def __init__(self, approval_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Reject",
                style=discord.ButtonStyle.danger,
                custom_id=f"{REJECT_ACTION}:{approval_id}",
            )
        )
        self.approval_id = approval_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: Any, /
    ) -> RejectButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _dispatch(interaction, self.approval_id, False)


def approval_view(approval_id: str) -> discord.ui.View:
    """The two buttons for one approval request (no timeout: they work until decided)."""
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(approval_id))
    view.add_item(RejectButton(approval_id))
    return view
