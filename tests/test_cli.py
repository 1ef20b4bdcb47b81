"""The ``corral`` command line as users run it: exit codes and messages, never a
traceback."""

from __future__ import annotations

import getpass
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BROKEN = ROOT / "tests" / "data" / "broken"
CORRAL = str(Path(sys.executable).with_name("corral"))


def _corral(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL", "REDIS_URL"))
    }
    return subprocess.run(
        [CORRAL, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={"COLUMNS": "200", **base, **env},
        timeout=60,
    )


def test_check_passes_on_the_sample_team(tmp_path: Path) -> None:
    from fakes.model_server import FakeModelServer

    with FakeModelServer.in_thread() as models:
        done = _corral(
            "check", "--team", str(ROOT / "team.yaml"), cwd=tmp_path, **models.env(["anthropic"])
        )
        asked = sorted(r.model for r in models.requests)
    assert done.returncode == 0, done.stdout + done.stderr
    # Each model of the tiers whose provider is configured, once, for one token.
    assert asked == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    assert done.stdout.strip().endswith("7 agents, 1 schedule — ok")


def test_check_warns_but_passes_without_a_model_provider(tmp_path: Path) -> None:
    done = _corral("check", "--team", str(ROOT / "team.yaml"), cwd=tmp_path)
    assert done.returncode == 0
    assert "no model provider is configured" in done.stdout


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("unknown_handoff", 9, "handoff_to names `hawk`, which is not an agent of this team"),
        ("unknown_tier", 11, "`model: smartest` names a tier that `models:` does not define"),
        ("duplicate_handle", 13, "the handle `beaver` is used twice (first on line 7)"),
        ("bad_cron", 9, 'cron "0 25 * * mon-fri" is not valid'),
        ("syntax_error", 7, "YAML syntax error"),
    ],
)
def test_check_fails_on_a_broken_file_with_file_line_and_fix(
    tmp_path: Path, name: str, line: int, message: str
) -> None:
    path = BROKEN / f"{name}.yaml"
    done = _corral("check", "--team", str(path), cwd=tmp_path, ANTHROPIC_API_KEY="sk-test")
    assert done.returncode == 1
    assert f"{path}:{line}: {message}" in done.stdout
    assert "— fix: " in done.stdout
    assert "Traceback" not in done.stdout + done.stderr


def test_team_comes_from_the_environment_when_not_given(tmp_path: Path) -> None:
    done = _corral("check", cwd=tmp_path, CORRAL_TEAM=str(BROKEN / "unknown_tier.yaml"))
    assert done.returncode == 1 and "unknown_tier.yaml:11" in done.stdout
    missing = _corral("check", cwd=tmp_path)
    assert missing.returncode == 1
    assert "team.yaml" in missing.stdout and "--team" in missing.stdout


def test_status_memory_and_db_upgrade_from_the_shell(tmp_path: Path) -> None:
    team = str(ROOT / "team.yaml")
    assert _corral("db", "upgrade", cwd=tmp_path).returncode == 0
    added = _corral(
        "memory", "add", "--team", team, "Invoices", "go", "out", "monthly", cwd=tmp_path
    )
    assert added.returncode == 0 and "Remembered #1 (team): Invoices go out monthly" in added.stdout
    found = _corral("memory", "search", "--team", team, "invoices", cwd=tmp_path)
    assert "#1 [team] Invoices go out monthly" in found.stdout
    forgot = _corral("memory", "forget", "--team", team, "1", cwd=tmp_path)
    assert "Forgot #1" in forgot.stdout
    status = _corral("status", "--team", team, cwd=tmp_path)
    assert status.returncode == 0 and "Beaver (@beaver): idle, no runs today" in status.stdout


