"""``team.yaml`` fuzzed: random text, and the sample team with its fields removed, nulled,
retyped and garbled. Loading gives a team or a :class:`TeamFileError` whose every problem
names the file (and its line where there is one); never another exception."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import Any

import pytest
from fuzz_strategies import mangled, outside_text
from hypothesis import given
from hypothesis import strategies as st
from ruamel.yaml import YAML

from corral.agents.team import Team
from corral.agents.team_loader import TeamFileError, load_team

SAMPLE = Path(__file__).resolve().parent.parent / "team.yaml"


def _sample() -> dict[str, Any]:
    loaded: dict[str, Any] = YAML(typ="safe").load(SAMPLE.read_text(encoding="utf-8"))
    return loaded


def _dump(data: Any) -> str:
    out = io.StringIO()
    YAML(typ="safe").dump(data, out)
    return out.getvalue()


def _loads_or_explains(text: str | bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "team.yaml"
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            # surrogatepass: a lone surrogate is written as the bytes a broken editor
            # would write, which are not UTF-8.
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
        try:
            team = load_team(path)
        except TeamFileError as err:
            assert err.problems
            for problem in err.problems:
                assert problem.file == str(path)
                assert problem.line is None or problem.line >= 1
                assert problem.message and problem.fix
                assert "Traceback" not in str(problem)
        else:
            assert isinstance(team, Team)


def test_the_sample_team_loads() -> None:
    assert load_team(SAMPLE).agents


@pytest.mark.parametrize("key", ["''", "0", "true", '"\\0"'])
def test_a_schedule_named_by_an_empty_string_a_number_or_a_boolean_is_explained(
    tmp_path: Path, key: str
) -> None:
    # Found by the fuzzer: the line of such a key was looked up and not found, and
    # `corral check` crashed with a TypeError instead of naming the line.
    path = tmp_path / "team.yaml"
    path.write_text(
        "models:\n  fast: [anthropic/claude-haiku-4-5]\n"
        "agents:\n  roo: {display_name: Roo, role: Ops}\n"
        f"schedules:\n  {key}: {{}}\n",
        encoding="utf-8",
    )
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    assert all(p.line == 6 for p in caught.value.problems), caught.value.problems


def test_a_schedule_whose_agent_is_a_list_is_explained(tmp_path: Path) -> None:
    # Found by the fuzzer: the check of a schedule's channel looked the list up as a
    # handle and crashed the loader with a TypeError.
    path = tmp_path / "team.yaml"
    path.write_text(
        "models:\n  fast: [anthropic/claude-haiku-4-5]\n"
        "agents:\n  roo: {display_name: Roo, role: Ops, allowed_channels: ['#ops']}\n"
        "schedules:\n  standup: {agent: [roo], channel: '#general', every: 1h, prompt: Hi}\n",
        encoding="utf-8",
    )
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    assert [p.line for p in caught.value.problems] == [6], caught.value.problems


@given(text=outside_text(2_000))
def test_fuzz_random_text_as_team_yaml(text: str) -> None:
    _loads_or_explains(text)


@given(body=st.binary(max_size=500))
def test_fuzz_random_bytes_as_team_yaml(body: bytes) -> None:
    _loads_or_explains(body)


@given(team=mangled(_sample()))
def test_fuzz_the_sample_team_garbled(team: dict[str, Any]) -> None:
    _loads_or_explains(_dump(team))
