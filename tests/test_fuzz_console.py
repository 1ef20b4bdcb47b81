"""Console lines fuzzed (``corral chat``'s loop, bot/console.py): messages, console
commands and the team's slash commands with random arguments. The line is handled
without an internal error, nothing shown is a traceback, and a message sent before is
still stored and answered."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator

import pytest
from fakes.model_server import FakeModelServer
from fuzz_strategies import outside_text
from harness import fake_models, make_core, make_team
from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console

from corral.agents.llm.retry import RetryPolicy
from corral.bot.commands.table import children
from corral.bot.console import ConsoleChat
from corral.bot.settings import Settings
from corral.storage.store import Storage

#: Every command the console knows, to be followed by random arguments.
COMMANDS = [
    "/help",
    "/new",
    "/channel",
    "/approve",
    "/reject",
    "/resolve",
    *(f"/corral {c}" for c in children(("corral",))),
    *(f"/corral schedule {c}" for c in children(("corral", "schedule"))),
    *(f"/memory {c}" for c in children(("memory",))),
]


@pytest.fixture
async def chat(storage: Storage, model_server: FakeModelServer) -> AsyncIterator[ConsoleChat]:
    team = make_team(roles={"admins": ["fuzzer"], "approvers": ["fuzzer"]})
    models = fake_models(team, model_server, RetryPolicy(attempts=1))
    core = make_core(storage, models, team, Settings(_env_file=None))
    chat = ConsoleChat(core, Console(file=io.StringIO(), width=100), channel="#ops")
    chat.user = "fuzzer"
    chat.workers.start()
    await chat.handle_line("roo, the release train leaves at noon")
    try:
        yield chat
        chat.set_channel("#ops")
        await chat.handle_line("roo, are you still there?")
        shown = _shown(chat)
        assert "internal error" not in shown and "Traceback" not in shown
        assert shown.count("[fast-a]") >= 2, shown[-2_000:]
    finally:
        await chat.workers.stop()
        await models.aclose()


def _shown(chat: ConsoleChat) -> str:
    file = chat.out.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


@given(
    line=st.one_of(
        outside_text(),
        st.tuples(st.sampled_from(COMMANDS), st.just(" "), outside_text(80)).map("".join),
    )
)
async def test_fuzz_console_lines(chat: ConsoleChat, line: str) -> None:
    before = len(_shown(chat))
    await chat.handle_line(line)
    shown = _shown(chat)[before:]
    assert "internal error" not in shown, (line, shown)
    assert "Traceback" not in shown


@pytest.mark.parametrize(
    "line", ["/memory add \x00", "/memory add \x00 \x00", "/memory search \x00"]
)
async def test_an_argument_of_nothing_but_nul_characters_is_a_usage_error(
    chat: ConsoleChat, line: str
) -> None:
    # Found by the fuzzer: the argument passed the command's check and storing it raised.
    before = len(_shown(chat))
    await chat.handle_line(line)
    shown = _shown(chat)[before:]
    assert shown.strip() and "internal error" not in shown
