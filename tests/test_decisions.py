"""The one decision action every surface calls: who may decide, what is refused, and
that a refused decision leaves the request as it was."""

from __future__ import annotations

from fakes.model_server import CallTool, Reply
from harness import Harness

from corral.bot.decisions import ClickedMessage, DecisionContext, decide
from corral.storage.approvals import ApprovalRecord
from corral.storage.inbox import work_id

ADMIN = "U0ADMIN"


def context(harness: Harness, platform: str = "test") -> DecisionContext:
    return DecisionContext(harness.team, harness.storage.approvals, harness.workers, platform)


async def approval(harness: Harness, message_id: str = "t1") -> ApprovalRecord:
    harness.server.script("smart-a", CallTool("post_message", {"channel": "#x", "text": "hi"}))
    await harness.say("@beaver announce it", message_id=message_id)
    record = await harness.storage.approvals.get(harness.adapter.posts[-1][1].approval_id)
    assert record is not None and record.status == "pending"
    return record


async def escalation(harness: Harness) -> ApprovalRecord:
    harness.server.script(
        "fast-a", CallTool("escalate", {"reason": "the key expired"}), Reply("Asked.")
    )
    await harness.say("@roo deploy")
    (record,) = [r for r in await harness.storage.approvals.pending() if r.kind == "escalation"]
    return record


async def test_an_approval_is_recorded_and_its_run_goes_on(harness: Harness) -> None:
    record = await approval(harness)
    harness.server.script("smart-a", Reply("Posted."))
    result = await decide(context(harness), record.id, "approve", ADMIN)
    assert (result.status, result.verdict) == ("ok", f"Approved by <@{ADMIN}>")
    await harness.workers.wait(work_id("decision", record.id))
    assert harness.adapter.texts("answer")[-1] == "Posted."
    decided = await harness.storage.approvals.get(record.id)
    assert decided is not None and (decided.status, decided.decided_by) == ("approved", ADMIN)


async def test_resolve_closes_an_escalation(harness: Harness) -> None:
    record = await escalation(harness)
    result = await decide(context(harness), record.id, "resolve", ADMIN)
    assert (result.status, result.verdict) == ("ok", f"Resolved by <@{ADMIN}>")
    resolved = await harness.storage.approvals.get(record.id)
    assert resolved is not None and (resolved.status, resolved.decided_by) == ("resolved", ADMIN)
    again = await decide(context(harness), record.id, "resolve", ADMIN)
    assert (again.status, again.text) == (
        "decided",
        f"{record.id} was already resolved by <@{ADMIN}>.",
    )


async def test_a_non_approver_is_refused(harness: Harness) -> None:
    record = await escalation(harness)
    result = await decide(context(harness), record.id, "resolve", "U0SOMEONE")
    assert (result.status, result.text, result.verdict) == (
        "not_allowed",
        "Only the team's approvers can decide this.",
        "",
    )
    (still,) = await harness.storage.approvals.pending()
    assert still.status == "open"


async def test_whoever_types_in_the_console_may_decide(harness: Harness) -> None:
    record = await escalation(harness)
    result = await decide(context(harness, "console"), record.id, "resolve", "alice")
    assert result.ok


async def test_a_verdict_of_the_other_kind_is_refused(harness: Harness) -> None:
    asked = await approval(harness)
    escalated = await escalation(harness)
    wrong = await decide(context(harness), escalated.id, "approve", ADMIN)
    assert wrong.status == "wrong_kind" and "resolve it" in wrong.text
    wrong = await decide(context(harness), asked.id, "resolve", ADMIN)
    assert wrong.status == "wrong_kind" and "approve or reject it" in wrong.text
    assert {r.id for r in await harness.storage.approvals.pending()} == {asked.id, escalated.id}


async def test_an_unknown_id_is_refused(harness: Harness) -> None:
    result = await decide(context(harness), "a-nothing", "approve", ADMIN)
    assert (result.status, result.text) == ("unknown", "There is no request a-nothing.")


async def test_a_click_on_another_message_decides_nothing(harness: Harness) -> None:
    record = await approval(harness)
    await harness.storage.approvals.attach(record.id, "C0GEN", "1700000000.000100")
    for clicked in (
        ClickedMessage("C0GEN", "1700000000.000200"),  # another message of the channel
        ClickedMessage("C0DEV", "1700000000.000100"),  # the same ts in another channel
    ):
        result = await decide(context(harness), record.id, "approve", ADMIN, clicked)
        assert result.status == "wrong_message" and result.verdict == ""
        assert (
            result.text
            == f"This button does not belong to {record.id}'s request; nothing was decided."
        )
    (still,) = await harness.storage.approvals.pending()
    assert still.status == "pending"
    own = ClickedMessage("C0GEN", "1700000000.000100")
    harness.server.script("smart-a", Reply("Posted."))
    assert (await decide(context(harness), record.id, "approve", ADMIN, own)).ok
