"""``corral memory …`` from a shell: export to stdout, import of MEMORY.md into another
database, promote; clear messages, never a traceback. (Importing twice, and the round
trip in detail: ``test_memory_commands.py``.)"""

from __future__ import annotations

import getpass
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORRAL = str(Path(sys.executable).with_name("corral"))
TEAM = str(ROOT / "team.yaml")


def corral(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL"))
    }
    return subprocess.run(
        [CORRAL, *args, "--team", TEAM],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        timeout=60,
    )


def test_export_import_and_promote_from_the_shell(tmp_path: Path) -> None:
    here, there = tmp_path / "here", tmp_path / "there"
    here.mkdir()
    there.mkdir()
    assert corral("memory", "add", "Deploys", "happen", "on", "Fridays", cwd=here).returncode == 0
    private = corral("memory", "add", "--agent", "beaver", "Staging", "is", "flaky", cwd=here)
    assert "Remembered #2 (agent): Staging is flaky" in private.stdout
    promoted = corral("memory", "promote", "2", cwd=here)
    assert "Promoted beaver's #2 to the team: Staging is flaky" in promoted.stdout

    exported = corral("memory", "export", cwd=here)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("# Team memory\n")
    assert "- Deploys happen on Fridays <!-- corral" in exported.stdout
    assert "Team memory: 2 memories" in exported.stderr
    (there / "MEMORY.md").write_text(exported.stdout, encoding="utf-8")

    first = corral("memory", "import", "MEMORY.md", cwd=there)
    assert first.returncode == 0, first.stderr
    assert "Imported MEMORY.md: 2 new memories, 0 already known." in first.stdout
    found = corral("memory", "search", "flaky", "staging", cwd=there)
    assert f"#2 [team] Staging is flaky — {getpass.getuser()}, " in found.stdout


def test_import_of_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    done = corral("memory", "import", "nowhere.md", cwd=tmp_path)
    assert done.returncode == 2
    assert "'nowhere.md' does not exist" in done.stderr
    assert "Traceback" not in done.stderr


def test_text_with_a_flag_in_it_is_stored_as_given(tmp_path: Path) -> None:
    added = corral("memory", "add", "Call it with --agent beaver, not -a", cwd=tmp_path)
    assert added.returncode == 0, added.stderr
    assert "Remembered #1 (team): Call it with --agent beaver, not -a" in added.stdout
    owl = corral("memory", "add", "--agent", "@Owl", "Pass --channel C1", "to it", cwd=tmp_path)
    assert "Remembered #2 (agent): Pass --channel C1 to it" in owl.stdout
    listed = corral("memory", "list", "--agent", "owl", cwd=tmp_path)
    assert "#2 [agent:owl] Pass --channel C1 to it" in listed.stdout


def test_a_malformed_argument_is_a_usage_error(tmp_path: Path) -> None:
    done = corral("memory", "forget", "soon", cwd=tmp_path)
    assert done.returncode == 2
    assert "Error: Give the memory's number" in done.stderr
    assert "Traceback" not in done.stderr
