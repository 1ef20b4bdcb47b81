"""``/corral audit`` through the command table, on SQLite and PostgreSQL: admins read a
table of the latest entries, filtered and capped; anyone else is refused politely, and
the refusal is audited. Also the audit points of the commands (``/memory add``) and of a
configuration load."""

from __future__ import annotations

import json
import time
from pathlib import Path

from harness import make_team

from corral.agents.config_audit import loaded_config, record_config_load
from corral.bot.commands.audit import SHOWN
from corral.bot.commands.registry import CommandContext, CommandReply
from corral.bot.commands.table import dispatch
from corral.storage.audit import Where
from corral.storage.store import Storage

TEAM = make_team(roles={"admins": ["U0ADMIN"]})


def _context(storage: Storage, user: str, now: float | None = None) -> CommandContext:
    clock = (lambda: now) if now is not None else time.time
    return CommandContext(
        team=TEAM, storage=storage, user=user, platform="slack", channel="C0OPS", clock=clock
    )


async def _run(storage: Storage, line: str, user: str = "U0ADMIN") -> CommandReply:
    return await dispatch(_context(storage, user), line)


async def test_a_non_admin_is_refused_politely_and_the_refusal_is_audited(
    storage: Storage,
) -> None:
    await storage.audit.record("U1", "memory.forget", "7", "a secret fact")
    refused = await _run(storage, "/corral audit", user="U2")
    assert not refused.ok and refused.ephemeral
    assert refused.text.startswith("Sorry, only admins can read the audit.")
    assert "memory.forget" not in refused.text and "a secret fact" not in refused.text
    (entry, _) = await storage.audit.recent()
    assert (entry.actor, entry.action, entry.subject, entry.outcome) == (
        "U2",
        "permission.refused",
        "/corral audit",
        "refused",
    )
    assert entry.where == Where("slack", "C0OPS")


async def test_an_admin_reads_a_table_newest_first(storage: Storage) -> None:
    await storage.audit.record("U1", "memory.forget", "7")
    await storage.audit.record(
        "agent:beaver",
        "tool.call",
        "post_message",
        '{"channel": "#releases"}',
        agent="beaver",
        where=Where("slack", "C0DEV", "1700000000.000100"),
        outcome="waiting",
    )
    reply = await _run(storage, "/corral audit")
    assert reply.ok and reply.ephemeral
    head, headings, newest, oldest = reply.text.splitlines()
    assert head == "*Audit*, newest first: 2 entries"
    assert headings.split() == ["`when", "who", "action", "subject", "agent", "where", "outcome`"]
    assert newest.split()[2:] == [
        "agent:beaver",
        "tool.call",
        "post_message",
        "beaver",
        "slack",
        "C0DEV",
        "1700000000.000100",
        "waiting`",
    ]
    assert oldest.split()[2:] == ["U1", "memory.forget", "7", "-", "-", "-`"]
    # The columns line up: every row is as wide as the headings' row, before trimming.
    assert newest.index("tool.call") == headings.index("action") == oldest.index("memory.forget")


async def test_filters_by_agent_action_and_age(storage: Storage) -> None:
    await storage.audit.record("agent:owl", "tool.call", "remember", agent="owl")
    await storage.audit.record("agent:roo", "tool.call", "recall", agent="roo")
    await storage.audit.record("U1", "memory.add", "3", agent="owl")

    owl = await _run(storage, "/corral audit --agent @Owl")
    assert "remember" in owl.text and "recall" not in owl.text and "memory.add" in owl.text
    tools = await _run(storage, "/corral audit --action tool.")
    assert "remember" in tools.text and "recall" in tools.text and "memory.add" not in tools.text
    both = await _run(storage, "/corral audit --agent owl --action tool.")
    assert both.text.splitlines()[0] == "*Audit*, newest first: 1 entry"

    later = time.time() + 3 * 3600
    recent = await dispatch(_context(storage, "U0ADMIN", now=later), "/corral audit --since 2h")
    assert recent.text == "No audit entries match."
    wide = await dispatch(_context(storage, "U0ADMIN", now=later), "/corral audit --since 1d")
    assert wide.text.startswith("*Audit*, newest first: 3 entries")
    forever = await dispatch(
        _context(storage, "U0ADMIN", now=later), "/corral audit --since 99999999d"
    )
    assert forever.text.startswith("*Audit*, newest first: 3 entries")

    bad = await _run(storage, "/corral audit --since yesterday")
    assert not bad.ok
    assert bad.text.startswith("--since: `yesterday` is not an interval such as 30s")
    assert "Usage: `/corral audit [--agent NAME] [--since AGE] [--action PREFIX]`" in bad.text


