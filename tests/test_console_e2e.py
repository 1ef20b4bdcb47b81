"""``corral chat`` driven end to end as a user would: the real CLI in a subprocess, the
real SDKs speaking HTTP to the fake model server, a fresh SQLite database."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest
from fakes.model_server import FakeModelServer

ROOT = Path(__file__).resolve().parents[1]
CORRAL = str(Path(sys.executable).with_name("corral"))
PROVIDER_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)


@pytest.fixture
def server() -> Iterator[FakeModelServer]:
    with FakeModelServer.in_thread() as running:
        yield running


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PROVIDER_VARIABLES}
    env.pop("DATABASE_URL", None)
    env.pop("CORRAL_LOG_LEVEL", None)
    return {**env, "CORRAL_TEAM": str(ROOT / "team.yaml"), **extra}


def _chat(
    lines: list[str], cwd: Path, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CORRAL, "chat"],
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_env({**extra_env, "COLUMNS": "200"}),
        timeout=60,
    )


def test_chat_routes_answers_and_remembers(server: FakeModelServer, tmp_path: Path) -> None:
    server.router_rule = lambda body: {"agent": "otter", "reason": "deploys are DevOps"}
    done = _chat(
        [
            "@beaver the login page throws a 500, can you look?",
            "what else could cause it?",
            "/new",
            "what is our deploy process?",
            "/memory add The deploy window is Friday 3pm",
            "/memory search deploy window",
            "/corral status",
            "/quit",
        ],
        tmp_path,
        server.env(["anthropic"]),
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in out + done.stderr
    assert "Models: Model providers: anthropic" in out
    # An address, then a follow-up in the same thread with the same agent.
    assert "→ beaver (addressed: @beaver)" in out
    # The echo of the quoted message; the console's Markdown does not show its tags.
    assert "[claude-sonnet-4-5] @beaver the login page throws a 500" in out
    assert "→ beaver (thread owner)" in out
    # A new thread with no address is routed by Roo's model to whoever fits.
    assert "→ otter (router: deploys are DevOps)" in out
    assert server.requests_for("claude-haiku-4-5")[0].json["tool_choice"]["name"] == "choose_agent"
    # Memory through the same commands as in Slack.
    assert "Remembered #1 (team): The deploy window is Friday 3pm" in out
    assert "#1 [team] The deploy window is Friday 3pm" in out
    assert "Beaver (@beaver): idle; 2 runs, 0 failed" in out
    # The database was created where the command ran.
    assert (tmp_path / "corral.db").exists()


def test_chat_without_a_model_provider_still_runs(tmp_path: Path) -> None:
    done = _chat(
        ["@owl is the release ready?", "/memory add Releases ship on Tuesdays", "/quit"],
        tmp_path,
        {},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert out.count("No model provider configured: set ANTHROPIC_API_KEY") == 1
    assert "→ owl (addressed: @owl)" in out
    assert "Owl can't answer: no model is configured" in out
    assert "Remembered #1 (team): Releases ship on Tuesdays" in out


def test_chat_with_a_dead_model_tells_the_user_and_never_crashes(
    server: FakeModelServer, tmp_path: Path
) -> None:
    for model in ("claude-sonnet-4-5", "gpt-5"):
        server.fail_always(model, 500)
    done = _chat(["@beaver fix the build", "/corral approvals", "/quit"], tmp_path, server.env())
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    assert "Beaver could not finish: every model failed" in done.stdout
    assert "escalation from @beaver" in done.stdout
    # The approvers are named as handles, not in Slack's markup.
    assert "@U0ADMIN" in done.stdout and "<@" not in done.stdout


def test_chat_in_a_terminal(server: FakeModelServer, tmp_path: Path) -> None:
    """The interactive path: prompt_toolkit line editing in a real pseudo-terminal."""
    child = pexpect.spawn(
        CORRAL,
        ["chat", "--channel", "#dev"],
        cwd=str(tmp_path),
        env=_env({**server.env(["anthropic"]), "TERM": "xterm"}),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )
    try:
        child.expect("#dev ›")
        child.sendline("the deploy script fails on staging")
        child.expect(r"→ beaver \(channel default \(#dev\)\)")
        child.expect("the deploy script fails on staging")
        child.expect("#dev ›")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_resolve_in_the_console(server: FakeModelServer, tmp_path: Path) -> None:
    """An escalation shows how to close it; ``/resolve`` closes it once."""
    for model in ("claude-sonnet-4-5", "gpt-5"):
        server.fail_always(model, 500)
    child = pexpect.spawn(
        CORRAL,
        ["chat"],
        cwd=str(tmp_path),
        env=_env({**server.env(), "TERM": "xterm"}),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )
    try:
        child.expect("#console ›")
        child.sendline("@beaver fix the build")
        child.expect(r"/resolve (a-[0-9a-f]+)")
        escalation = child.match.group(1)
        child.sendline(f"/resolve {escalation}")
        child.expect(f"{escalation}: Resolved by ")
        child.sendline(f"/resolve {escalation}")
        child.expect(f"{escalation} was already resolved by ")
        child.sendline("/quit")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0


def test_chat_with_a_broken_team_file_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "team.yaml"
    broken.write_text("models:\n  fast: [anthropic/x]\nagents:\n  roo:\n    display_name: Roo\n")
    done = subprocess.run(
        [CORRAL, "chat", "--team", str(broken)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=_env({}),
        input="",
        timeout=60,
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{broken}:4: agent `roo` has no `role` — fix: add `role:`" in done.stderr


def test_console_help_lists_the_console_commands_too(tmp_path: Path) -> None:
    done = _chat(["/corral help", "/help", "/nope", "/quit"], tmp_path, {})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    for command in ("/new", "/channel #name", "/approve ID", "/reject ID", "/resolve ID", "/quit"):
        # Once for /corral help, once for /help, once after the unknown command.
        assert out.count(f"{command} — ") == 3, command
    assert out.count("/memory add TEXT") == 3
    assert "Unknown command /nope. Commands:" in out


def test_decision_commands_without_an_id_show_what_waits(
    server: FakeModelServer, tmp_path: Path
) -> None:
    for model in ("claude-sonnet-4-5", "gpt-5"):
        server.fail_always(model, 500)
    done = _chat(["/approve", "@beaver fix the build", "/resolve", "/quit"], tmp_path, server.env())
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "Unknown command" not in out
    assert "Usage: /approve ID — nothing waits." in out
    escalation = re.search(r"/resolve (a-[0-9a-f]+)", out)
    assert escalation is not None
    assert "Usage: /resolve ID. Waiting:" in out
    assert re.search(rf"• {escalation.group(1)} from @beaver, \S+ ago: ", out)


def test_an_unknown_handle_is_named_and_the_agents_listed(tmp_path: Path) -> None:
    done = _chat(["@nobody hi", "@beavr hi", "@owl mail bob@example.com", "/quit"], tmp_path, {})
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "Traceback" not in out + done.stderr
    assert "There is no agent @nobody." in out
    assert "There is no agent @beavr. Did you mean @beaver?" in out
    assert out.count("The agents: @roo (Roo), @beaver (Beaver), @owl (Owl)") == 2
    assert out.count("Nothing was sent") == 2
    # Neither went to an agent; a real handle beside an e-mail address still routes.
    assert out.count("→ ") == 1
    assert "→ owl (addressed: @owl)" in out


def test_ctrl_c_clears_the_line_and_twice_leaves(server: FakeModelServer, tmp_path: Path) -> None:
    """In a real pseudo-terminal: Ctrl-C drops the half-typed line and the prompt stays;
    a second Ctrl-C right after it leaves."""
    seen = io.StringIO()
    child = pexpect.spawn(
        CORRAL,
        ["chat"],
        cwd=str(tmp_path),
        env=_env({**server.env(["anthropic"]), "TERM": "xterm"}),
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 160),
    )
    child.logfile_read = seen
    hint = re.escape("(Line cleared. Ctrl-C again, Ctrl-D or /quit to leave.)")
    try:
        child.expect("#console ›")
        child.send("@beaver never sent")
        child.sendcontrol("c")
        child.expect(hint)
        child.expect("#console ›")
        # The dropped words are gone: only what is typed now is sent.
        child.sendline("@owl is the release ready?")
        child.expect(r"→ owl \(addressed: @owl\)")
        child.expect("is the release ready")
        child.expect("#console ›")
        # A Ctrl-C on an empty line warns; a line typed after it is cleared, not lost
        # with the app.
        child.sendcontrol("c")
        child.expect(hint)
        child.send("half a thought")
        child.sendcontrol("c")
        child.expect(hint)
        child.expect("#console ›")
        assert child.isalive()
        # Twice in a row: the app ends, as /quit would.
        child.sendcontrol("c")
        child.expect(pexpect.EOF)
    finally:
        child.close()
    assert child.exitstatus == 0
    assert "→ beaver" not in seen.getvalue()
    assert "Traceback" not in seen.getvalue()
