"""Approve, reject and resolve: one platform-neutral action that every surface (Slack,
Discord, the console) calls and whose result it renders.

The action says who may decide, checks that the decision is about the request it names
(the right kind, the clicked message), records it through the workers, and returns a
value: the text to show the person, and on success the verdict line to stamp on the
request ("Approved by <@U0ADMIN>").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from corral.agents.team import Team
from corral.storage.approvals import UNDECIDED, ApprovalKind, ApprovalRecord

Verdict = Literal["approve", "reject", "resolve"]
#: How a decision ended: ``ok``, or why nothing was decided.
DecisionStatus = Literal["ok", "not_allowed", "unknown", "decided", "wrong_kind", "wrong_message"]

#: Which kinds of request each verdict is about: a tool call or a spent budget (approve
#: raises it for the day), an escalation.
KINDS_OF: dict[Verdict, tuple[ApprovalKind, ...]] = {
    "approve": ("tool", "budget"),
    "reject": ("tool", "budget"),
    "resolve": ("escalation",),
}
VERDICT_WORD: dict[Verdict, str] = {
    "approve": "Approved",
    "reject": "Rejected",
    "resolve": "Resolved",
}
NOT_ALLOWED = "Only the team's approvers can decide this."
#: The platforms where whoever types may decide: the console's user runs Corral itself
#: (as for commands, see :class:`corral.bot.commands.registry.CommandContext`).
LOCAL_PLATFORMS = frozenset({"console"})


class Decider(Protocol):
    """What carries a decision out: the workers, which record it and continue the run."""

    async def decide(
        self, approval_id: str, approved: bool, by: str, kind: ApprovalKind = "tool"
    ) -> ApprovalRecord | None:
        """Approve or reject a paused tool call (or raise a spent budget, ``kind``
        ``budget``); None when nothing waits for it."""
        ...

    async def resolve(self, escalation_id: str, by: str) -> ApprovalRecord | None:
        """Close an open escalation; None when there is no open one of that id."""
        ...


class ApprovalReader(Protocol):
    """Where the requests are read (the storage's :class:`ApprovalStore`)."""

    async def get(self, approval_id: str) -> ApprovalRecord | None:
        """The request ``approval_id``, if it exists."""
        ...


class RequestMessages(Protocol):
    """Where an adapter records which message carries a request's buttons (the
    storage's :class:`ApprovalStore`): the one thing adapters need of the decisions."""

    async def attach(self, approval_id: str, channel: str, message_id: str) -> None:
        """Record that ``message_id`` in ``channel`` carries ``approval_id``'s buttons."""
        ...


def platform_mention(user: str) -> str:
    """How Slack and Discord write a mention of a user id."""
    return f"<@{user}>"


@dataclass(frozen=True)
class DecisionContext:
    """What a surface gives the action: the team (who may decide), the requests, the
    workers that carry decisions out, the surface's platform, and how it names a person
    in the verdict line."""

    team: Team
    approvals: ApprovalReader
    workers: Decider
    platform: str
    mention: Callable[[str], str] = platform_mention


@dataclass(frozen=True)
class ClickedMessage:
    """The platform message whose button was clicked: its channel and its id (Slack's
    ``ts``, Discord's message id)."""

    channel: str
    message_id: str


@dataclass(frozen=True)
class DecisionResult:
    """What came of a decision. ``text`` is for the person who decided (shown only to
    them where the platform can); ``verdict`` is the line to stamp on the request when
    the decision was made ("" otherwise)."""

    status: DecisionStatus
    text: str
    verdict: str = ""

    @property
    def ok(self) -> bool:
        """True when the decision was recorded."""
        return self.status == "ok"


def may_decide(team: Team, platform: str, user: str) -> bool:
    """Whether ``user`` on ``platform`` may approve, reject or resolve."""
    return platform in LOCAL_PLATFORMS or team.is_approver(user)


async def decide(
    ctx: DecisionContext,
    approval_id: str,
    verdict: Verdict,
    by: str,
    clicked: ClickedMessage | None = None,
) -> DecisionResult:
    """Decide ``approval_id`` as ``by`` (a platform user id); ``clicked`` is the message
    whose button was used (None for a typed command). Nothing is decided unless ``by``
    may decide, the request is of the verdict's kind, is still undecided, and — for a
    click — the clicked message is the one that carries the request."""
    if not may_decide(ctx.team, ctx.platform, by):
        return DecisionResult("not_allowed", NOT_ALLOWED)
    record = await ctx.approvals.get(approval_id)
    if record is None:
        return DecisionResult("unknown", f"There is no request {approval_id}.")
    if record.kind not in KINDS_OF[verdict]:
        return DecisionResult("wrong_kind", _wrong_kind(approval_id, record.kind))
    if clicked is not None and not _carries(record, clicked):
        return DecisionResult(
            "wrong_message",
            f"This button does not belong to {approval_id}'s request; nothing was decided.",
        )
    if record.status not in UNDECIDED:
        return DecisionResult("decided", _already(ctx, record))
    if verdict == "resolve":
        done = await ctx.workers.resolve(approval_id, by)
    else:
        done = await ctx.workers.decide(approval_id, verdict == "approve", by, record.kind)
    if done is None:
        # Someone else decided it in the meantime.
        latest = await ctx.approvals.get(approval_id)
        return DecisionResult("decided", _already(ctx, latest or record))
    line = f"{_verdict_word(record, verdict)} by {ctx.mention(by)}"
    return DecisionResult("ok", f"{approval_id}: {line}.", line)


def _verdict_word(record: ApprovalRecord, verdict: Verdict) -> str:
    """How the request's message is stamped: a budget says what the decision did."""
    if record.kind == "budget":
        step = float(record.state.get("step", 0))
        return f"Raised by ${step:g} for today" if verdict == "approve" else "Kept stopped"
    return VERDICT_WORD[verdict]


def _carries(record: ApprovalRecord, clicked: ClickedMessage) -> bool:
    """Whether ``clicked`` is the request's own message. A request posted before Corral
    recorded its message (an older version) has nothing to compare, and is let through."""
    if not record.message_id:
        return True
    return (record.message_channel, record.message_id) == (clicked.channel, clicked.message_id)


def _wrong_kind(approval_id: str, kind: ApprovalKind) -> str:
    if kind == "escalation":
        return f"{approval_id} is an escalation: resolve it rather than approve or reject it."
    return f"{approval_id} waits for an approval: approve or reject it rather than resolve it."


def _already(ctx: DecisionContext, record: ApprovalRecord) -> str:
    if record.status in UNDECIDED:
        return f"{record.id} could not be decided; try again."
    who = f" by {ctx.mention(record.decided_by)}" if record.decided_by else ""
    return f"{record.id} was already {record.status}{who}."
