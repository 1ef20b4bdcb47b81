"""``corral check`` warns of risky configurations: nobody to approve or administer, tools
that act outside the thread without approval, a ``.env`` others may read, and Slack over
HTTP without its signing secret."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_cli import ROOT, _corral

from corral.agents.team_loader import read_team

TEAM = """\
models:
  fast: [anthropic/claude-haiku-4-5]
agents:
  roo:
    display_name: Roo
    role: Operations lead
    tools: [memory, post_message, schedule]
    approval: [post_message, schedule]
approvers: [U0ADMIN]
"""


def _warnings(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "team.yaml"
    path.write_text(text, encoding="utf-8")
    return [f"{w.line}: {w.message}" for w in read_team(path).warnings]


def test_a_team_without_admins_or_approvers_is_warned_of(tmp_path: Path) -> None:
    assert _warnings(tmp_path, TEAM) == []
    (warning,) = _warnings(tmp_path, TEAM.replace("approvers: [U0ADMIN]\n", ""))
    assert "no admins and no approvers" in warning
    admins_only = TEAM.replace("approvers: [U0ADMIN]", "roles: {admins: [U0ADMIN]}")
    assert _warnings(tmp_path, admins_only) == []


@pytest.mark.parametrize(
    ("approval", "unapproved"),
    [
        ("[post_message, schedule]", []),
        ("[untrusted]", []),
        ("[post_message]", ["schedule"]),
        ("[]", ["post_message", "schedule"]),
    ],
)
def test_tools_acting_outside_the_thread_without_approval_are_warned_of(
    tmp_path: Path, approval: str, unapproved: list[str]
) -> None:
    text = TEAM.replace("approval: [post_message, schedule]", f"approval: {approval}")
    warnings = _warnings(tmp_path, text)
    assert warnings == [
        f"7: `roo` may use `{tool}`, which acts outside the thread, without anyone's "
        "approval: a message it reads could make it post or schedule"
        for tool in unapproved
    ]


def test_a_env_file_others_may_read_is_warned_of(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("ANTHROPIC_API_KEY=sk-ant-test\n", encoding="utf-8")
    env.chmod(0o644)
    team = str(ROOT / "team.yaml")
    shared = _corral("check", "--offline", "--team", team, cwd=tmp_path)
    env.chmod(0o600)
    private = _corral("check", "--offline", "--team", team, cwd=tmp_path)
    assert shared.returncode == 0, shared.stdout + shared.stderr
    assert "may read it (mode 0644)" in shared.stdout and "chmod 600 .env" in shared.stdout
    assert private.returncode == 0, private.stdout + private.stderr
    assert "may read it" not in private.stdout


def test_slack_over_http_without_a_signing_secret_is_reported(tmp_path: Path) -> None:
    team = str(ROOT / "team.yaml")
    token = {"SLACK_BOT_TOKEN": "xoxb-test"}
    http = _corral("check", "--offline", "--team", team, cwd=tmp_path, **token)
    signed = _corral(
        "check", "--offline", "--team", team, cwd=tmp_path, SLACK_SIGNING_SECRET="s", **token
    )
    assert http.returncode == 1
    assert "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET is" in http.stdout
    assert signed.returncode == 0, signed.stdout + signed.stderr
