"""The ``corral`` command line as users run it: exit codes and messages, never a
traceback."""

from __future__ import annotations

import os
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
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL"))
    }
    return subprocess.run(
        [CORRAL, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**base, **env},
        timeout=60,
    )


def test_check_passes_on_the_sample_team(tmp_path: Path) -> None:
    done = _corral(
        "check", "--team", str(ROOT / "team.yaml"), cwd=tmp_path, ANTHROPIC_API_KEY="sk-test"
    )
    assert done.returncode == 0, done.stdout + done.stderr
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
        env = {**slack.env(), "ANTHROPIC_API_KEY": "sk-test"}
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
