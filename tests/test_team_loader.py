"""Loading team.yaml: the sample loads, and every kind of mistake names its line and a fix."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from corral.agents.team import Team
from corral.agents.team_check import check_environment
from corral.agents.team_loader import (
    LoadedTeam,
    Problem,
    TeamFileError,
    load_team,
    parse_every,
    read_team,
)

ROOT = Path(__file__).resolve().parent.parent
BROKEN = Path(__file__).resolve().parent / "data" / "broken"

MINIMAL = """\
models:
  fast: [anthropic/claude-haiku-4-5]
agents:
  roo:
    display_name: Roo
    role: Operations lead
"""


def problems_of(path: Path) -> list[Problem]:
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    return caught.value.problems


def write(tmp_path: Path, text: str, name: str = "team.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# --- the sample team ----------------------------------------------------------------------


def test_sample_team_loads() -> None:
    team = load_team(ROOT / "team.yaml")
    assert {"roo", "beaver", "owl", "otter", "lark", "bee", "fox"} <= set(team.agents)
    assert team.router_handle() == "roo"
    assert team.agent("beaver").approval == ["post_message"]
    assert set(team.models) == {"fast", "smart"}
    assert team.schedules["standup"].agent == "roo"
    for handle, agent in team.agents.items():
        assert agent.instructions.count(".") >= 3, f"{handle} needs real instructions"


def test_sample_env_example_changes_nothing_when_copied() -> None:
    """Every assignment in .env.example is commented out (tests/test_docs.py checks that
    each setting is there)."""
    text = (ROOT / ".env.example").read_text(encoding="utf-8")
    assignments = [line for line in text.splitlines() if "=" in line and line.strip()]
    assert all(line.startswith("#") for line in assignments), "a copy must change nothing"


# --- broken files: the message and the line -----------------------------------------------


@pytest.mark.parametrize(
    ("name", "line", "message"),
    [
        ("unknown_handoff", 9, "handoff_to names `hawk`, which is not an agent of this team"),
        ("unknown_tier", 11, "`model: smartest` names a tier that `models:` does not define"),
        ("duplicate_handle", 13, "the handle `beaver` is used twice (first on line 7)"),
        ("bad_cron", 9, 'cron "0 25 * * mon-fri" is not valid'),
        ("syntax_error", 7, "YAML syntax error"),
        ("unknown_key", 7, "unknown key `colour` in agent `roo`"),
        ("missing_role", 7, "agent `owl` has no `role`"),
        ("unknown_tool", 9, "unknown tool `deploy`"),
        ("approval_unlisted", 8, "`approval:` lists `post_message`, which is not one of"),
        ("two_routers", 11, "more than one agent has `router: true`: roo, owl"),
        ("bad_every", 9, "`5 minutes` is not an interval"),
        ("unknown_timezone", 10, "unknown time zone `Europe/Berlln`"),
        ("missing_instructions_file", 7, "instructions_file `prompts/roo.md` was not found"),
    ],
)
def test_broken_file_names_the_line_and_the_mistake(name: str, line: int, message: str) -> None:
    path = BROKEN / f"{name}.yaml"
    problems = problems_of(path)
    assert len(problems) == 1, problems
    problem = problems[0]
    assert (problem.file, problem.line) == (str(path), line)
    assert message in problem.message
    assert problem.fix
    assert str(problem).startswith(f"{path}:{line}: {problem.message} — fix: ")


def test_fixes_say_what_to_write() -> None:
    [handoff] = problems_of(BROKEN / "unknown_handoff.yaml")
    assert handoff.fix == "use one of beaver"
    [tier] = problems_of(BROKEN / "unknown_tier.yaml")
    assert "fast, smart" in tier.fix and "did you mean `smart`" in tier.fix
    [key] = problems_of(BROKEN / "unknown_key.yaml")
    assert "display_name, icon, role" in key.fix
    [syntax] = problems_of(BROKEN / "syntax_error.yaml")
    assert "indent" in syntax.fix
    [zone] = problems_of(BROKEN / "unknown_timezone.yaml")
    assert "did you mean `Europe/Berlin`" in zone.fix
    [tool] = problems_of(BROKEN / "unknown_tool.yaml")
    assert "memory" in tool.fix and "post_message" in tool.fix
    [missing] = problems_of(BROKEN / "missing_instructions_file.yaml")
    assert str(BROKEN / "prompts" / "roo.md") in missing.message


def test_every_problem_of_a_file_is_reported() -> None:
    path = BROKEN / "three_problems.yaml"
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    found = [(p.line, p.message) for p in caught.value.problems]
    assert found == [
        (8, "handoff_to names `hawk`, which is not an agent of this team"),
        (9, "agent `beaver` has no `role`"),
        (15, "schedule `standup` is for `kanga`, which is not an agent of this team"),
    ]
    assert str(caught.value).splitlines() == [str(p) for p in caught.value.problems]


# --- more mistakes, written inline --------------------------------------------------------


def test_missing_team_file_says_where_it_looked_and_how_to_point_elsewhere(
    tmp_path: Path,
) -> None:
    [problem] = problems_of(tmp_path / "nowhere.yaml")
    assert problem.line is None
    assert str(tmp_path / "nowhere.yaml") in problem.message
    assert "--team PATH" in problem.fix and "CORRAL_TEAM" in problem.fix


@pytest.mark.parametrize(
    ("text", "line", "message", "fix"),
    [
        ("", None, "the team file is empty", "sample"),
        ("- roo\n- beaver\n", 1, "must be a mapping", "agents:"),
        ('agents:\n  roo:\n    role: "Ops\n', 3, "YAML syntax error", "close the quote"),
        ("agents:\n  roo\n    role: Ops\n", 3, "YAML syntax error", "`:`"),
        ("agents:\n\troo: {}\n", 2, "YAML syntax error", "tabs"),
        ("agents: [roo, beaver\n", 2, "YAML syntax error", "]"),
    ],
)
def test_unusable_yaml(tmp_path: Path, text: str, line: int | None, message: str, fix: str) -> None:
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == line
    assert message in problem.message
    assert fix in problem.fix


@pytest.mark.parametrize(
    ("extra", "line", "message"),
    [
        # An agent after roo, whose key is on line 7.
        ("  Night Owl:\n    display_name: Owl\n    role: QA\n", 7, "is not a valid handle"),
        (
            "  owl:\n    display_name: Owl\n    role: QA\n    model: google/gemini\n",
            10,
            "names the unknown provider `google`",
        ),
        (
            "  owl:\n    display_name: Owl\n    role: QA\n    handoff_to: [owl]\n",
            10,
            "`owl` hands off to itself",
        ),
        (
            "  owl:\n    display_name: Owl\n    role: QA\n    router: maybe\n",
            10,
            "`agents.owl.router` should be true or false, not `maybe`",
        ),
        (
            "  owl:\n    display_name: Owl\n    role: QA\n    channels: #qa\n",
            10,
            "`agents.owl.channels` should be a list, but it is empty",
        ),
        ("approvers: [U0ADMIN, 1234]\n", 7, "`approvers[1]` should be text, not `1234`"),
        ("approvers: U0ADMIN\n", 7, "`approvers` should be a list"),
        ("limits:\n  handoff_depth: 0\n", 8, "`limits.handoff_depth` should be greater than"),
        (
            "limits:\n  models:\n    mistral: {requests_per_minute: 5}\n",
            9,
            "`limits.models` has limits for the unknown provider `mistral`",
        ),
        (
            "limits:\n  models:\n    google/gemini: {requests_per_minute: 5}\n",
            9,
            "`limits.models`: `google/gemini` names the unknown provider `google`",
        ),
        (
            "limits:\n  models:\n    anthropic/: {requests_per_minute: 5}\n",
            9,
            "`limits.models`: `anthropic/` is not a provider/model",
        ),
        (
            "limits:\n  models:\n    openai: {requests_per_minute: -5}\n",
            9,
            "`limits.models.openai.requests_per_minute` should be greater than 0, not `-5`",
        ),
        (
            "limits:\n  models:\n    openai: {requests_per_day: 5}\n",
            9,
            "unknown key `requests_per_day` in `limits.models.openai`",
        ),
        (
            "limits:\n  budget_usd_per_day: {default: 5, hawk: 9}\n",
            8,
            "a budget for `hawk`, which is not an agent of this team",
        ),
        (
            "limits:\n  budget_usd_per_day:\n    team: -1\n",
            9,
            "`limits.budget_usd_per_day.team` should be greater than or equal to 0, not `-1`",
        ),
        (
            "limits:\n  concurrent_runs: {team: 2}\n",
            8,
            "a concurrency limit for `team`, which is not an agent of this team",
        ),
        (
            "limits:\n  concurrent_runs: {roo: 0}\n",
            8,
            "`limits.concurrent_runs.roo` should be greater than 0, not `0`",
        ),
        (
            "prices:\n  anthropic: {input: 1, output: 5}\n",
            8,
            "`prices`: `anthropic` is not a provider/model",
        ),
        (
            "prices:\n  mistral/large: {input: 1, output: 5}\n",
            8,
            "`prices`: `mistral/large` names the unknown provider `mistral`",
        ),
        (
            "prices:\n  anthropic/claude-haiku-4-5:\n    input: 1\n    output: -5\n",
            10,
            "`prices.anthropic/claude-haiku-4-5.output` should be greater than or equal to 0",
        ),
        (
            "prices:\n  anthropic/claude-haiku-4-5: {output: 5}\n",
            8,
            "`prices.anthropic/claude-haiku-4-5` has no `input`",
        ),
        ("auto: {simple: fast, complex: smart}\n", 7, "`auto.complex: smart` names no tier"),
        (
            "auto: {simple: fast, complex: google/gemini}\n",
            7,
            "`auto.complex: google/gemini` names the unknown provider `google`",
        ),
        ("auto: {simple: fast}\n", 7, "`auto` has no `complex`"),
        (
            "schedules:\n  a:\n    agent: roo\n    channel: x\n    prompt: y\n",
            8,
            "schedule `a`: give exactly one of `cron` and `every`",
        ),
        (
            "schedules:\n  a:\n    every: 0s\n    agent: roo\n    channel: x\n    prompt: y\n",
            9,
            "`0s` is zero",
        ),
        (
            "schedules:\n  a:\n    cron: '* * *'\n    agent: roo\n    channel: x\n    prompt: y\n",
            9,
            "Wrong number of fields",
        ),
        ("teams: {}\n", 7, "unknown key `teams` in the team file"),
    ],
)
def test_mistakes_after_a_valid_agent(tmp_path: Path, extra: str, line: int, message: str) -> None:
    problems = problems_of(write(tmp_path, MINIMAL + extra))
    assert [(p.line, message in p.message) for p in problems] == [(line, True)], problems


def test_a_channel_has_one_default_agent(tmp_path: Path) -> None:
    text = MINIMAL + '    channels: ["#dev"]\n  beaver:\n    display_name: B\n    role: Dev\n'
    text += '    channels: ["#ops", "#Dev"]\n'
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 11
    assert problem.message == "`#Dev` is the default channel of both `roo` and `beaver`"


def test_models_must_be_provider_slash_model(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "[anthropic/claude-haiku-4-5]", "[anthropic/claude-haiku-4-5,\n    gpt-5]"
    )
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 3
    assert problem.message == "tier `fast`: `gpt-5` is not a provider/model"


def test_the_default_tier_must_exist(tmp_path: Path) -> None:
    text = MINIMAL.replace("fast:", "smart:")
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 4
    assert "the default tier `fast` is not defined" in problem.message


def test_a_literal_model_needs_no_tier(tmp_path: Path) -> None:
    team = load_team(write(tmp_path, MINIMAL + "    model: openai/gpt-5\n"))
    assert team.agent("roo").model == "openai/gpt-5"


def test_handles_that_differ_only_by_case(tmp_path: Path) -> None:
    text = MINIMAL + "  Roo:\n    display_name: Roo 2\n    role: QA\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.line, p.message) for p in problems] == [
        (7, "`Roo` is not a valid handle"),
        (7, "the handles `roo` and `Roo` differ only by case"),
    ]


def test_a_handle_may_equal_another_agents_display_name(tmp_path: Path) -> None:
    text = MINIMAL + "  kanga:\n    display_name: Joey\n    role: Helper\n"
    text += "  joey:\n    display_name: Kanga\n    role: Helper\n"
    assert set(load_team(write(tmp_path, text)).agents) == {"roo", "kanga", "joey"}


def test_approval_of_memory_covers_remember_and_recall(tmp_path: Path) -> None:
    text = MINIMAL + "    tools: [memory]\n    approval: [remember]\n"
    assert load_team(write(tmp_path, text)).agent("roo").approval == ["remember"]


def test_instructions_file_is_read_relative_to_the_team_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "prompts").mkdir()
    (tmp_path / "prompts" / "roo.md").write_text("You run operations.\n", encoding="utf-8")
    path = write(tmp_path, MINIMAL + "    instructions_file: prompts/roo.md\n")
    monkeypatch.chdir(ROOT)
    assert load_team(path).agent("roo").instructions == "You run operations.\n"


def test_instructions_and_instructions_file_exclude_each_other(tmp_path: Path) -> None:
    (tmp_path / "roo.md").write_text("From the file.", encoding="utf-8")
    text = MINIMAL + "    instructions: Inline.\n    instructions_file: roo.md\n"
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 8
    assert "both `instructions` and `instructions_file`" in problem.message


def test_duplicate_keys_anywhere_are_reported_with_both_lines(tmp_path: Path) -> None:
    text = MINIMAL + "    role: Someone else\n"
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 7
    assert problem.message == "`role` appears twice in `agents.roo` (first on line 6)"


def test_yaml_anchors_and_merges_are_understood(tmp_path: Path) -> None:
    text = MINIMAL.replace("  roo:\n", "  roo: &base\n") + "  kanga:\n    <<: *base\n"
    text += "    display_name: Kanga\n"
    team = load_team(write(tmp_path, text))
    assert team.agent("kanga").role == "Operations lead"


# --- parse_every --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "interval"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1d", timedelta(days=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2d12h", timedelta(days=2, hours=12)),
        (" 90m ", timedelta(minutes=90)),
    ],
)
def test_parse_every(text: str, interval: timedelta) -> None:
    assert parse_every(text) == interval


@pytest.mark.parametrize("text", ["", "30", "5 minutes", "1m1h", "5M", "-5m", "1.5h", "1w"])
def test_parse_every_refuses_what_is_not_an_interval(text: str) -> None:
    with pytest.raises(ValueError, match="is not an interval such as 30s"):
        parse_every(text)


@pytest.mark.parametrize("text", ["0s", "0h0m"])
def test_parse_every_refuses_zero(text: str) -> None:
    with pytest.raises(ValueError, match="is zero"):
        parse_every(text)


# --- check_environment --------------------------------------------------------------------

CONFIGURED = {
    "ANTHROPIC_API_KEY": "sk-ant-test",
    "OPENAI_API_KEY": "sk-test",
    "DATABASE_URL": "postgresql+asyncpg://corral:secret@localhost:5432/corral",
    "SLACK_BOT_TOKEN": "xoxb-1-2-abc",
    "SLACK_APP_TOKEN": "xapp-1-A-2-abc",
}


@pytest.fixture(scope="module")
def sample() -> Team:
    return load_team(ROOT / "team.yaml")


def test_a_configured_environment_has_no_problems(sample: Team) -> None:
    assert check_environment(sample, CONFIGURED) == []
    assert check_environment(sample, {"OPENAI_BASE_URL": "http://localhost:11434/v1"}) == []


def test_no_provider_is_a_warning_that_agents_say_so(sample: Team) -> None:
    [problem] = check_environment(sample, {"ANTHROPIC_API_KEY": " "})
    assert (problem.file, problem.line, problem.severity) == (".env", None, "warning")
    assert "agents will answer that no model is configured" in problem.message
    assert "ANTHROPIC_API_KEY" in problem.fix and "OPENAI_API_KEY" in problem.fix
    assert str(problem).startswith(".env: warning: no model provider")


def test_a_tier_without_a_configured_provider(tmp_path: Path) -> None:
    text = MINIMAL.replace("fast: [anthropic/claude-haiku-4-5]", "fast: [openai/gpt-5-mini]")
    text += "  beaver:\n    display_name: B\n    role: Dev\n    model: anthropic/claude-opus-4-1\n"
    team = load_team(write(tmp_path, text))
    [problem] = check_environment(team, {"ANTHROPIC_API_KEY": "sk-ant-test"})
    assert problem.message.startswith("no provider of `fast` (used by roo) is configured")
    assert problem.fix.startswith("set OPENAI_API_KEY")
    [problem] = check_environment(team, {"OPENAI_API_KEY": "sk-test"})
    assert "`anthropic/claude-opus-4-1` (used by beaver)" in problem.message


@pytest.mark.parametrize(
    ("env", "message", "severity"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL is not a database URL", "error"),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1"},
            "neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET",
            "error",
        ),
        ({"SLACK_APP_TOKEN": "xapp-1"}, "SLACK_BOT_TOKEN is not, so Slack stays off", "warning"),
        (
            {"SLACK_BOT_TOKEN": "xoxp-1", "SLACK_SIGNING_SECRET": "s"},
            "SLACK_BOT_TOKEN does not start with xoxb-",
            "error",
        ),
        (
            {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xoxb-2"},
            "SLACK_APP_TOKEN does not start with xapp-",
            "error",
        ),
    ],
)
def test_environment_mistakes(
    sample: Team, env: dict[str, str], message: str, severity: str
) -> None:
    [problem] = check_environment(sample, {"OPENAI_API_KEY": "k", **env})
    assert message in problem.message
    assert problem.severity == severity
    assert problem.fix


def test_database_urls_of_both_backends_are_accepted(sample: Team) -> None:
    for url in ("sqlite+aiosqlite:///corral.db", "postgresql+asyncpg://u:p@db/corral"):
        assert check_environment(sample, {"OPENAI_API_KEY": "k", "DATABASE_URL": url}) == []


# --- limits, prices and auto (issue 13) ----------------------------------------------------

TWO_TIERS = """\
models:
  fast: [anthropic/claude-haiku-4-5, openai/gpt-5-mini]
  smart: [anthropic/claude-sonnet-4-5]
