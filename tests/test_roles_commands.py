"""Admin commands through the command table, as a person, an admin, the console and a
shell would run them, on SQLite and PostgreSQL: schedules, budgets, agents' memories,
promote and forgetting others' memories are for admins; a refusal names the admins and
is audited; what a person sees of the memories."""

from __future__ import annotations

import pytest
from harness import make_team

from corral.agents.team import Team
from corral.bot.commands.registry import CommandContext, CommandReply
from corral.bot.commands.table import dispatch
from corral.storage.audit import AuditEntry, Where
from corral.storage.schedules import ScheduleSpec
from corral.storage.store import Storage

ADMIN, BOSS, PERSON = "U0ADMIN", "U0BOSS", "U0PERSON"
HERE, ELSEWHERE = "C0HERE", "C0ELSEWHERE"


def team(admins: list[str] | None = None) -> Team:
    return make_team(roles={"admins": [ADMIN, BOSS] if admins is None else admins})


async def run(
    storage: Storage,
    line: str,
    user: str = PERSON,
    *,
    platform: str = "slack",
    shell: bool = False,
    admins: list[str] | None = None,
) -> CommandReply:
    ctx = CommandContext(team(admins), storage, user, platform, HERE, shell=shell)
    return await dispatch(ctx, line)


async def last_audit(storage: Storage) -> AuditEntry:
    return (await storage.audit.recent(1))[0]


REFUSED = [
    (
        '/corral schedule add "0 9 * * 1-5" @roo #ops Standup',
        "/corral schedule add",
        "Sorry, only admins can add schedules. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/corral schedule remove standup",
        "/corral schedule remove",
        "Sorry, only admins can remove schedules. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/corral schedule pause standup",
        "/corral schedule pause",
        "Sorry, only admins can pause schedules. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/corral schedule resume standup",
        "/corral schedule resume",
        "Sorry, only admins can resume schedules. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/corral budget beaver +20",
        "/corral budget",
        "Sorry, only admins can raise a budget. Ask <@U0ADMIN> or <@U0BOSS> to run "
        "`/corral budget beaver +20`.",
    ),
    (
        "/memory add Deploy keys live in Vault --agent beaver",
        "/memory add --agent",
        "Sorry, only admins can write into an agent's memory. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/memory list --agent beaver",
        "/memory list --agent",
        "Sorry, only admins can see an agent's memories. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/memory search vault --agent beaver",
        "/memory search --agent",
        "Sorry, only admins can see an agent's memories. Ask <@U0ADMIN> or <@U0BOSS>.",
    ),
    (
        "/memory promote 1",
        "/memory promote",
        "Sorry, only admins can promote a memory to the team. Ask <@U0ADMIN> or <@U0BOSS> "
        "to run `/memory promote #1`.",
    ),
]


@pytest.mark.parametrize(("line", "command", "text"), REFUSED, ids=[r[1] for r in REFUSED])
async def test_a_person_is_refused_politely_and_the_refusal_is_audited(
    storage: Storage, line: str, command: str, text: str
) -> None:
    await storage.memory.add(
        "Deploy keys live in Vault", scope="agent", agent="beaver", author=ADMIN
    )
    reply = await run(storage, line)
    assert (reply.text, reply.ok) == (text, False)
    entry = await last_audit(storage)
    assert (entry.actor, entry.action, entry.subject, entry.outcome) == (
        PERSON,
        "permission.refused",
        command,
        "refused",
    )
    assert entry.where == Where("slack", HERE)
    # Nothing was done: no schedule, no raise, the agent's memory still its own.
    assert await storage.schedules.all() == []
    assert await storage.spend.raised("2026-01-01") == {}
    (memory,) = await storage.memory.list()
    assert (memory.scope, memory.agent) == ("agent", "beaver")