def test_an_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    done = _corral(
        "status",
        "--team",
        str(ROOT / "team.yaml"),
        cwd=tmp_path,
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:1/nowhere",
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: cannot open the database at postgresql")
    assert "Traceback" not in done.stderr


def test_help_lists_the_commands(tmp_path: Path) -> None:
    done = _corral("--help", cwd=tmp_path)
    assert done.returncode == 0
    # The chat commands are there as generated from the command table, beside the rest.
    for command in (
        "chat",
        "check",
        "status",
        "agents",
        "tasks",
        "memory",
        "schedule",
        "db",
        "run",
    ):
        assert f"  {command}" in done.stdout


def test_run_without_a_platform_says_what_to_set(tmp_path: Path) -> None:
    done = _corral("run", "--team", str(ROOT / "team.yaml"), cwd=tmp_path)
    assert done.returncode == 1
    assert "nothing to run: no chat platform is configured. Set SLACK_BOT_TOKEN" in done.stderr
    assert "Traceback" not in done.stderr


def test_check_asks_slack_for_the_tokens_scopes(tmp_path: Path) -> None:
    from fakes.slack_server import FakeSlackServer

    team = str(ROOT / "team.yaml")
    with FakeSlackServer.in_thread() as slack:
        # No model provider (a warning): no model to ask.
        env = slack.env()
        ok = _corral("check", "--team", team, cwd=tmp_path, **env)
        slack.scopes.discard("chat:write.customize")
        slack.scopes.discard("reactions:write")
        lacking = _corral("check", "--team", team, cwd=tmp_path, **env)
        slack.fail("auth.test", "invalid_auth")
        refused = _corral("check", "--team", team, cwd=tmp_path, **env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert lacking.returncode == 1
    assert "the Slack app lacks the scopes chat:write.customize, reactions:write" in lacking.stdout
    assert refused.returncode == 1
    assert "Slack refused SLACK_BOT_TOKEN (invalid_auth)" in refused.stdout


def test_worker_without_redis_says_what_to_set(tmp_path: Path) -> None:
    done = _corral("worker", "--team", str(ROOT / "team.yaml"), cwd=tmp_path)
    assert done.returncode == 1
    assert "corral worker takes its messages from the shared queue in Redis" in done.stderr
    assert "Traceback" not in done.stderr


# ---------------------------------------------------------------------------------------
# Configuration and connection problems: one message each, never a traceback (issue 12)

TEAM = str(ROOT / "team.yaml")
SECRET = "s3cretpw"
#: Nothing listens on port 1: connecting is refused at once.
DOWN_DATABASE = f"postgresql+asyncpg://corral:{SECRET}@127.0.0.1:1/corral"
DOWN_REDIS = f"redis://:{SECRET}@127.0.0.1:1/0"
SHOWN_DATABASE = "postgresql+asyncpg://corral:***@127.0.0.1:1/corral"
SHOWN_REDIS = "redis://:***@127.0.0.1:1/0"


def _no_traceback(done: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in done.stdout + done.stderr, done.stdout + done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.parametrize(
    ("variable", "value", "allowed"),
    [
        ("CORRAL_HTTP_PORT", "abc", "use a port number from 1 to 65535"),
        ("CORRAL_DISCORD_THREADS", "sometimes", "use always, busy or never"),
        ("CORRAL_LOG_LEVEL", "LOUD", "use DEBUG, INFO, WARNING, ERROR or CRITICAL"),
        ("CORRAL_SCHEDULE_GRACE", "soon", "use an interval such as 30s, 5m, 1h"),
    ],
)
def test_check_names_a_malformed_setting_its_value_and_what_is_allowed(
    tmp_path: Path, variable: str, value: str, allowed: str
) -> None:
    done = _corral("check", "--team", TEAM, cwd=tmp_path, **{variable: value})
    _no_traceback(done)
    assert done.returncode == 1
    assert f"error .env: {variable}={value} is not allowed — fix: {allowed}" in done.stdout
    # The rest is still checked: the team file is fine, and said to be so by no error.
    assert done.stdout.count("error ") == 1


@pytest.mark.parametrize("command", [["chat"], ["run"], ["worker"], ["db", "upgrade"], ["status"]])
def test_every_command_refuses_a_malformed_setting_in_one_line(
    tmp_path: Path, command: list[str]
) -> None:
    done = _corral(*command, "--team", TEAM, cwd=tmp_path, CORRAL_HTTP_PORT="abc")
    _no_traceback(done)
    assert done.returncode == 1
    assert done.stderr == (
        "error: CORRAL_HTTP_PORT=abc is not allowed: use a port number from 1 to 65535, "
        "in .env or the environment\n"
    )


def test_check_reaches_the_database_and_redis(tmp_path: Path) -> None:
    down = _corral(
        "check", "--team", TEAM, cwd=tmp_path, DATABASE_URL=DOWN_DATABASE, REDIS_URL=DOWN_REDIS
    )
    _no_traceback(down)
    assert down.returncode == 1
    assert f"error .env: cannot reach the database at {SHOWN_DATABASE}: " in down.stdout
    assert "error .env: cannot reach Redis at redis://:***@127.0.0.1:1/0: " in down.stdout
    up = _corral(
        "check",
        "--team",
        TEAM,
        cwd=tmp_path,
        DATABASE_URL="postgresql+asyncpg://postgres@127.0.0.1:5432/postgres",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )
    _no_traceback(up)
    assert up.returncode == 0, up.stdout
    assert up.stdout.strip().endswith("7 agents, 1 schedule — ok")
    # A SQLite file that is not there yet is not made by checking it.
    assert not list(tmp_path.glob("*.db"))


@pytest.mark.parametrize(
    ("command", "env", "message"),
    [
        (
            ["run"],
            {"REDIS_URL": DOWN_REDIS},
            f"error: cannot reach Redis at {SHOWN_REDIS}: ",
        ),
        (
            ["worker"],
            {"REDIS_URL": DOWN_REDIS},
            f"error: cannot reach Redis at {SHOWN_REDIS}: ",
        ),
        (
            ["chat"],
            {"REDIS_URL": DOWN_REDIS},
            f"error: cannot reach Redis at {SHOWN_REDIS}: ",
        ),
        (
            ["run"],
            {"DATABASE_URL": DOWN_DATABASE},
            f"error: cannot open the database at {SHOWN_DATABASE}: ",
        ),
        (
            ["chat"],
            {"DATABASE_URL": DOWN_DATABASE},
            f"error: cannot open the database at {SHOWN_DATABASE}: ",
        ),
        (
            ["memory", "reindex"],
            {"DATABASE_URL": DOWN_DATABASE},
            f"error: cannot open the database at {SHOWN_DATABASE}: ",
        ),
        (
            ["db", "upgrade"],
            {"DATABASE_URL": DOWN_DATABASE},
            f"error: cannot upgrade the database at {SHOWN_DATABASE}: ",
        ),
    ],
)
def test_an_unreachable_redis_or_database_is_one_line_with_the_password_masked(
    tmp_path: Path, command: list[str], env: dict[str, str], message: str
) -> None:
    platforms = {"SLACK_BOT_TOKEN": "xoxb-test", "SLACK_APP_TOKEN": "xapp-test"}
    done = _corral(*command, "--team", TEAM, cwd=tmp_path, **platforms, **env)
    _no_traceback(done)
    assert done.returncode == 1
    assert done.stderr.startswith(message)
    assert len(done.stderr.splitlines()) == 1


def test_urls_are_shown_with_their_secrets_masked() -> None:
    from corral.storage.urls import scrubbed, shown_url

    assert shown_url(DOWN_DATABASE) == "postgresql+asyncpg://corral:***@127.0.0.1:1/corral"
    assert shown_url("sqlite+aiosqlite:///corral.db") == "sqlite+aiosqlite:///corral.db"
    assert shown_url(DOWN_REDIS) == "redis://:***@127.0.0.1:1/0"
    assert shown_url("https://u:pw@llm.internal/v1?api_key=k&model=x") == (
        "https://u:***@llm.internal/v1?api_key=***&model=x"
    )
    assert shown_url("https://slack.com/api/") == "https://slack.com/api/"
    assert scrubbed(f"{DOWN_REDIS} said {SECRET}", DOWN_REDIS) == (
        "redis://:***@127.0.0.1:1/0 said ***"
    )
    # A password is masked where it stands alone, not inside the words of a message.
    assert scrubbed("unsupported database 'mysql'", "mysql://a:b@h/x") == (
        "unsupported database 'mysql'"
    )


def test_check_masks_a_platform_url_it_cannot_reach(tmp_path: Path) -> None:
    done = _corral(
        "check",
        "--team",
        TEAM,
        cwd=tmp_path,
        SLACK_BOT_TOKEN="xoxb-test",
        SLACK_APP_TOKEN="xapp-test",
        SLACK_API_URL=f"http://proxy:{SECRET}@127.0.0.1:1/api/",
    )
    _no_traceback(done)
    assert "could not reach Slack at http://proxy:***@127.0.0.1:1/api/" in done.stdout
    # Said once, in Corral's words: no raw line of the Slack library, no retry.
    assert "slack_sdk" not in done.stdout + done.stderr
    assert done.stderr == ""


def test_check_asks_each_model_of_the_team(tmp_path: Path) -> None:
    from fakes.model_server import Fail, FakeModelServer

    with FakeModelServer.in_thread() as models:
        ok = _corral("check", "--team", TEAM, cwd=tmp_path, **models.env())
        models.fail_always("gpt-5", 401)
        models.script("claude-sonnet-4-5", Fail(404, message="model: claude-sonnet-4-5 not found"))
        wrong = _corral("check", "--team", TEAM, cwd=tmp_path, **models.env())
        asked = sorted(r.model for r in models.requests)
        openai_url, anthropic_url = models.openai_url, models.anthropic_url
        # Each asked for one token, and not again.
        tokens = {
            r.json.get("max_tokens", r.json.get("max_completion_tokens")) for r in models.requests
        }
    _no_traceback(ok)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert tokens == {1}
    assert asked == sorted(2 * ["claude-haiku-4-5", "claude-sonnet-4-5", "gpt-5", "gpt-5-mini"])
    _no_traceback(wrong)
    assert wrong.returncode == 1
    assert f"error .env: openai/gpt-5 at {openai_url} refused the key (401: " in wrong.stdout
    assert (
        f"error .env: anthropic/claude-sonnet-4-5 at {anthropic_url}: the server has no such model"
        in wrong.stdout
    )
    assert "fix: set OPENAI_API_KEY to a valid key" in wrong.stdout
    assert "change the model in team.yaml's models:" in wrong.stdout
    assert wrong.stdout.count("error ") == 2


def test_check_names_a_model_provider_that_is_down(tmp_path: Path) -> None:
    down = f"http://u:{SECRET}@127.0.0.1:1/v1"
    done = _corral("check", "--team", TEAM, cwd=tmp_path, OPENAI_BASE_URL=down)
    _no_traceback(done)
    assert done.returncode == 1
    shown = "http://u:***@127.0.0.1:1/v1"
    for model in ("gpt-5", "gpt-5-mini"):
        assert f"error .env: cannot reach openai/{model} at {shown}: " in done.stdout
    assert "fix: start the server, or check OPENAI_BASE_URL" in done.stdout


def test_check_offline_reaches_nothing(tmp_path: Path) -> None:
    from fakes.model_server import FakeModelServer
    from fakes.slack_server import FakeSlackServer

    with FakeModelServer.in_thread() as models, FakeSlackServer.in_thread() as slack:
        done = _corral(
            "check",
            "--offline",
            "--team",
            TEAM,
            cwd=tmp_path,
            **models.env(),
            **slack.env(),
            DATABASE_URL=DOWN_DATABASE,
            REDIS_URL=DOWN_REDIS,
        )
        asked_models, asked_slack = models.requests, slack.calls
    _no_traceback(done)
    assert done.returncode == 0, done.stdout + done.stderr
    assert asked_models == [] and asked_slack == []
    assert "offline: the database server, Redis, the model providers, Slack and Discord" in (
        done.stdout
    )
    assert done.stdout.strip().endswith("7 agents, 1 schedule — ok")


def test_the_models_status_masks_a_provider_url() -> None:
    from corral.agents.llm.registry import ModelRegistry, ProviderSettings

    models = ModelRegistry({}, ProviderSettings(openai_base_url=f"http://u:{SECRET}@llm:8000/v1"))
    assert models.status_line() == "Model providers: openai at http://u:***@llm:8000/v1."


# ---------------------------------------------------------------------------------------
# Shell commands behave like shell commands


def test_refusals_go_to_stderr_with_a_non_zero_exit(tmp_path: Path) -> None:
    forgot = _corral("memory", "forget", "999", "--team", TEAM, cwd=tmp_path)
    _no_traceback(forgot)
    assert forgot.returncode == 1
    assert forgot.stdout == ""
    assert "error: There is no memory #999." in forgot.stderr

    removed = _corral("schedule", "remove", "nonexistent", "--team", TEAM, cwd=tmp_path)
    _no_traceback(removed)
    assert removed.returncode == 2
    assert "Usage: corral schedule remove [OPTIONS] NAME" in removed.stderr
    assert "There is no schedule `nonexistent` (see `corral schedule list`)" in removed.stderr
    assert "/corral" not in removed.stderr

    ghost = _corral("memory", "add", "--agent", "ghost", "x", "--team", TEAM, cwd=tmp_path)
    _no_traceback(ghost)
    assert ghost.returncode == 2
    assert "Usage: corral memory add [OPTIONS] TEXT" in ghost.stderr
    assert "There is no agent `ghost`" in ghost.stderr and "/memory" not in ghost.stderr

    declared = _corral("schedule", "remove", "standup", "--team", TEAM, cwd=tmp_path)
    assert declared.returncode == 1
    assert "pause it with corral schedule pause standup" in declared.stderr


def test_a_failed_schedule_run_exits_non_zero(tmp_path: Path) -> None:
    # No model provider: the agent cannot answer, and the fire fails.
    done = _corral("schedule", "run", "standup", "--team", TEAM, cwd=tmp_path)
    _no_traceback(done)
    assert done.returncode == 1
    assert "error: standup ran: " in done.stderr and ": failed — " in done.stderr


def test_what_the_shell_does_is_the_shell_users(tmp_path: Path) -> None:
    user = getpass.getuser()
    added = _corral(
        "schedule", "add", "every 1h", "@owl", "#qa", "Check CI", "--team", TEAM, cwd=tmp_path
    )
    assert added.returncode == 0, added.stderr
    listed = _corral("schedule", "list", "--team", TEAM, cwd=tmp_path)
    assert f"owl-1 (shell, by {user}): @owl in #qa" in listed.stdout
    assert "chat, by" not in listed.stdout


def test_counts_agree_with_their_number(tmp_path: Path) -> None:
    checked = _corral("check", "--team", TEAM, cwd=tmp_path)
    assert checked.stdout.strip().endswith("7 agents, 1 schedule — ok")
    _corral("memory", "add", "Deploys", "happen", "on", "Fridays", "--team", TEAM, cwd=tmp_path)
    exported = _corral("memory", "export", "--team", TEAM, cwd=tmp_path)
    assert "Team memory: 1 memory, as MEMORY.md" in exported.stderr


def test_db_upgrade_says_what_it_applied(tmp_path: Path) -> None:
    first = _corral("db", "upgrade", cwd=tmp_path)
    _no_traceback(first)
    assert first.returncode == 0
    assert "up to date" not in first.stdout
    assert re.search(r": applied \d+ migrations \(0001 to \d{4}\)$", first.stdout.strip())
    again = _corral("db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0 and again.stdout.strip().endswith(": already up to date")


def test_output_to_a_pipe_is_neither_wrapped_nor_padded(tmp_path: Path) -> None:
    words = " ".join(f"word{i}" for i in range(60))  # far wider than 80 columns
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    added = subprocess.run(
        [CORRAL, "memory", "add", "--team", TEAM, *words.split()],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**env, "COLUMNS": "80"},
        timeout=60,
    )
    assert added.returncode == 0, added.stdout + added.stderr
    listed = _corral("memory", "list", "--team", TEAM, cwd=tmp_path, COLUMNS="80")
    for done in (added, listed):
        _no_traceback(done)
        assert any(words in line for line in done.stdout.splitlines()), done.stdout
        assert [line for line in done.stdout.splitlines() if line != line.rstrip()] == []


def test_run_starts_without_a_spurious_slack_warning(tmp_path: Path) -> None:
    from fakes.slack_server import FakeSlackServer

    with FakeSlackServer.in_thread() as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
        # In the process environment, where bolt reads SLACK_BOT_TOKEN by itself.
        env = {**env, **slack.env(), "CORRAL_HTTP_PORT": str(_free_port()), "COLUMNS": "200"}
        env.pop("DATABASE_URL", None)
        env.pop("REDIS_URL", None)
        service = subprocess.Popen(
            [CORRAL, "run", "--team", TEAM],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=tmp_path,
            env=env,
        )
        lines = []
        assert service.stdout is not None
        for line in service.stdout:
            lines.append(line)
            if "corral.service HTTP on" in line:
                break
        service.terminate()
        rest, _ = service.communicate(timeout=30)
    said = "".join(lines) + rest
    assert "corral.service HTTP on" in said, said
    assert "WARNING slack_bolt" not in said
    assert "`token` will be unused" not in said
    assert "Traceback" not in said


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_run_help_names_both_platforms_and_what_it_serves(tmp_path: Path) -> None:
    done = _corral("run", "--help", cwd=tmp_path)
    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    for said in ("Slack", "Discord", "DISCORD_TOKEN", "SLACK_APP_TOKEN", "/healthz", "/metrics"):
        assert said in text, text
