"""``corral schedule …`` as users run it: on the sample team, against the fake model
server, with the default SQLite database in the folder it runs in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fakes.model_server import FakeModelServer

ROOT = Path(__file__).resolve().parents[1]
CORRAL = str(Path(sys.executable).with_name("corral"))
TEAM = str(ROOT / "team.yaml")


def _corral(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL", "REDIS_URL"))
    }
    done = subprocess.run(
        [CORRAL, *args], capture_output=True, text=True, cwd=cwd, env={**base, **env}, timeout=60
    )
    assert "Traceback" not in done.stdout + done.stderr, done.stderr
    return done


def test_schedule_commands_from_the_shell(tmp_path: Path) -> None:
    with FakeModelServer.in_thread() as server:
        env = server.env()

        def corral(*args: str) -> str:
            done = _corral("schedule", *args, "--team", TEAM, cwd=tmp_path, env=env)
            assert done.returncode == 0, done.stderr
            # Rendered as Markdown and wrapped to the terminal: compare the words.
            return " ".join(done.stdout.split())

        listed = corral("list")
        # team.yaml's standup is brought into the database by any schedule command.
        assert "standup (team.yaml): @roo in #general, 0 9 * * mon-fri (Europe/Berlin)" in listed
        added = corral("add", "0 9 * * 1-5", "@lark", "#content", "Draft this week's post ideas")
        assert "Added lark-1: @lark in #content, 0 9 * * 1-5 (UTC)" in added
        ran = corral("run", "lark-1")
        # The agent's post is shown in the terminal, then how the fire ended.
        assert "Draft this week's post ideas" in ran
        assert "lark-1 ran:" in ran and ": ran (run r-" in ran
        assert "Removed lark-1" in corral("remove", "lark-1")
        every = corral("add", "--tz", "Europe/Berlin", "every 30m", "@owl", "C0QA", "Check CI")
        assert "Added owl-1: @owl in C0QA, every 30m (Europe/Berlin)" in every
        # A prompt is text as given, flags in it too.
        flagged = corral("add", "every 1h", "@owl", "C0QA", "Rerun with --agent owl --name x")
        assert "Added owl-2: @owl in C0QA, every 1h (UTC)" in flagged
        assert "Rerun with --agent owl --name x" in corral("run", "owl-2")


def test_a_wrong_grace_setting_is_one_clear_error(tmp_path: Path) -> None:
    done = _corral(
        "schedule", "list", "--team", TEAM, cwd=tmp_path, env={"CORRAL_SCHEDULE_GRACE": "soon"}
    )
    assert done.returncode == 1
    assert done.stderr.startswith("error: CORRAL_SCHEDULE_GRACE=soon is not allowed: use an")
