"""``/memory`` for people, on SQLite and PostgreSQL: add, search, list, forget, promote,
export, and import of MEMORY.md (round trip, no duplicates)."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
from databases import new_database
from harness import make_team

from corral.bot.commands.memory import import_document
from corral.bot.commands.registry import CommandContext, CommandReply
from corral.bot.commands.table import dispatch
from corral.storage.memory import MemoryRecord
from corral.storage.store import Storage


def context(storage: Storage, user: str = "U1", platform: str = "test") -> CommandContext:
    return CommandContext(
        team=make_team(), storage=storage, user=user, platform=platform, channel="C0DEV"
    )


async def run(storage: Storage, line: str, user: str = "U1") -> CommandReply:
    return await dispatch(context(storage, user), line)


async def test_add_in_each_scope_and_search_ranked(storage: Storage) -> None:
    added = await run(storage, "/memory add The deploy window is Friday 3pm")
    assert added.text == "Remembered `#1` (team): The deploy window is Friday 3pm"
    assert not added.ephemeral
    assert (await run(storage, "/memory add the deploy  window is friday 3pm")).text.startswith(
        "Already remembered `#1` (team)"
    )
    beaver = await run(
        storage, "/memory add Deploy keys live in Vault --agent @Beaver", user="U0ADMIN"
    )
    assert beaver.text == "Remembered `#2` (agent): Deploy keys live in Vault"
    channel = await run(storage, "/memory add --channel C0DEV Deploy freeze until Monday")
    assert channel.text == "Remembered `#3` (channel): Deploy freeze until Monday"

    found = (
        await run(storage, "/memory search deploy window --agent beaver", user="U0ADMIN")
    ).text.splitlines()
    # Best match first; each line has the id, the scope, the author and the age.
    assert re.fullmatch(r"• `#1` \[team\] The deploy window is Friday 3pm — U1, \d+s ago", found[0])
    assert [line.split("]")[0] for line in found] == [
        "• `#1` [team",
        "• `#3` [channel:C0DEV",
        "• `#2` [agent:beaver",
    ]
    # Without --agent, Beaver's own memory is not among the results.
    assert "#2" not in (await run(storage, "/memory search deploy")).text
    assert (
        await run(storage, "/memory search kubernetes")
    ).text == "No memory matches “kubernetes”."


async def test_quoted_text_is_text_even_with_a_flag_in_it(storage: Storage) -> None:
    added = await run(storage, '/memory add "Pass --agent to pick one" --agent owl', "U0ADMIN")
    assert added.text == "Remembered `#1` (agent): Pass --agent to pick one"


async def test_add_refuses_what_it_cannot_store(storage: Storage) -> None:
    assert (await run(storage, "/memory add")).text.startswith("Say what to remember. Usage:")
    unknown = await run(storage, "/memory add Something --agent hawk")
    assert unknown.text.startswith("There is no agent `hawk`; the team is roo, beaver, owl")
    both = await run(storage, "/memory add x --agent owl --channel C1")
    assert both.text.startswith("A memory is an agent's or a channel's, not both")
    assert (await run(storage, "/memory add x --channel")).text.startswith("`--channel` needs")
    assert await storage.memory.list() == []


async def test_list_all_or_one_agents(storage: Storage) -> None:
    admin = "U0ADMIN"
    assert (await run(storage, "/memory list", admin)).text.startswith("No memories yet")
    await run(storage, "/memory add Team fact", admin)
    await run(storage, "/memory add Owl fact --agent owl", admin)
    assert [line[:8] for line in (await run(storage, "/memory list", admin)).text.splitlines()] == [
        "• `#2` [",
        "• `#1` [",
    ]
    assert (await run(storage, "/memory list --agent owl", admin)).text.startswith(
        "• `#2` [agent:owl] Owl fact"
    )


async def test_forget_is_for_the_author_or_an_admin_and_audited(storage: Storage) -> None:
    await run(storage, "/memory add Shared secret handshake", user="U1")
    await run(storage, "/memory add Another fact", user="U1")
    refused = await run(storage, "/memory forget 1", user="U2")
    assert refused.text == (
        "Sorry, only admins can forget a memory someone else wrote. "
        "Ask <@U0ADMIN> to run `/memory forget #1`."
    )
    assert (await run(storage, "/memory forget #1", user="U1")).text == (
        "Forgot `#1`: Shared secret handshake"
    )
    assert (await run(storage, "/memory forget 2", user="U0ADMIN")).text.startswith("Forgot `#2`")
    assert (await run(storage, "/memory forget 2")).text == "There is no memory `#2`."
    assert (await run(storage, "/memory forget 99999999999")).text.startswith("There is no")
    assert (await run(storage, "/memory forget one")).text.startswith("Give the memory's number")
    audit = [
        (e.actor, e.action, e.subject)
        for e in await storage.audit.recent()
        if e.action != "memory.add"
    ]
    assert audit == [
        ("U0ADMIN", "memory.forget", "2"),
        ("U1", "memory.forget", "1"),
        ("U2", "permission.refused", "/memory forget"),
    ]


async def test_promote_shares_an_agents_memory_and_is_audited(storage: Storage) -> None:
    private, _ = await storage.memory.add(
        "Customer X prefers email", scope="agent", agent="roo", author="agent:roo"
    )
    await run(storage, "/memory add Office closes at 6")
    duplicate, _ = await storage.memory.add(
        "office closes at 6", scope="agent", agent="owl", author="agent:owl"
    )
    assert (await run(storage, f"/memory promote {private.id}", user="U0ADMIN")).text == (
        f"Promoted roo's `#{private.id}` to the team: Customer X prefers email"
    )
    merged = await run(storage, f"/memory promote #{duplicate.id}", user="U0ADMIN")
    assert merged.text == (
        f"Promoted owl's `#{duplicate.id}` to the team (merged into `#2`, which the team "
        "already had): Office closes at 6"
    )
    assert (await run(storage, f"/memory promote {private.id}", user="U0ADMIN")).text == (
        f"`#{private.id}` is a team memory; only agents' are promoted."
    )
    assert (await run(storage, "/memory promote 42", user="U0ADMIN")).text == (
        "There is no memory `#42`."
    )
    promoted = await storage.audit.query(action_prefix="memory.promote")
    audit = [(e.actor, e.action) for e in promoted]
    assert audit == [("U0ADMIN", "memory.promote"), ("U0ADMIN", "memory.promote")]


async def test_export_then_import_into_an_empty_database_round_trips(
    storage: Storage, database_url: str, tmp_path: Path
) -> None:
    await run(storage, "/memory add The deploy window is Friday 3pm", user="U1")
    await run(storage, "/memory add Releases ship on Tuesdays", user="U2")
    await storage.memory.add("Multi-line\nrunbook <step> & more", scope="team", author="U3")
    await storage.memory.add("Owl's own", scope="agent", agent="owl", author="agent:owl")

    exported = await run(storage, "/memory export")
    assert exported.text.startswith("Team memory: 3 memories, as MEMORY.md.")
    assert exported.attachment is not None
    name, document = exported.attachment
    assert name == "MEMORY.md" and "Owl's own" not in document

    def team_of(memories: list[MemoryRecord]) -> list[tuple[str, str, datetime, datetime]]:
        return sorted((m.text, m.author, m.created_at, m.updated_at) for m in memories)

    original = team_of(await storage.memory.list(scope="team", limit=None))
    backend = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    async with new_database(backend, tmp_path) as url:
        empty = await Storage.open(url)
        try:
            ctx = context(empty, user="importer")
            first = await import_document(ctx, document, "MEMORY.md")
            assert first.text == "Imported MEMORY.md: 3 new memories, 0 already known."
            assert team_of(await empty.memory.list(scope="team", limit=None)) == original
            again = await import_document(ctx, document, "MEMORY.md")
            assert again.text == "Imported MEMORY.md: 0 new memories, 3 already known."
            assert team_of(await empty.memory.list(scope="team", limit=None)) == original
            # Imported memories are searchable at once.
            (found,) = await empty.memory.search("when is the deploy window")
            assert found.text == "The deploy window is Friday 3pm"
            audit = [(e.actor, e.action, e.detail) for e in await empty.audit.recent()]
            assert audit == [
                ("importer", "memory.import", "0 added, 3 merged"),
                ("importer", "memory.import", "3 added, 0 merged"),
            ]
        finally:
            await empty.close()


async def test_import_of_a_hand_written_file_says_what_it_skipped(storage: Storage) -> None:
    await run(storage, "/memory add Deploys happen on Fridays")
    document = "# Notes\n\nIntro text.\n\n- deploys happen on fridays\n- VPN is vpn.example.com\n"
    reply = await import_document(context(storage, user="alice"), document, "notes.md")
    assert reply.text.splitlines() == [
        "Imported notes.md: 1 new memory, 1 already known.",
        "1 line was not a memory and was skipped: each memory is a top-level `- ` item.",
    ]
    vpn = [m for m in await storage.memory.list() if m.text.startswith("VPN")]
    assert [(m.author, m.scope) for m in vpn] == [("alice", "team")]


@pytest.mark.parametrize("line", ["/memory help", "/memory"])
async def test_help_lists_every_memory_command(storage: Storage, line: str) -> None:
    listed = (await run(storage, line)).text
    for name in ("add", "search", "list", "forget", "promote", "export"):
        assert f"`/memory {name}" in listed