agents:
  roo:
    display_name: Roo
    role: Operations lead
  beaver:
    display_name: Beaver
    role: Developer
    model: smart
approvers: [U0ADMIN]
"""


def read(tmp_path: Path, text: str) -> LoadedTeam:
    return read_team(write(tmp_path, text))


def test_the_sample_team_uses_the_new_limits_and_has_no_warnings() -> None:
    loaded = read_team(ROOT / "team.yaml")
    assert loaded.warnings == []
    limits = loaded.team.limits
    assert limits.providers == {}
    assert limits.team_budget() == 100
    assert limits.budget_for("beaver") == 50
    assert limits.concurrency_for("lark") == 1
    assert [key for key, _ in limits.limits_for("anthropic", "claude-haiku-4-5")] == [
        "anthropic/claude-haiku-4-5"
    ]
    assert loaded.team.auto is not None and loaded.team.auto.complex == "smart"


def test_limits_for_a_call_are_its_models_and_its_providers(tmp_path: Path) -> None:
    text = TWO_TIERS + (
        "limits:\n  models:\n"
        "    anthropic/claude-haiku-4-5: {requests_per_minute: 50, output_tokens_per_minute: 9}\n"
        "    anthropic: {requests_per_minute: 400}\n"
    )
    limits = read(tmp_path, text).team.limits
    found = limits.limits_for("anthropic", "claude-haiku-4-5")
    assert [(key, lim.requests_per_minute) for key, lim in found] == [
        ("anthropic/claude-haiku-4-5", 50),
        ("anthropic", 400),
    ]
    assert found[0][1].output_tokens_per_minute == 9
    assert found[0][1].tokens_per_minute is None
    assert [key for key, _ in limits.limits_for("anthropic", "claude-sonnet-4-5")] == ["anthropic"]
    assert limits.limits_for("openai", "gpt-5-mini") == []


def test_budgets_and_concurrency_fall_back_to_default_then_to_none(tmp_path: Path) -> None:
    text = TWO_TIERS + "limits:\n  budget_usd_per_day: {beaver: 50}\n  concurrent_runs: {roo: 2}\n"
    limits = read(tmp_path, text).team.limits
    assert (limits.budget_for("beaver"), limits.budget_for("roo")) == (50, None)
    assert limits.team_budget() is None
    assert (limits.concurrency_for("roo"), limits.concurrency_for("beaver")) == (2, None)
    text = TWO_TIERS + (
        "limits:\n  budget_usd_per_day: {team: 30, default: 5, beaver: 0}\n"
        "  concurrent_runs: {default: 3}\n"
    )
    limits = read(tmp_path, text).team.limits
    assert (limits.budget_for("beaver"), limits.budget_for("roo")) == (0, 5)
    assert limits.team_budget() == 30
    assert limits.concurrency_for("beaver") == 3


def test_limits_providers_still_works_and_is_said_to_be_deprecated(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = TWO_TIERS + (
        "limits:\n"
        "  providers:\n"
        "    anthropic: {requests_per_minute: 50, tokens_per_minute: 40000}\n"
        "    openai: {requests_per_minute: 60}\n"
        "  models:\n"
        "    openai: {requests_per_minute: 500}\n"
    )
    loaded = read(tmp_path, text)
    models = loaded.team.limits.models
    assert models["anthropic"].tokens_per_minute == 40000
    # An entry under `models:` for the same provider wins over the old spelling.
    assert models["openai"].requests_per_minute == 500
    [warning] = loaded.warnings
    assert (warning.line, warning.severity) == (14, "warning")
    assert warning.message == "limits.providers is deprecated: move these under limits.models"
    assert "rename `providers:` to `models:`" in warning.fix
    # Start-up (load_team) logs it with file and line.
    with caplog.at_level("WARNING"):
        load_team(tmp_path / "team.yaml")
    assert f"team.yaml:14: warning: {warning.message}" in caplog.text


def test_model_auto_needs_a_top_level_auto(tmp_path: Path) -> None:
    text = MINIMAL + "    model: auto\n"
    [problem] = problems_of(write(tmp_path, text))
    assert problem.line == 7
    assert problem.message == "`roo` has `model: auto`, but the team has no `auto:`"
    assert "auto: {simple: fast, complex: smart}" in problem.fix


def test_an_auto_agent_may_use_both_tiers(tmp_path: Path) -> None:
    text = TWO_TIERS.replace("    model: smart\n", "    model: auto\n")
    text += "auto: {simple: fast, complex: anthropic/claude-opus-4-1}\n"
    team = read(tmp_path, text).team
    assert team.auto is not None and team.auto.simple == "fast"
    assert team.models_of("beaver") == [
        "anthropic/claude-haiku-4-5",
        "openai/gpt-5-mini",
        "anthropic/claude-opus-4-1",
    ]
    assert team.models_of("roo") == ["anthropic/claude-haiku-4-5", "openai/gpt-5-mini"]


def test_a_price_overrides_and_a_limit_for_an_unused_model_are_warned_of(tmp_path: Path) -> None:
    text = TWO_TIERS + (
        "limits:\n  models:\n"
        "    openai/gpt-5: {requests_per_minute: 5}\n"  # line 15: no tier uses it
        "    anthropic/claude-sonnet-4-5: {requests_per_minute: 5}\n"
        "prices:\n"
        "  anthropic/claude-haiku-4-5-20251001: {input: 1, output: 5}\n"  # line 18: not used
        "  openai/gpt-5-mini: {input: 0.2, output: 1.5}\n"
    )
    warnings = read(tmp_path, text).warnings
    assert [(w.line, w.message) for w in warnings] == [
        (15, "`limits.models` has limits for `openai/gpt-5`, which no tier or agent uses"),
        (
            18,
            "`prices` has a price for `anthropic/claude-haiku-4-5-20251001`, which no tier "
            "or agent uses",
        ),
    ]
    assert all(w.severity == "warning" for w in warnings)


def test_a_price_for_the_base_of_a_dated_model_counts_as_used(tmp_path: Path) -> None:
    text = TWO_TIERS.replace("claude-sonnet-4-5]", "claude-sonnet-4-5-20250929]")
    text += "prices:\n  anthropic/claude-sonnet-4-5: {input: 3, output: 15}\n"
    assert read(tmp_path, text).warnings == []


def test_a_model_without_a_price_is_warned_of_until_it_has_one(tmp_path: Path) -> None:
    text = TWO_TIERS.replace("[anthropic/claude-sonnet-4-5]", "[openai/llama3.1:8b]")
    [warning] = read(tmp_path, text).warnings
    assert warning.line == 3
    assert warning.message == (
        "no price is known for `openai/llama3.1:8b`: its cost is recorded as unknown and "
        "budgets cannot count it"
    )
    assert 'add it under prices:, e.g. `"openai/llama3.1:8b":' in warning.fix
    priced = text + 'prices:\n  "openai/llama3.1:8b": {input: 0, output: 0}\n'
    assert read(tmp_path, priced).warnings == []


def test_a_budget_below_one_calls_worst_case_is_warned_of(tmp_path: Path) -> None:
    # Beaver's smart tier: 4096 output tokens of Sonnet at $15 per million are $0.06144.
    text = TWO_TIERS + "limits:\n  budget_usd_per_day:\n    default: 0.05\n    beaver: 0.06\n"
    warnings = read(tmp_path, text).warnings
    assert [(w.line, w.message) for w in warnings] == [
        (
            16,
            "`beaver`'s budget of $0.06 a day is less than one call's worst case ($0.0614: "
            "4096 output tokens of anthropic/claude-sonnet-4-5), so it could never answer",
        )
    ]
    assert warnings[0].fix == (
        "raise `beaver`'s budget to at least $0.07, or give it a cheaper model"
    )
    # Roo (fast: Haiku at $5, GPT-5 mini at $2 per million) can answer on $0.05.
    cheaper = text.replace("beaver: 0.06", "beaver: 0.07")
    assert read(tmp_path, cheaper).warnings == []


def test_a_team_with_errors_also_lists_its_warnings(tmp_path: Path) -> None:
    text = MINIMAL + "limits:\n  providers:\n    mistral: {requests_per_minute: 5}\n"
    problems = problems_of(write(tmp_path, text))
    assert [(p.line, p.severity) for p in problems] == [(8, "warning"), (9, "error")]


def test_a_mistake_under_limits_providers_is_reported_once_where_it_is(tmp_path: Path) -> None:
    text = MINIMAL + "limits:\n  providers:\n    openai: {requests_per_minute: -5}\n"
    errors = [p for p in problems_of(write(tmp_path, text)) if p.severity == "error"]
    assert [(p.line, p.message) for p in errors] == [
        (9, "`limits.providers.openai.requests_per_minute` should be greater than 0, not `-5`")
    ]
