"""Approve / Reject (approval requests) and Resolve (escalations) buttons as persistent
Discord components.

The buttons are :class:`discord.ui.DynamicItem` s whose custom id carries the request's
id (``corral_approve:<id>``), registered on the client at start, so a click is handled
by whichever process runs — also after a restart, with no view kept in memory.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import discord

from corral.bot.decisions import Verdict

APPROVE_ACTION = "corral_approve"
REJECT_ACTION = "corral_reject"
RESOLVE_ACTION = "corral_resolve"

#: What a click calls: (interaction, request id, verdict).
Decide = Callable[[discord.Interaction[Any], str, Verdict], Awaitable[None]]


class DecidingClient(discord.Client):
    """A client that knows how to carry out a decision (set by the Discord wiring)."""

    decide: Decide | None = None


async def _dispatch(
    interaction: discord.Interaction[Any], approval_id: str, verdict: Verdict
) -> None:
    client = interaction.client
    decide = client.decide if isinstance(client, DecidingClient) else None
    if decide is None:
        await interaction.response.send_message(
            "This Corral cannot decide approvals right now.", ephemeral=True
        )
        return
    await decide(interaction, approval_id, verdict)


class _DecisionButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=r"(?!)"):
    """A decision button; subclasses say which decision, and their custom id's template.
    (This class's own template matches nothing, so only the subclasses are dispatched.)"""

    action = ""
    label = ""
    style = discord.ButtonStyle.secondary
    verdict: Verdict

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
        await _dispatch(interaction, self.approval_id, self.verdict)


class ApproveButton(_DecisionButton, template=APPROVE_ACTION + r":(?P<id>[\w-]+)"):
    """**Approve**: the paused run goes on."""

    action = APPROVE_ACTION
    label = "Approve"
    style = discord.ButtonStyle.success
    verdict = "approve"


class RejectButton(_DecisionButton, template=REJECT_ACTION + r":(?P<id>[\w-]+)"):
    """**Reject**: the agent is told, and answers accordingly."""

    action = REJECT_ACTION
    label = "Reject"
    style = discord.ButtonStyle.danger
    verdict = "reject"


class ResolveButton(_DecisionButton, template=RESOLVE_ACTION + r":(?P<id>[\w-]+)"):
    """**Resolve**: the escalation is closed."""

    action = RESOLVE_ACTION
    label = "Resolve"
    verdict = "resolve"


#: Every decision button, registered on the client at start.
BUTTONS = (ApproveButton, RejectButton, ResolveButton)


def request_view(kind: str, approval_id: str) -> discord.ui.View | None:
    """The buttons for a request (no timeout: they work until decided): Approve and
    Reject for an approval, Resolve for an escalation; None for any other reply."""
    if not approval_id:
        return None
    if kind == "approval":
        buttons: tuple[_DecisionButton, ...] = (
            ApproveButton(approval_id),
            RejectButton(approval_id),
        )
    elif kind == "escalation":
        buttons = (ResolveButton(approval_id),)
    else:
        return None
    view = discord.ui.View(timeout=None)
    for button in buttons:
        view.add_item(button)
    return view