async def test_the_table_is_capped_and_says_how_many_more(storage: Storage) -> None:
    for n in range(SHOWN + 7):
        await storage.audit.record("U1", "memory.add", str(n))
    reply = await _run(storage, "/corral audit")
    lines = reply.text.splitlines()
    assert lines[0].startswith(f"*Audit*, newest first: {SHOWN + 7} entries; the latest 50")
    assert "7 more" in lines[0] and "corral audit --json" in lines[0]
    assert len(lines) == 2 + SHOWN
    assert lines[2].split()[4] == str(SHOWN + 6)


async def test_odd_values_stay_on_one_line_of_the_table(storage: Storage) -> None:
    await storage.audit.record("U1", "memory.add", "a `quoted`\nsubject " + "x" * 100)
    reply = await _run(storage, "/corral audit")
    row = reply.text.splitlines()[2]
    assert row.count("`") == 2 and "a 'quoted' subject xxx" in row and "…" in row


async def test_memory_add_is_audited_with_where_and_agent(storage: Storage) -> None:
    # Writing into an agent's memory is an admin's action.
    admin = "U0ADMIN"
    await _run(storage, "/memory add Deploy keys live in Vault --agent @beaver", user=admin)
    await _run(storage, "/memory add deploy keys live in vault --agent beaver", user=admin)
    again, first = await storage.audit.query(action_prefix="memory.add")
    assert (first.actor, first.subject, first.agent, first.outcome) == (admin, "1", "beaver", "ok")
    assert first.detail == "Deploy keys live in Vault" and first.where == Where("slack", "C0OPS")
    assert (again.actor, again.subject, again.outcome) == (admin, "1", "known")


async def test_config_load_is_recorded_when_the_file_changes_only(
    storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(
        "models: {fast: [anthropic/claude-haiku-4-5]}\n"
        "agents:\n"
        "  roo: {display_name: Roo, role: Ops, instructions: Run ops., model: fast}\n"
        "  owl: {display_name: Owl, role: QA, instructions: Test., model: fast}\n"
    )
    from corral.agents.team_loader import load_team

    assert await record_config_load(storage.audit, loaded_config(path, load_team(path)))
    assert not await record_config_load(storage.audit, loaded_config(path, load_team(path)))
    path.write_text(
        "models: {fast: [anthropic/claude-haiku-4-5]}\n"
        "agents:\n"
        "  roo: {display_name: Roo, role: Ops, instructions: Run ops well., model: fast}\n"
        "  fox: {display_name: Fox, role: Sales, instructions: Sell., model: fast}\n"
        "roles: {admins: [U0ADMIN]}\n"
    )
    assert await record_config_load(storage.audit, loaded_config(path, load_team(path)))
    changed, first = await storage.audit.query(action_prefix="config.load")
    assert (first.actor, first.subject, first.outcome) == ("corral", str(path.resolve()), "ok")
    before, after = json.loads(first.detail), json.loads(changed.detail)
    assert before["added"] == ["agents.owl", "agents.roo", "models"]
    assert (after["added"], after["removed"], after["changed"]) == (
        ["agents.fox", "roles"],
        ["agents.owl"],
        ["agents.roo"],
    )
    assert after["sha256"] != before["sha256"] and len(after["sha256"]) == 64
    # Hashes only: nothing of the file's text is kept.
    assert "Sell" not in changed.detail and "U0ADMIN" not in changed.detail
