"""Admin commands as people use them in Slack: signed slash commands through slack-bolt's
real request handling, each refused for a person (with what they see and the audit row)
and done for an admin; what a person sees of the memories."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes import slack_events as se
from fakes.model_server import FakeModelServer
from fakes.slack_server import FakeSlackServer
from test_slack_e2e import ADMIN, DEV, GENERAL, SlackRig, slack_rig

from corral.storage.audit import Where
from corral.storage.store import Storage

PERSON = se.USER_ID


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlackServer]:
    async with FakeSlackServer() as slack:
        slack.add_channel(GENERAL, "general")
        slack.add_channel(DEV, "dev")
        slack.add_user(PERSON, "alice", "Alice Liddell")
        slack.add_user(ADMIN, "admin", "Ada Admin")
        yield slack


@pytest.fixture
async def rig(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> AsyncIterator[SlackRig]:
    async with slack_rig(storage, model_server, fake_slack) as rig:
        yield rig


async def command(rig: SlackRig, name: str, text: str, user: str = PERSON) -> dict[str, Any]:
    response = await rig.send(se.slash_command(name, text, user_id=user, channel_id=GENERAL))
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_schedule_add_is_refused_to_a_person_and_done_for_an_admin(rig: SlackRig) -> None:
    add = 'schedule add "0 9 * * 1-5" @roo #ops Post the standup'
    refused = await command(rig, "/corral", add)
    assert refused == {
        "text": "Sorry, only admins can add schedules. Ask <@U0ADMIN>.",
        "response_type": "ephemeral",
    }
    assert await rig.storage.schedules.all() == []
    (entry,) = await rig.storage.audit.recent()
    assert (entry.actor, entry.action, entry.subject, entry.where) == (
        PERSON,
        "permission.refused",
        "/corral schedule add",
        Where("slack", GENERAL),
    )
    too_often = await command(rig, "/corral", "schedule add every 10s @roo #ops Ping", ADMIN)
    assert too_often["text"].startswith("`10s` is too often: a schedule fires at most every 1m")
    added = await command(rig, "/corral", add, ADMIN)
    assert added["response_type"] == "in_channel"
    assert added["text"].startswith("Added `roo-1`: @roo in #ops")
    entry = (await rig.storage.audit.recent())[0]
    assert (entry.actor, entry.action, entry.where) == (
        ADMIN,
        "schedule.add",
        Where("slack", GENERAL),
    )


async def test_memory_list_and_promote_as_a_person_and_as_an_admin(rig: SlackRig) -> None:
    memory = rig.storage.memory
    await memory.add("Invoices go out monthly", scope="team", author=ADMIN)
    await memory.add("Freeze until Monday", scope="channel", channel=GENERAL, author=ADMIN)
    await memory.add("The dev room's secret plan", scope="channel", channel=DEV, author=ADMIN)
    private, _ = await memory.add(
        "Customer X prefers email", scope="agent", agent="roo", author="agent:roo"
    )

    listed = (await command(rig, "/memory", "list"))["text"]
    assert "Invoices go out monthly" in listed and "Freeze until Monday" in listed
    assert "secret plan" not in listed and "Customer X" not in listed
    refused = await command(rig, "/memory", "list --agent roo")
    assert refused["text"] == "Sorry, only admins can see an agent's memories. Ask <@U0ADMIN>."
    not_promoted = await command(rig, "/memory", f"promote {private.id}")
    assert not_promoted["text"] == (
        "Sorry, only admins can promote a memory to the team. Ask <@U0ADMIN> to run "
        f"`/memory promote #{private.id}`."
    )
    written = await command(rig, "/memory", "add Call them Fridays --agent roo")
    assert written["text"].startswith("Sorry, only admins can write into an agent's memory.")
    refusals = [
        (e.subject, e.where)
        for e in await rig.storage.audit.recent()
        if e.action == "permission.refused"
    ]
    assert refusals == [
        ("/memory add --agent", Where("slack", GENERAL)),
        ("/memory promote", Where("slack", GENERAL)),
        ("/memory list --agent", Where("slack", GENERAL)),
    ]
    assert (await memory.get(private.id)) == private

    everything = (await command(rig, "/memory", "list", ADMIN))["text"]
    assert "secret plan" in everything and "Customer X prefers email" in everything
    promoted = await command(rig, "/memory", f"promote {private.id}", ADMIN)
    assert promoted["text"] == (
        f"Promoted roo's `#{private.id}` to the team: Customer X prefers email"
    )
    assert "Customer X prefers email" in (await command(rig, "/memory", "list"))["text"]