async def test_a_team_without_admins_says_where_to_name_them(storage: Storage) -> None:
    reply = await run(storage, "/corral schedule add every 1h @roo #ops Hi", admins=[])
    assert not reply.ok
    assert reply.text == (
        "Sorry, only admins can add schedules, and the team has none yet: their user ids go "
        "under `roles.admins` in team.yaml."
    )


async def test_an_admin_changes_schedules_and_each_change_is_audited_where_it_was_made(
    storage: Storage,
) -> None:
    added = await run(storage, "/corral schedule add every 1h @roo #ops Check --name check", BOSS)
    assert added.ok and added.text.startswith("Added `check`: @roo in #ops, every 1h (UTC)")
    assert (await run(storage, "/corral schedule pause check", BOSS)).ok
    assert (await run(storage, "/corral schedule resume check", BOSS)).ok
    # An approver who is not an admin may not (approvals stay theirs).
    approver = await run(storage, "/corral schedule remove check", "U0LEAD")
    assert not approver.ok and approver.text.startswith("Sorry, only admins can remove")
    assert (await run(storage, "/corral schedule remove check", ADMIN)).text == "Removed `check`."
    audit = [(e.actor, e.action, e.subject, e.where) for e in await storage.audit.recent()]
    assert audit == [
        (ADMIN, "schedule.remove", "check", Where("slack", HERE)),
        ("U0LEAD", "permission.refused", "/corral schedule remove", Where("slack", HERE)),
        (BOSS, "schedule.resume", "check", Where("slack", HERE)),
        (BOSS, "schedule.pause", "check", Where("slack", HERE)),
        (BOSS, "schedule.add", "check", Where("slack", HERE)),
    ]


async def test_the_shell_and_the_console_are_the_operators(storage: Storage) -> None:
    shell = await run(
        storage, "/corral schedule add every 2h @roo #ops Tidy --name tidy", "ops", shell=True
    )
    assert shell.ok, shell.text
    raised = await run(storage, "/corral budget team +5", "ops", platform="console", shell=True)
    assert raised.ok, raised.text
    console = await run(storage, "/memory add Console fact --agent owl", "you", platform="console")
    assert console.ok, console.text
    audit = [(e.actor, e.action, e.where.platform) for e in await storage.audit.recent()]
    assert audit[-2:] == [("ops", "budget.raise", "shell"), ("ops", "schedule.add", "shell")]
    (record,) = await storage.schedules.all()
    assert (record.source, record.created_by) == ("shell", "ops")


async def test_forgetting_is_for_the_author_or_an_admin(storage: Storage) -> None:
    mine = await run(storage, "/memory add My own note")
    theirs = await run(storage, "/memory add Someone else's note", "U0OTHER")
    assert mine.ok and theirs.ok
    assert (await run(storage, "/memory forget 1")).text == "Forgot `#1`: My own note"
    refused = await run(storage, "/memory forget 2")
    assert refused.text == (
        "Sorry, only admins can forget a memory someone else wrote. Ask <@U0ADMIN> or "
        "<@U0BOSS> to run `/memory forget #2`."
    )
    assert (await run(storage, "/memory forget 2", ADMIN)).ok
    entries = await storage.audit.recent()
    audit = [(e.actor, e.action, e.subject) for e in entries if e.action != "memory.add"]
    assert audit == [
        (ADMIN, "memory.forget", "2"),
        (PERSON, "permission.refused", "/memory forget"),
        (PERSON, "memory.forget", "1"),
    ]


async def test_an_admin_writes_into_and_promotes_an_agents_memory(storage: Storage) -> None:
    added = await run(storage, "/memory add Customer X prefers email --agent roo", ADMIN)
    assert added.text == "Remembered `#1` (agent): Customer X prefers email"
    promoted = await run(storage, "/memory promote 1", ADMIN)
    assert promoted.text == "Promoted roo's `#1` to the team: Customer X prefers email"
    entry = await last_audit(storage)
    assert (entry.actor, entry.action, entry.agent, entry.where) == (
        ADMIN,
        "memory.promote",
        "roo",
        Where("slack", HERE),
    )


