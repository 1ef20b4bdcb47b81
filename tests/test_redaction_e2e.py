"""Redaction on every path, end to end: messages carrying the corpus's secrets go through
the team (gateway, inbox, routing, runs, tools, memory, posts) on SQLite and PostgreSQL;
then no secret is in any request the fake model received, any post, any row of any
table, or any log line, the person was told once per message, and the look-alikes
reached the model as written. One more run takes the real Slack path."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import pytest
from data.secrets_corpus import HELD_NAME, HELD_VALUE, LOOKALIKES, SECRETS, TEAM_PATTERN
from fakes import slack_events as se
from fakes.model_server import CallTool, FakeModelServer, Hang, Reply
from harness import Harness, make_team
from sqlalchemy import inspect, text
from test_slack_e2e import GENERAL, SlackRig, fake_slack, rig  # noqa: F401  (fixtures)

from corral.agents.redaction import Redactor
from corral.bot.adapter import ThreadLine
from corral.bot.commands.memory import import_document
from corral.bot.commands.registry import CommandContext
from corral.bot.commands.table import dispatch
from corral.bot.inbound import Inbound
from corral.bot.logs import redact_logs
from corral.storage.store import Storage


def fragments(secret: str) -> list[str]:
    """What of ``secret`` would show it, however it was quoted: the secret and its
    longest line (a PEM block is stored, logged and sent with its newlines escaped)."""
    lines = secret.replace("\\n", "\n").split("\n")
    return [secret, max(lines, key=len)]


def leaked(where: str) -> list[str]:
    """The planted secrets found in ``where``."""
    return [p.name for p in SECRETS if any(f in where for f in fragments(p.secret))]


async def dump(storage: Storage) -> str:
    """Every row of every table of the database, as text."""
    out: list[str] = []
    async with storage.db.engine.connect() as connection:
        names = await connection.run_sync(lambda sync: inspect(sync).get_table_names())
        for name in names:
            rows = (await connection.execute(text(f'SELECT * FROM "{name}"'))).all()
            out.append(f"{name}: {rows!r}")
    assert any(n.startswith("inbox") for n in names)
    return "\n".join(out)


def strings(value: Any) -> Iterable[str]:
    """Every text inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)


def chunks(items: tuple[Any, ...], size: int) -> list[tuple[Any, ...]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@pytest.fixture
async def team(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[Harness]:
    """The test team, its redactor holding one secret of its own and the team's pattern."""
    built_team = make_team(redact={"patterns": [TEAM_PATTERN]})
    redactor = Redactor([(HELD_NAME, HELD_VALUE)], built_team.redact.patterns)
    built = Harness.build(storage, model_server, team=built_team, redactor=redactor)
    built.workers.start()
    yield built
    await built.close()


async def test_no_secret_reaches_a_model_a_post_a_row_or_a_log_line(
    team: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    redactor = Redactor([(HELD_NAME, HELD_VALUE)], [TEAM_PATTERN])
    redact_logs(redactor.redact)
    messages = chunks(SECRETS, 10)
    # Each message pasted by a person, one with a tool call that writes memory.
    team.server.script(
        "fast-a",
        CallTool("remember", {"text": f"keep {SECRETS[5].secret}", "scope": "team"}),
        Reply(f"Noted {SECRETS[21].secret}"),
    )
    for chunk in messages:
        await team.say("@roo please check:\n" + "\n".join(p.message for p in chunk))
    # Addressed to no one: the router's model picks who answers.
    routed_before = len(team.server.requests)
    await team.say(f"who can help with {SECRETS[2].message}")
    assert any("tool_choice" in r.json for r in team.server.requests[routed_before:])
    # A reply in a thread Corral has not seen: its history comes in from the platform.
    team.adapter.history["t-old"] = [ThreadLine(SECRETS[1].message, user="Pat")]
    await team.say("@roo what about the line above?", thread="t-old", message_id="t-new")
    # Typed into commands, and imported from a MEMORY.md.
    ctx = CommandContext(team.team, team.storage, "U1", "test", redact=redactor.redact)
    added = await dispatch(ctx, f"/memory add the vault is {SECRETS[13].message}")
    imported = await import_document(ctx, f"- the CRM token {SECRETS[-1].message}\n", "M.md")
    await team.say("@roo and these:\n" + "\n".join(LOOKALIKES))
    # A storage failure whose exception carries the statement's parameters.
    secret = SECRETS[20].secret
    try:
        async with team.storage.db.engine.begin() as connection:
            await connection.execute(text("INSERT INTO no_such_table VALUES (:v)"), {"v": secret})
    except Exception as exc:
        assert secret in str(exc)  # the message would carry it
        logging.getLogger("corral.storage").exception("storing %s failed", secret)

    requests = [json.dumps(r.json) for r in team.server.requests]
    assert len(requests) >= len(messages) + 3
    assert leaked("\n".join(requests)) == []
    posts = "\n".join(team.adapter.texts()) + added.text + imported.text
    assert "[redacted: " in posts and leaked(posts) == []
    rows = await dump(team.storage)
    assert "[redacted: " in rows and leaked(rows) == []
    assert "[redacted: Anthropic key]" in caplog.text and leaked(caplog.text) == []
    # The person was told once for each message that had a secret, and only for those.
    told = [inbound.message_id for inbound, _ in team.adapter.notices]
    assert len(told) == len(messages) + 1 == len(set(told))
    assert all("rotate it" in text for _, text in team.adapter.notices)
    # The look-alikes reached the model exactly as written.
    sent = "\n".join(s for r in team.server.requests for s in strings(r.json))
    assert [t for t in LOOKALIKES if t not in sent] == []


async def test_a_message_taken_up_again_does_not_tell_the_person_again(team: Harness) -> None:
    team.server.script("fast-a", Hang())
    inbox_id = await team.gateway.submit(
        Inbound("test", "e1", "C0GEN", "m1", "m1", "U1", f"@roo {SECRETS[0].message}")
    )
    assert inbox_id is not None
    async with asyncio.timeout(5):
        while team.server.hanging == 0:
            await asyncio.sleep(0.01)
    # The process stops mid-run, after the notice; the next start answers the message.
    await team.workers.stop()
    team.workers.start()
    await team.workers.wait(inbox_id)
    record = await team.storage.inbox.get(inbox_id)
    assert record is not None and record.attempts == 2 and record.status == "done"
    assert [n.message_id for n, _ in team.adapter.notices] == ["m1"]


async def test_the_slack_path_redacts_and_tells_the_person_privately(
    rig: SlackRig,  # noqa: F811
) -> None:
    pasted = [SECRETS[0], SECRETS[9], SECRETS[25], SECRETS[34]]
    await rig.mention("beaver my config:\n" + "\n".join(p.message for p in pasted))
    command = se.slash_command("/memory", f"add {SECRETS[13].message}", channel_id=GENERAL)
    reply = await (await rig.send(command)).json()
    await rig.settled()
    posts = json.dumps(rig.posts()) + json.dumps(reply)
    assert "[redacted: " in posts and leaked(posts) == []
    assert leaked(json.dumps([r.json for r in rig.models.requests])) == []
    rows = await dump(rig.storage)
    assert "[redacted: Slack token]" in rows and leaked(rows) == []
    (notice,) = rig.slack.calls_to("chat.postEphemeral")
    assert notice.params["user"] == se.USER_ID and "rotate it" in notice.params["text"]
    assert "AWS access key" in notice.params["text"]
