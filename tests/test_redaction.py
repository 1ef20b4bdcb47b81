"""The redactor on its own: the corpus of planted secrets (each found) and look-alikes
(each left as written), the secrets Corral holds, the team's patterns, the seams'
wrappers and the log filter."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from data.secrets_corpus import HELD_NAME, HELD_VALUE, LOOKALIKES, SECRETS, TEAM_PATTERN
from harness import make_team

from corral.agents.conversation import Place
from corral.agents.llm.types import (
    ChatMessage,
    Completion,
    Request,
    TextBlock,
    ToolResult,
    ToolSpec,
    ToolUse,
)
from corral.agents.model_calls import CallContext
from corral.agents.redaction import BUILTIN, MIN_HELD_LENGTH, Redactor, held_secrets
from corral.agents.redaction_seams import RedactingModelWrapper, RedactingToolWrapper
from corral.agents.tool import Handoff, Tool, ToolContext, ToolOutcome
from corral.agents.tool_calls import ToolCall
from corral.bot.app import deployment_redactor
from corral.bot.logs import RedactingFilter, configure, redact_logs
from corral.bot.settings import Settings

REDACTOR = Redactor([(HELD_NAME, HELD_VALUE)], [TEAM_PATTERN])


def test_the_corpus_is_big_enough() -> None:
    assert len(SECRETS) >= 40
    assert len(LOOKALIKES) >= 40
    assert len({p.secret for p in SECRETS}) == len(SECRETS)


@pytest.mark.parametrize("planted", SECRETS, ids=lambda p: p.name)
def test_each_planted_secret_is_redacted(planted: Any) -> None:
    found = REDACTOR.redaction(planted.message)
    assert planted.secret not in found.text
    assert "[redacted: " in found.text
    assert found.kinds


@pytest.mark.parametrize("text", LOOKALIKES)
def test_each_lookalike_is_left_as_written(text: str) -> None:
    found = REDACTOR.redaction(text)
    assert (found.text, found.kinds) == (text, ())


def test_recall_and_false_positives(capsys: pytest.CaptureFixture[str]) -> None:
    """The figures for the closing note: every secret found, no look-alike touched."""
    caught = sum(p.secret not in REDACTOR.redact(p.message) for p in SECRETS)
    touched = sum(REDACTOR.redact(t) != t for t in LOOKALIKES)
    with capsys.disabled():
        print(
            f"\nredaction recall {caught}/{len(SECRETS)}, "
            f"false positives {touched}/{len(LOOKALIKES)}"
        )
    assert (caught, touched) == (len(SECRETS), 0)


def test_a_secret_is_named_by_its_kind_and_the_words_around_it_stay() -> None:
    aws = "AK" + "IA" + "Z" * 8 + "Q7" * 4
    assert REDACTOR.redact(f"key {aws} here") == "key [redacted: AWS access key] here"
    assert REDACTOR.redact("password: hunter2!x") == "password: [redacted: password]"
    assert REDACTOR.redaction(f"{aws} and {aws}").kinds == ("AWS access key",)


def test_a_uuid_is_a_token_only_next_to_a_token_word() -> None:
    uuid = "f81d4fae-7dec-11d0-a765-00a0c91e6bf6"
    assert REDACTOR.redact(f"the token is {uuid}") == "the token is [redacted: token]"
    assert REDACTOR.redact(f"Authorization: Bearer {uuid}").endswith("[redacted: token]")
    assert REDACTOR.redact(f"tenant {uuid} moved") == f"tenant {uuid} moved"


def test_a_private_key_is_redacted_whole_even_cut_short() -> None:
    body = "\n".join("M" + "IIEow" * 12 for _ in range(3))
    cut = f"see:\n-----BEGIN RSA PRIVATE KEY-----\n{body}"
    assert REDACTOR.redact(cut) == "see:\n[redacted: private key]"


def test_held_secrets_are_the_secret_named_values_and_url_passwords() -> None:
    held = held_secrets(
        {
            "SLACK_BOT_TOKEN": "abcdefgh12345",
            "DATABASE_URL": "postgresql+asyncpg://corral:pa55word-long@db/corral",
            "REDIS_URL": "redis://localhost:6379/0",
            "CORRAL_HTTP_PORT": "3000",
            "GITHUB_TOKEN": "short",
            "HOME": "/root/very/long/path",
            "NO_PROXY_BYPASS": "localhost,127.0.0.1",
        },
        {
            "SLACK_BOT_TOKEN": "abcdefgh12345",
            "CRM_PASSWORD": "crm-pass-from-dotenv",
            "PGPASSWORD": "pg-pass-from-dotenv",
            "db.pass": "db-pass-dotted",
        },
    )
    assert held == [
        ("SLACK_BOT_TOKEN", "abcdefgh12345"),
        ("DATABASE_URL password", "pa55word-long"),
        ("CRM_PASSWORD", "crm-pass-from-dotenv"),
        ("PGPASSWORD", "pg-pass-from-dotenv"),
        ("db.pass", "db-pass-dotted"),
    ]
    assert all(len(value) >= MIN_HELD_LENGTH for _, value in held)
    redactor = Redactor(held)
    assert redactor.redact("it is abcdefgh12345!") == "it is [redacted: SLACK_BOT_TOKEN]!"


def test_the_team_patterns_add_to_the_builtin_formats() -> None:
    assert BUILTIN.redact("contract ACME-123456") == "contract ACME-123456"
    assert REDACTOR.redact("contract ACME-123456") == "contract [redacted: company secret]"


def test_non_ascii_text_keeps_its_places() -> None:
    # "İ" lower-cases to two characters: the words' positions must not shift.
    text = "İİİ password: hunter2!x ünïcødé"
    assert REDACTOR.redact(text) == "İİİ password: [redacted: password] ünïcødé"


async def test_the_model_wrapper_redacts_every_text_of_a_request() -> None:
    aws = SECRETS[0].secret
    seen: list[Request] = []

    async def model(_: CallContext, request: Request) -> Completion:
        seen.append(request)
        return Completion((TextBlock("ok"),), "anthropic/x")

    request = Request(
        system=f"memories: {aws}",
        messages=(
            ChatMessage.user(f"thread {aws}"),
            ChatMessage("assistant", (ToolUse("t1", "remember", {"text": aws, "n": 3}),)),
            ChatMessage("user", (ToolResult("t1", f"result {aws}"),)),
        ),
        tools=(ToolSpec("mcp_x", f"desc {aws}", {"type": "object"}),),
    )
    ctx = CallContext("roo", Place("test", "C1", "1"), "r-1", "answer", "fast")
    await RedactingModelWrapper(REDACTOR.redact)(ctx, request, model)
    assert aws not in repr(seen[0])
    assert seen[0].messages[1].content[0] == ToolUse(
        "t1", "remember", {"text": "[redacted: AWS access key]", "n": 3}
    )


async def test_the_tool_wrapper_redacts_arguments_results_and_handoffs() -> None:
    secret = SECRETS[13].secret
    given: list[Mapping[str, Any]] = []

    async def invoke(_: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
        given.append(args)
        return ToolOutcome(f"found {secret}", handoff=Handoff("owl", f"use {secret}"))

    tool = Tool("lookup", "", {}, invoke)

    async def call_next(ctx: ToolContext, call: ToolCall) -> ToolOutcome:
        return await call.tool.invoke(ctx, call.args)

    outcome = await RedactingToolWrapper(REDACTOR.redact)(
        None,  # type: ignore[arg-type]  # the tool reads no context
        ToolCall(tool, {"query": [f"q {secret}"]}),
        call_next,
    )
    assert secret not in repr(given) + repr(outcome)
    assert outcome.content == "found [redacted: GitHub token]"


def test_log_lines_are_redacted_message_arguments_and_exception() -> None:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    stream = io.StringIO()
    secret = SECRETS[20].secret
    log = logging.getLogger("corral.test")
    try:
        for fmt in ("text", "json"):
            configure(fmt, "INFO", stream)
            redact_logs(REDACTOR.redact)
            redact_logs(REDACTOR.redact)
            assert sum(isinstance(f, RedactingFilter) for f in root.handlers[0].filters) == 1
            try:
                raise ValueError(f"INSERT failed [parameters: ('{secret}',)]")
            except ValueError:
                log.exception("storing %s failed", secret, extra={"text": secret})
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    written = stream.getvalue()
    assert secret not in written
    # text: the message and the exception; JSON: those and the extra field.
    assert written.count("[redacted: Anthropic key]") == 5
    assert '"text": "[redacted: Anthropic key]"' in written


def test_a_log_call_with_bad_arguments_is_left_to_the_handler() -> None:
    record = logging.makeLogRecord({"msg": "stored %d rows", "args": ("many",)})
    assert RedactingFilter(REDACTOR.redact).filter(record)
    assert record.args == ("many",)


def test_the_deployment_redactor_knows_the_settings_secrets_and_the_team_patterns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("CRM_TOKEN=crm-only-in-dotenv-42\n")
    settings = Settings(
        _env_file=None,
        slack_bot_token="plain-looking-bot-token",
        database_url="postgresql+asyncpg://corral:db-pass-1234@db/corral",
    )
    redactor = deployment_redactor(settings, make_team(redact={"patterns": [TEAM_PATTERN]}))
    said = "plain-looking-bot-token db-pass-1234 crm-only-in-dotenv-42 ACME-123456"
    assert redactor.redact(said) == (
        "[redacted: SLACK_BOT_TOKEN] [redacted: DATABASE_URL password] "
        "[redacted: CRM_TOKEN] [redacted: company secret]"
    )