async def seed_memories(storage: Storage) -> None:
    await storage.memory.add("Team fact", scope="team", author=ADMIN)
    await storage.memory.add("Fact of this channel", scope="channel", channel=HERE, author=ADMIN)
    await storage.memory.add(
        "Fact of another channel", scope="channel", channel=ELSEWHERE, author=ADMIN
    )
    await storage.memory.add("Roo's private fact", scope="agent", agent="roo", author="agent:roo")


async def test_a_person_sees_the_teams_memories_and_this_channels(storage: Storage) -> None:
    await seed_memories(storage)
    seen = (await run(storage, "/memory list")).text
    assert "Team fact" in seen and "Fact of this channel" in seen
    assert "another channel" not in seen and "private" not in seen
    found = (await run(storage, "/memory search fact")).text
    assert "Team fact" in found and "Fact of this channel" in found
    assert "another channel" not in found and "private" not in found
    # An admin sees every memory, and one agent's with --agent.
    everything = (await run(storage, "/memory list", ADMIN)).text
    assert len(everything.splitlines()) == 4
    assert "Roo's private fact" in (await run(storage, "/memory list --agent roo", ADMIN)).text
    assert (
        "Roo's private fact"
        in (await run(storage, "/memory search private --agent roo", ADMIN)).text
    )


async def test_the_store_lists_what_people_in_channels_may_see(storage: Storage) -> None:
    await seed_memories(storage)

    async def texts(channels: list[str]) -> set[str]:
        return {m.text for m in await storage.memory.list(seen_in=channels)}

    assert await texts([]) == {"Team fact"}
    assert await texts([HERE]) == {"Team fact", "Fact of this channel"}
    assert await texts([HERE, ELSEWHERE]) == {
        "Team fact",
        "Fact of this channel",
        "Fact of another channel",
    }
    assert len(await storage.memory.list()) == 4


@pytest.mark.parametrize(
    ("when", "ok"),
    [
        ("every 30s", False),
        ("every 59s", False),
        ("every 1m", True),
        ('"* * * * *"', True),
        ('"*/5 * * * *"', True),
    ],
)
async def test_a_schedule_fires_every_minute_at_the_most(
    storage: Storage, when: str, ok: bool
) -> None:
    reply = await run(storage, f"/corral schedule add {when} @roo #ops Tick", ADMIN)
    assert reply.ok is ok, reply.text
    if not ok:
        shown = when.removeprefix("every ")
        assert reply.text.startswith(
            f"`{shown}` is too often: a schedule fires at most every 1m (each fire is an "
            "agent's run)."
        )
        assert await storage.schedules.all() == []


async def test_a_schedule_is_run_by_hand_by_an_admin_or_whoever_made_it(storage: Storage) -> None:
    spec = ScheduleSpec("roo", "#ops", "Tick.", every="1h")
    await storage.schedules.add(spec, source="chat", created_by=PERSON, name="mine")
    await storage.schedules.add(spec, source="chat", created_by=ADMIN, name="theirs")
    # No scheduler runs in this context: getting that far means the run was allowed.
    no_scheduler = "No scheduler runs here"
    assert (await run(storage, "/corral schedule run mine")).text.startswith(no_scheduler)
    assert (await run(storage, "/corral schedule run theirs", BOSS)).text.startswith(no_scheduler)
    refused = await run(storage, "/corral schedule run theirs")
    assert refused.text == (
        "Sorry, only admins can run `theirs`, which someone else made. Ask <@U0ADMIN> or "
        "<@U0BOSS> to run `/corral schedule run theirs`."
    )
    entry = await last_audit(storage)
    assert (entry.actor, entry.action, entry.subject) == (
        PERSON,
        "permission.refused",
        "/corral schedule run",
    )
