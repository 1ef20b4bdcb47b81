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


class _DecisionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A decision button; subclasses say which decision, and their custom id's template.
    (This class's own template matches nothing, so only the subclasses are dispatched.)"""

    action = ""
    label = ""
    style = discord.ButtonStyle.secondary
    approves = False

    def __init__(self, approval_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label=self.label, style=self.style, custom_id=f"{self.action}:{approval_id}"
            )
        )
        self.approval_id = approval_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction[Any], item: discord.ui.Item[Any], match: Any, /
    ) -> _DecisionButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        await _dispatch(interaction, self.approval_id, self.approves)


class ApproveButton(_DecisionButton, template=APPROVE_ACTION + r":(?P<id>[\w-]+)"):
    """**Approve**: the paused run goes on."""

    action = APPROVE_ACTION
    label = "Approve"
    style = discord.ButtonStyle.success
    approves = True


class RejectButton(_DecisionButton, template=REJECT_ACTION + r":(?P<id>[\w-]+)"):
    """**Reject**: the agent is told, and answers accordingly."""

    action = REJECT_ACTION
    label = "Reject"
    style = discord.ButtonStyle.danger


def approval_view(approval_id: str) -> discord.ui.View:
    """The two buttons for one approval request (no timeout: they work until decided)."""
    view = discord.ui.View(timeout=None)
    view.add_item(ApproveButton(approval_id))
    view.add_item(RejectButton(approval_id))
    return view
