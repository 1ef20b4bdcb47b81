"""``corral audit`` from the shell, as users run it: the table, the ``--json`` export of
every matching entry, and the configuration load recorded once per change of the team
file (SQLite, the embedded default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from test_cli import ROOT, _corral


def _export(tmp_path: Path, team: str, *args: str) -> list[dict[str, Any]]:
    done = _corral("audit", "--json", "--team", team, *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def test_audit_json_exports_every_entry_and_config_loads_once_per_change(tmp_path: Path) -> None:
    team = tmp_path / "team.yaml"
    team.write_text((ROOT / "team.yaml").read_text())
    for n in range(3):
        added = _corral("memory", "add", "--team", str(team), f"fact {n}", cwd=tmp_path)
        assert added.returncode == 0, added.stderr

    rows = _export(tmp_path, str(team))
    assert [r["action"] for r in rows] == ["memory.add"] * 3 + ["config.load"]
    assert [r["subject"] for r in rows[:3]] == ["3", "2", "1"]
    assert rows[0]["detail"] == "fact 2" and rows[0]["outcome"] == "ok"
    assert rows[0]["platform"] == "shell"
    load = rows[-1]
    assert (load["actor"], load["subject"]) == ("corral", str(team.resolve()))
    assert "agents.roo" in json.loads(load["detail"])["parts"]

    # A changed file is recorded once, with what changed.
    team.write_text(team.read_text().replace("Operations lead", "Head of operations"))
    _corral("status", "--team", str(team), cwd=tmp_path)
    loads = _export(tmp_path, str(team), "--action", "config.")
    assert len(loads) == 2
    assert json.loads(loads[0]["detail"])["changed"] == ["agents.roo"]

    table = _corral("audit", "--team", str(team), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    assert "newest first: 5 entries" in table.stdout
    assert "memory.add" in table.stdout and "config.load" in table.stdout


def test_audit_options_are_checked_in_the_shell(tmp_path: Path) -> None:
    team = str(ROOT / "team.yaml")
    bad = _corral("audit", "--json", "--since", "yesterday", "--team", team, cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "`yesterday` is not an interval" in bad.stderr
    empty = _corral("audit", "--json", "--agent", "owl", "--team", team, cwd=tmp_path)
    assert empty.returncode == 0 and empty.stdout == ""
