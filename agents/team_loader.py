"""Reading ``team.yaml`` into a :class:`~agents.team.Team`, with every mistake reported.

A team file is written by hand, so each mistake in it comes back as what is wrong, where
(file and line) and how to fix it — all of them at once, not only the first. ruamel's
round-trip loader keeps the line of every key and list item; pydantic checks the shape;
the checks here cover what a schema cannot see: references between agents, tiers and
tools, cron strings, intervals and time zones.
"""

from __future__ import annotations

import difflib
import logging
import re
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from corral.agents.builtin_tools import BUILTIN_TOOLS
from corral.agents.llm.prices import PriceTable
from corral.agents.team import (
    AUTO,
    HANDLE_RE,
    MODEL_PROVIDERS,
    AgentConfig,
    ScheduleConfig,
    Team,
    listed,
)
from corral.agents.team_warnings import team_warnings
from corral.agents.tool import UNTRUSTED, ToolRegistry

Severity = Literal["error", "warning"]
Loc = tuple[str | int, ...]

_DEFAULT_TIER: str = AgentConfig.model_fields["model"].default
_DEFAULT_TIMEZONE: str = ScheduleConfig.model_fields["timezone"].default
_EXAMPLE_MODEL = "anthropic/claude-haiku-4-5"
_EVERY_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
# pydantic's own reading of booleans, so `router: yes` counts here as it does in the schema.
_BOOL = TypeAdapter(bool)
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Problem:
    """One mistake in a configuration file: where it is, what is wrong, how to fix it."""

    file: str
    line: int | None
    message: str
    fix: str
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        label = "warning: " if self.severity == "warning" else ""
        return f"{where}: {label}{self.message} — fix: {self.fix}"


class TeamFileError(Exception):
    """The team file cannot be used; ``problems`` lists every reason, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = sorted(problems, key=lambda p: p.line or 0)
        super().__init__("\n".join(str(p) for p in self.problems))


def parse_every(text: str) -> timedelta:
    """The interval of an ``every:`` such as ``30s``, ``5m``, ``1h``, ``1d`` or ``1h30m``.

    Raises ValueError, with a message fit for a user, when ``text`` is not such a duration
    or is zero.
    """
    match = _EVERY_RE.fullmatch(text.strip())
    if match is None or not any(match.groups()):
        raise ValueError(
            f"`{text}` is not an interval such as 30s, 5m, 1h, 1d or 1h30m "
            "(numbers with the units d, h, m or s, largest first)"
        )
    days, hours, minutes, seconds = (int(part or 0) for part in match.groups())
    try:
        interval = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    except OverflowError:
        raise ValueError(f"`{text}` is too long an interval") from None
    if interval <= timedelta(0):
        raise ValueError(f"`{text}` is zero; an interval must be longer than that")
    return interval


#: The shortest interval a schedule may fire at, from team.yaml, a command or an agent's
#: ``schedule`` tool: each fire is an agent's run, and a schedule every few seconds spends
#: the team's budget and floods its channel. A cron line never fires more often than once
#: a minute, so every cron line passes.
MIN_SCHEDULE_INTERVAL = timedelta(minutes=1)


def schedule_interval(text: str) -> timedelta:
    """The interval of a schedule's ``every`` (as :func:`parse_every`); ValueError, fit for
    a user, when it is shorter than :data:`MIN_SCHEDULE_INTERVAL`."""
    interval = parse_every(text)
    if interval < MIN_SCHEDULE_INTERVAL:
        shortest = int(MIN_SCHEDULE_INTERVAL.total_seconds() // 60)
        raise ValueError(
            f"`{text}` is too often: a schedule fires at most every {shortest}m "
            "(each fire is an agent's run)"
        )
    return interval


@dataclass(frozen=True)
class LoadedTeam:
    """A team file that can be used, and what in it is allowed but probably a mistake."""

    team: Team
    warnings: list[Problem]


def load_team(path: str | Path, tools: ToolRegistry = BUILTIN_TOOLS) -> Team:
    """:func:`read_team`'s team, its warnings logged (start-up shows them in the log)."""
    loaded = read_team(path, tools)
    for warning in loaded.warnings:
        _log.warning("%s", warning)
    return loaded.team


def read_team(path: str | Path, tools: ToolRegistry = BUILTIN_TOOLS) -> LoadedTeam:
    """Read, validate and check the team file at ``path``; ``tools:`` and ``approval:``
    entries are checked against the registry ``tools``.

    ``instructions_file`` entries are read (relative to the team file's folder) into the
    agents' ``instructions``. Raises :class:`TeamFileError` listing every problem found
    (warnings too) when there is an error; otherwise the warnings come with the team.
    """
    file = str(path)
    path = Path(path)
    text = _read_team_file(file, path)
    try:
        tree = YAML().compose(text)
        # Duplicate keys are reported from the composed tree, which knows both lines;
        # loading leniently lets every other check still run.
        loader = YAML()
        loader.allow_duplicate_keys = True
        root = loader.load(text)
    except YAMLError as err:
        raise TeamFileError([_syntax_problem(file, err)]) from None

    report = _Report(file, root)
    _find_duplicate_keys(report, tree, (), set())
    if root is None:
        report.add((), "the team file is empty", "start from the sample team.yaml")
        raise TeamFileError(report.problems)
    if not isinstance(root, CommentedMap):
        report.add_at(
            tree.start_mark.line + 1,
            "the top level of the team file must be a mapping of sections",
            "write `models:`, `agents:`, `schedules:`, `approvers:` and `limits:` at the start "
            "of their lines, as in the sample team.yaml",
        )
        raise TeamFileError(report.problems)

    data = _plain(root)
    team: Team | None = None
    try:
        team = Team.model_validate(data)
    except ValidationError as err:
        for error in err.errors():
            report.add(tuple(error["loc"]), *_explain(error))
    instructions = _check_team(report, data, path.resolve().parent, tools)
    if team is None or any(p.severity == "error" for p in report.problems):
        raise TeamFileError(report.problems)
    for loc, message, fix in team_warnings(team, PriceTable.builtin(team.prices), tools):
        report.warn(loc, message, fix)
    agents = {
        handle: agent.model_copy(update={"instructions": instructions[handle]})
        if handle in instructions
        else agent
        for handle, agent in team.agents.items()
    }
    return LoadedTeam(
        team.model_copy(update={"agents": agents}),
        sorted(report.problems, key=lambda p: p.line or 0),
    )


class _Report:
    """The problems of one team file, with locations turned into line numbers."""

    def __init__(self, file: str, root: Any) -> None:
        self.file = file
        self.root = root
        self.problems: list[Problem] = []

    def add(self, loc: Loc, message: str, fix: str) -> None:
        self.add_at(_line_of(self.root, loc), message, fix)

    def add_at(self, line: int | None, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, line, message, fix))

    def warn(self, loc: Loc, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, _line_of(self.root, loc), message, fix, "warning"))


def _read_team_file(file: str, path: Path) -> str:
    def fail(message: str, fix: str) -> TeamFileError:
        return TeamFileError([Problem(file, None, message, fix)])

    where = path.resolve()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail(
            f"no team file at {where}",
            "create one (start from the sample team.yaml), or point at another with "
            "`--team PATH` or the CORRAL_TEAM environment variable",
        ) from None
    except IsADirectoryError:
        raise fail(
            f"{where} is a folder, not a team file",
            "give the path of the YAML file itself with `--team PATH` or CORRAL_TEAM",
        ) from None
    except UnicodeDecodeError:
        raise fail(f"{where} is not UTF-8 text", "save the team file as UTF-8") from None
    except OSError as err:
        raise fail(f"cannot read {where}: {err.strerror}", "check its permissions") from None


def _syntax_problem(file: str, err: YAMLError) -> Problem:
    if not isinstance(err, MarkedYAMLError):
        return Problem(file, None, f"YAML error: {err}", _SYNTAX_FIX)
    problem = err.problem or ""
    context = err.context or ""
    mark = err.problem_mark or err.context_mark
    fix = next((hint for text, hint in _SYNTAX_HINTS if text in problem), _SYNTAX_FIX)
    if "quoted scalar" in context and err.context_mark is not None:
        # An unclosed quote is noticed only where the file ends; the quote is the mistake.
        mark, fix = err.context_mark, "close the quote that starts on this line"
    line = None if mark is None else mark.line + 1
    return Problem(file, line, f"YAML syntax error: {problem or context}", fix)


_SYNTAX_FIX = (
    "check the YAML around this line: indent with spaces, put `:` after each key, "
    "close quotes and brackets"
)
_SYNTAX_HINTS = (
    (
        "mapping values are not allowed",
        "a `key: value` appears where YAML did not expect one: check that the key on the line "
        "above ends with `:` and that both lines are indented alike; quote a value that "
        "contains `: `",
    ),
    ("could not find expected ':'", "add the missing `:` after the key, or close a quote"),
    (
        "expected <block end>",
        "indent consistently: the keys of one mapping must start in the same column",
    ),
    (
        "cannot start any token",
        "indent with spaces, not tabs, and quote values starting with @ or `",
    ),
    ("expected ',' or ']'", "close the list with `]` and put commas between its items"),
    ("expected ',' or '}'", "close the mapping with `}` and put commas between its entries"),
    ("found undefined alias", "define the anchor (`&name`) before using it (`*name`)"),
    ("expected a single document", "keep the whole team in one YAML document: remove `---`"),
)


def _find_duplicate_keys(report: _Report, node: Node, path: Loc, seen: set[int]) -> None:
    # Aliases share nodes, and a recursive alias would loop forever without `seen`.
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicate_keys(report, item, (*path, index), seen)
    elif isinstance(node, MappingNode):
        first_line: dict[str, int] = {}
        for key, value in node.value:
            if isinstance(key, ScalarNode) and key.value != "<<":
                line = key.start_mark.line + 1
                if key.value in first_line:
                    report.add_at(line, *_duplicate_message(path, key.value, first_line[key.value]))
                else:
                    first_line[key.value] = line
                _find_duplicate_keys(report, value, (*path, key.value), seen)


def _duplicate_message(path: Loc, key: str, first: int) -> tuple[str, str]:
    if path == ("agents",):
        return (
            f"the handle `{key}` is used twice (first on line {first})",
            "give each agent its own handle: rename one, or merge the two into one agent",
        )
    where = f"`{_dotted(path)}`" if path else "the top level"
    return (
        f"`{key}` appears twice in {where} (first on line {first})",
        "keep one of them: YAML would silently use only one",
    )


def _plain(value: Any) -> Any:
    """ruamel's round-trip values as plain dicts, lists and scalars, for pydantic."""
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    for kind in (bool, str, int, float):
        if isinstance(value, kind):
            return kind(value)
    return value


def _line_of(root: Any, loc: Loc) -> int | None:
    """The line (1-based) of the deepest part of ``loc`` that is in the file."""
    line = None
    node = root
    for part in loc:
        try:
            if isinstance(node, CommentedMap):
                position = node.lc.key(part)
            elif isinstance(node, CommentedSeq) and isinstance(part, int):
                position = node.lc.item(part)
            else:
                break
            # None: a key the validator spelled differently from the file (a null or a
            # number as a key), so not found by that spelling.
            if position is None:
                break
            line = position[0] + 1
            node = node[part]
        except (KeyError, IndexError):
            # A missing key (a required field), or one that came from a `<<` merge and so
            # has no position of its own: the enclosing key's line is the best answer.
            break
    return line


# What a field holds, as a noun phrase: "add `role:`, <hint>" and "`role` takes <hint>".
_HINTS = {
    "agents": "a mapping from handle to agent (see the sample team.yaml)",
    "display_name": "the name the agent posts under, e.g. `display_name: Owl`",
    "role": "one line on what the agent does, e.g. `role: Tests changes and reports bugs`",
    "model": f"a tier from `models:` or a provider/model such as {_EXAMPLE_MODEL}",
    "router": "`true` or `false`",
    "channels": 'a list of channel ids or quoted #names, e.g. `channels: ["#dev"]` '
    "(unquoted, `#` starts a YAML comment)",
    "tools": "a list of tool names, e.g. `tools: [memory, handoff]`",
    "handoff_to": "a list of handles, e.g. `handoff_to: [owl]`",
    "approval": "a list of tool names, e.g. `approval: [post_message]`",
    "agent": "the handle of the agent that runs it, e.g. `agent: roo`",
    "channel": 'where to post, e.g. `channel: "#general"` (quoted: `#` starts a YAML comment)',
    "prompt": "what the agent is asked each time, e.g. `prompt: Summarise yesterday's work.`",
    "cron": 'five crontab fields in quotes, e.g. `cron: "0 9 * * mon-fri"`',
    "every": "an interval such as 30s, 5m, 1h, 1d or 1h30m",
    "timezone": "an IANA time zone such as Europe/Berlin or UTC",
    "approvers": 'a list of platform user ids as quoted strings, e.g. `approvers: ["U0ADMIN"]`',
    "models": f"a mapping from tier to a list of provider/model, e.g. `fast: [{_EXAMPLE_MODEL}]`",
    "providers": "a mapping from provider to its limits, e.g. "
    "`anthropic: {requests_per_minute: 50, tokens_per_minute: 40000}`",
    "requests_per_minute": "a whole number above 0",
    "tokens_per_minute": "a whole number above 0",
    "input_tokens_per_minute": "a whole number above 0",
    "output_tokens_per_minute": "a whole number above 0",
    "budget_usd_per_day": "a mapping from `team`, `default` or a handle to dollars (0 or "
    "more), e.g. `{team: 100, default: 20, beaver: 50}`",
    "concurrent_runs": "a mapping from `default` or a handle to a whole number above 0, "
    "e.g. `{default: 4, lark: 1}`",
    "prices": "a mapping from provider/model to dollars per million tokens, e.g. "
    f"`{_EXAMPLE_MODEL}: {{input: 1.0, output: 5.0, cache_read: 0.1, cache_write: 1.25}}`",
    "input": "dollars per million tokens, 0 or more",
    "output": "dollars per million tokens, 0 or more",
    "cache_read": "dollars per million tokens, 0 or more",
    "cache_write": "dollars per million tokens, 0 or more",
    "auto": "the tiers `model: auto` picks between, e.g. `auto: {simple: fast, complex: smart}`",
    "simple": "a tier or a provider/model, e.g. `simple: fast`",
    "complex": "a tier or a provider/model, e.g. `complex: smart`",
    "handoff_depth": "a whole number from 1 to 20",
    "roles": 'who may do what, e.g. `roles: {admins: ["U0ADMIN"], approvers: ["U0LEAD"]}`',
    "admins": 'a list of platform user ids as quoted strings, e.g. `admins: ["U0ADMIN"]`',
    "allowed_channels": "a list of channel ids or quoted #names, e.g. `allowed_channels: "
    '["#sales"]` (leave it out: everywhere)',
    "allowed_users": 'a list of user or user-group ids, e.g. `allowed_users: ["U0SALES1", '
    '"S0SALESTEAM"]` (leave it out: everyone)',
    "redact": 'the team\'s own secret formats, e.g. `redact: {patterns: ["ACME-[0-9]{6}"]}`',
    "patterns": 'a list of regular expressions in quotes, e.g. `patterns: ["ACME-[0-9]{6}"]`',
    "messages_per_minute": "how many messages one person and one channel may send in a "
    "minute, e.g. `messages_per_minute: {person: 20, channel: 60}`",
    "person": "a whole number above 0, or `null` for no limit",
    "tool_steps": "a whole number from 1 to 50",
}
# Where a key's name means something else than at the top level.
_PATH_HINTS = {
    "limits.messages_per_minute.channel": "a whole number above 0, or `null` for no limit",
    "limits.models": "a mapping from a provider or a provider/model to its limits, e.g. "
    f"`{_EXAMPLE_MODEL}: {{requests_per_minute: 50, output_tokens_per_minute: 10000}}`",
}
_MODEL_HINTS: dict[type[BaseModel], str] = {
    ScheduleConfig: 'exactly one trigger: `cron: "0 9 * * mon-fri"` or `every: 30m`',
}
_EXPECTED = {
    "string_type": "should be text",
    "list_type": "should be a list",
    "dict_type": "should be a mapping of `key: value` lines",
    "model_type": "should be a mapping of `key: value` lines",
    "model_attributes_type": "should be a mapping of `key: value` lines",
    "bool_type": "should be true or false",
    "bool_parsing": "should be true or false",
    "int_type": "should be a whole number",
    "int_parsing": "should be a whole number",
    "int_from_float": "should be a whole number",
    "float_type": "should be a number",
    "float_parsing": "should be a number",
}


def _explain(error: ErrorDetails) -> tuple[str, str]:
    """A pydantic error as (message, fix) in the words of the team file."""
    loc: Loc = tuple(error["loc"])
    kind = error["type"]
    if kind == "missing":
        field = str(loc[-1])
        hint = _HINTS.get(field, "it is required")
        return f"{_subject(loc[:-1])} has no `{field}`", f"add `{field}:`, {hint}"
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = list(model.model_fields) if model else []
        return (
            f"unknown key `{key}` in {_subject(loc[:-1])}",
            f"the keys allowed here are {', '.join(allowed)}{_did_you_mean(key, allowed)}",
        )
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        return f"{_subject(loc)}: {message}", _hint_for(loc)
    said = error["msg"].removeprefix("Input ")
    expected = _EXPECTED.get(kind, said[:1].lower() + said[1:])
    key_of = "the key of " if loc and loc[-1] == "[key]" else ""
    return f"{key_of}`{_dotted(loc)}` {expected}{_given(error['input'])}", _hint_for(loc)


def _hint_for(loc: Loc) -> str:
    model = _model_at(loc)
    if model in _MODEL_HINTS:
        return f"give {_MODEL_HINTS[model]}"
    dotted = _dotted(loc)
    if dotted in _PATH_HINTS:
        return f"`{loc[-1]}` takes {_PATH_HINTS[dotted]}"
    field = next((p for p in reversed(loc) if isinstance(p, str) and p in _HINTS), None)
    if field is None:
        return "see the sample team.yaml for the expected form"
    return f"`{field}` takes {_HINTS[field]}"


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The schema model that describes the value at ``loc``, if it is a model."""
    kind: Any = Team
    for part in loc:
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            field = kind.model_fields.get(str(part))
            if field is None:
                return None
            kind = field.annotation
        elif get_origin(kind) in (dict, list):
            kind = get_args(kind)[-1]
        else:
            return None
    return kind if isinstance(kind, type) and issubclass(kind, BaseModel) else None


def _subject(loc: Loc) -> str:
    if not loc:
        return "the team file"
    if len(loc) == 2 and loc[0] == "agents":
        return f"agent `{loc[1]}`"
    if len(loc) == 2 and loc[0] == "schedules":
        return f"schedule `{loc[1]}`"
    return f"`{_dotted(loc)}`"


def _dotted(loc: Loc) -> str:
    text = ""
    for part in loc:
        if part == "[key]":
            continue
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text.lstrip(".")


def _given(value: Any) -> str:
    if value is None:
        return ", but it is empty"
    if isinstance(value, str | int | float):
        shown = str(value) if len(str(value)) <= 40 else str(value)[:37] + "..."
        return f", not `{shown}`"
    return ""


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1)
    return f" (did you mean `{close[0]}`?)" if close else ""


def _one_of(word: str, choices: Sequence[str]) -> str:
    if not choices:
        return "there is nothing to choose from yet"
    return f"use one of {', '.join(choices)}{_did_you_mean(word, choices)}"


def _strings(value: Any) -> list[tuple[int, str]]:
    """(index, text) of the text items of a list; anything else is pydantic's to report."""
    if not isinstance(value, list):
        return []
    return [(index, item) for index, item in enumerate(value) if isinstance(item, str)]


def _is_true(value: Any) -> bool:
    try:
        return _BOOL.validate_python(value)
    except ValidationError:
        return False


def _check_team(
    report: _Report, data: dict[Any, Any], folder: Path, tools: ToolRegistry
) -> dict[str, str]:
    """The checks a schema cannot make; returns the text of each ``instructions_file``.

    They read the raw data, taking from each section only what has the right type, so
    they also run where pydantic has found something else wrong.
    """
    models = data.get("models")
    tiers = [t for t in models if isinstance(t, str)] if isinstance(models, dict) else []
    if isinstance(models, dict):
        _check_tiers(report, models)
    agents = data.get("agents")
    handles = [h for h in agents if isinstance(h, str)] if isinstance(agents, dict) else []
    instructions: dict[str, str] = {}
    if isinstance(agents, dict):
        instructions = _check_agents(report, agents, handles, tiers, folder, tools)
    schedules = data.get("schedules")
    if isinstance(schedules, dict):
        for name, schedule in schedules.items():
            if isinstance(schedule, dict):
                _check_schedule(report, ("schedules", name), schedule, handles, tiers)
                if isinstance(agents, dict):
                    _check_schedule_channel(report, ("schedules", name), schedule, agents)
    limits = data.get("limits")
    if isinstance(limits, dict):
        _check_limits(report, limits, handles)
    prices = data.get("prices")
    if isinstance(prices, dict):
        for key in prices:
            _check_model_key(report, ("prices", key), key, provider_alone=False)
    auto = data.get("auto")
    if isinstance(auto, dict):
        _check_auto(report, auto, tiers)
    elif auto is None and isinstance(agents, dict):
        for handle in handles:
            agent = agents[handle]
            if isinstance(agent, dict) and agent.get("model") == AUTO:
                report.add(
                    ("agents", handle, "model"),
                    f"`{handle}` has `model: auto`, but the team has no `auto:`",
                    "add at the top level `auto: {simple: fast, complex: smart}` (the tiers "
                    "`auto` picks between), or name a tier",
                )
    return instructions


def _model_spec_problem(spec: str) -> str | None:
    """What is wrong with a ``provider/model`` ("is not …"), or None when it is fine."""
    provider, _, model = spec.partition("/")
    if not provider or not model:
        return "is not a provider/model"
    if provider not in MODEL_PROVIDERS:
        return f"names the unknown provider `{provider}`"
    return None


def _check_tiers(report: _Report, models: dict[Any, Any]) -> None:
    for tier, chain in models.items():
        for index, spec in _strings(chain):
            problem = _model_spec_problem(spec)
            if problem:
                report.add(
                    ("models", tier, index),
                    f"tier `{tier}`: `{spec}` {problem}",
                    f"write provider/model with a provider among {', '.join(MODEL_PROVIDERS)}, "
                    f"e.g. {_EXAMPLE_MODEL}",
                )


def _check_agents(
    report: _Report,
    agents: dict[Any, Any],
    handles: list[str],
    tiers: list[str],
    folder: Path,
    tools: ToolRegistry,
) -> dict[str, str]:
    if not agents:
        report.add(("agents",), "the team has no agents", "add at least one agent under `agents:`")
    by_folded_case: dict[str, str] = {}
    channel_owners: dict[str, str] = {}
    routers: list[str] = []
    instructions: dict[str, str] = {}
    for handle in handles:
        loc: Loc = ("agents", handle)
        if not HANDLE_RE.fullmatch(handle):
            report.add(
                loc,
                f"`{handle}` is not a valid handle",
                "a handle is what people type after @: a lowercase letter, then up to 31 "
                "lowercase letters, digits, `-` or `_` (e.g. `roo`, `night-owl`)",
            )
        first = by_folded_case.setdefault(handle.casefold(), handle)
        if first != handle:
            report.add(
                loc,
                f"the handles `{first}` and `{handle}` differ only by case",
                "rename one of them: @-addressing in chat ignores case",
            )
        agent = agents[handle]
        if not isinstance(agent, dict):
            continue
        _check_agent_model(report, loc, agent, tiers)
        _check_agent_tools(report, loc, agent, tools)
        _check_handoffs(report, loc, agent, handles)
        if _is_true(agent.get("router")):
            routers.append(handle)
        allowed = agent.get("allowed_channels")
        for index, channel in _strings(agent.get("channels")):
            if isinstance(allowed, list) and allowed and not listed(_texts(allowed), channel):
                report.warn(
                    (*loc, "channels", index),
                    f"`{handle}` is the default agent of {channel}, which is not in its "
                    "allowed_channels: messages there are turned away",
                    f"add {channel} to `allowed_channels`, or take it out of `channels:`",
                )
            # Channel names are lowercase on both platforms; ids are compared as written.
            key = channel.lower() if channel.startswith("#") else channel
            owner = channel_owners.setdefault(key, handle)
            if owner != handle:
                report.add(
                    (*loc, "channels", index),
                    f"`{channel}` is the default channel of both `{owner}` and `{handle}`",
                    f"keep it in one agent's `channels:`; people can still address the other "
                    f"there with @{handle}",
                )
        text = _read_instructions(report, loc, agent, folder)
        if text is not None:
            instructions[handle] = text
    for handle in routers[1:]:
        report.add(
            ("agents", handle, "router"),
            f"more than one agent has `router: true`: {', '.join(routers)}",
            "keep `router: true` on one agent only; it picks who answers unaddressed messages",
        )
    return instructions


def _texts(values: list[Any]) -> list[str]:
    return [v for v in values if isinstance(v, str)]


def _check_agent_model(report: _Report, loc: Loc, agent: dict[Any, Any], tiers: list[str]) -> None:
    model = agent.get("model", _DEFAULT_TIER)
    # `auto` is checked with the team's `auto:` section.
    if not isinstance(model, str) or model in tiers or model == AUTO:
        return
    choices = f"use a tier ({', '.join(tiers) or 'none defined yet'}) or a provider/model"
    if "/" in model:
        problem = _model_spec_problem(model)
        if problem:
            report.add(
                (*loc, "model"),
                f"`model: {model}` {problem}",
                f"{choices} with a provider among {', '.join(MODEL_PROVIDERS)}",
            )
    elif "model" in agent:
        report.add(
            (*loc, "model"),
            f"`model: {model}` names a tier that `models:` does not define",
            f"{choices} such as {_EXAMPLE_MODEL}{_did_you_mean(model, tiers)}",
        )
    else:
        report.add(
            loc,
            f"agent `{loc[-1]}` has no `model:`, and the default tier `{model}` is not "
            "defined in `models:`",
            f"add a `{model}:` tier under `models:`, or set `model:` on this agent",
        )


def _check_agent_tools(
    report: _Report, loc: Loc, agent: dict[Any, Any], registry: ToolRegistry
) -> None:
    tools = _strings(agent.get("tools"))
    known = registry.names()
    for index, tool in tools:
        if tool not in known:
            report.add(
                (*loc, "tools", index),
                f"unknown tool `{tool}`",
                f"use the tools: {', '.join(known)}{_did_you_mean(tool, known)}",
            )
    granted = registry.expand(tool for _, tool in tools)
    for index, tool in _strings(agent.get("approval")):
        if tool != UNTRUSTED and not registry.expand([tool]) <= granted:
            report.add(
                (*loc, "approval", index),
                f"`approval:` lists `{tool}`, which is not one of `{loc[-1]}`'s tools",
                f"add `{tool}` to `tools:`, or remove it from `approval:`",
            )


def _check_handoffs(report: _Report, loc: Loc, agent: dict[Any, Any], handles: list[str]) -> None:
    handle = str(loc[-1])
    others = [h for h in handles if h != handle]
    for index, target in _strings(agent.get("handoff_to")):
        if target == handle:
            report.add(
                (*loc, "handoff_to", index),
                f"`{handle}` hands off to itself",
                f"remove `{handle}` from its own `handoff_to:`",
            )
        elif target not in handles:
            report.add(
                (*loc, "handoff_to", index),
                f"handoff_to names `{target}`, which is not an agent of this team",
                _one_of(target, others),
            )


def _read_instructions(
    report: _Report, loc: Loc, agent: dict[Any, Any], folder: Path
) -> str | None:
    name = agent.get("instructions_file")
    if not isinstance(name, str):
        return None
    where: Loc = (*loc, "instructions_file")
    if agent.get("instructions"):
        report.add(
            where,
            "both `instructions` and `instructions_file` are set",
            "keep one: the prompt inline under `instructions:`, or in a file",
        )
    target = folder / Path(name).expanduser()
    try:
        return target.read_text(encoding="utf-8")
    except FileNotFoundError:
        report.add(
            where,
            f"instructions_file `{name}` was not found (looked for {target})",
            "create the file, or give its path relative to the team file's folder",
        )
    except UnicodeDecodeError:
        report.add(where, f"instructions_file `{name}` is not UTF-8 text", "save it as UTF-8")
    except OSError as err:
        report.add(
            where,
            f"instructions_file `{name}` cannot be read: {err.strerror}",
            "point it at a readable text file",
        )
    return None


def _check_schedule(
    report: _Report, loc: Loc, schedule: dict[Any, Any], handles: list[str], tiers: list[str]
) -> None:
    tier = schedule.get("tier")
    if isinstance(tier, str) and tier not in tiers:
        report.add(
            (*loc, "tier"),
            f"schedule `{loc[-1]}` names the tier `{tier}`, which `models:` does not define",
            f"use a tier ({', '.join(tiers) or 'none defined yet'}){_did_you_mean(tier, tiers)}, "
            "or leave `tier:` out for the agent's own model",
        )
    agent = schedule.get("agent")
    if isinstance(agent, str) and agent not in handles:
        report.add(
            (*loc, "agent"),
            f"schedule `{loc[-1]}` is for `{agent}`, which is not an agent of this team",
            _one_of(agent, handles),
        )
    zone = _check_timezone(report, loc, schedule.get("timezone", _DEFAULT_TIMEZONE))
    cron = schedule.get("cron")
    if isinstance(cron, str):
        # Imported only here: it loads APScheduler, which is not cheap, and only cron needs it.
        # The scheduler reads cron lines with the same function, so what passes here runs.
        from corral.agents.cron import cron_trigger

        try:
            cron_trigger(cron, zone)
        except ValueError as err:
            report.add(
                (*loc, "cron"),
                f'cron "{cron}" is not valid: {err}',
                "write five fields (minute hour day-of-month month day-of-week), e.g. "
                '"0 9 * * 1-5" for 09:00 Monday to Friday (0 and 7 are Sunday)',
            )
    every = schedule.get("every")
    if isinstance(every, str):
        try:
            schedule_interval(every)
        except ValueError as err:
            report.add(
                (*loc, "every"),
                f"schedule `{loc[-1]}`: {err}",
                "write e.g. `every: 30m` or `every: 1h30m` (1m at the least)",
            )


def _check_schedule_channel(
    report: _Report, loc: Loc, schedule: dict[Any, Any], agents: dict[Any, Any]
) -> None:
    """A schedule's channel must be one its agent may post in. Where the schedule and
    ``allowed_channels`` write channels alike (all ``#names``, or all ids) this is known
    here, and an error; where they mix them only the platform knows: a warning."""
    handle = schedule.get("agent")
    # Any YAML may stand there (a list, a mapping): the schema reports it, not this check.
    agent = agents.get(handle) if isinstance(handle, str) else None
    channel = schedule.get("channel")
    if not isinstance(channel, str) or not channel.strip() or not isinstance(agent, dict):
        return
    allowed = agent.get("allowed_channels")
    if not isinstance(allowed, list) or not allowed:
        return
    entries = _texts(allowed)
    if listed(entries, channel):
        return
    message = (
        f"schedule `{loc[-1]}` posts in {channel}, where `{handle}` may not post "
        f"(allowed_channels: {', '.join(entries)})"
    )
    fix = f"use a channel of `{handle}`'s allowed_channels, or add {channel} to them"
    if all(a.startswith("#") == channel.startswith("#") for a in entries):
        report.add((*loc, "channel"), message, fix)
    else:
        report.warn(
            (*loc, "channel"),
            f"{message}, unless {channel} is one of them under another name",
            f"{fix}; write channels alike (all #names or all ids) for the check to be sure",
        )


def _check_timezone(report: _Report, loc: Loc, name: Any) -> tzinfo:
    """The schedule's time zone; UTC when it is wrong, so that its cron is still checked."""
    if not isinstance(name, str):
        return UTC
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        close = _did_you_mean(name, sorted(zoneinfo.available_timezones()))
        report.add(
            (*loc, "timezone"),
            f"unknown time zone `{name}`",
            f"use an IANA time zone such as Europe/Berlin, America/New_York or UTC{close}",
        )
        return UTC


def _check_limits(report: _Report, limits: dict[Any, Any], handles: list[str]) -> None:
    models = limits.get("models")
    if isinstance(models, dict):
        for key in models:
            _check_model_key(report, ("limits", "models", key), key, provider_alone=True)
    providers = limits.get("providers")
    if isinstance(providers, dict):
        report.warn(
            ("limits", "providers"),
            "limits.providers is deprecated: move these under limits.models",
            "rename `providers:` to `models:` (its keys may be providers or provider/models); "
            "an entry already under `models:` for the same provider wins",
        )
        for provider in providers:
            if provider not in MODEL_PROVIDERS:
                report.add(
                    ("limits", "providers", provider),
                    f"limits for the unknown provider `{provider}`",
                    _one_of(str(provider), MODEL_PROVIDERS),
                )
    for section, extra, what in (
        ("budget_usd_per_day", ["team", "default"], "a budget"),
        ("concurrent_runs", ["default"], "a concurrency limit"),
    ):
        entries = limits.get(section)
        if not isinstance(entries, dict):
            continue
        for key in entries:
            if key not in extra and key not in handles:
                report.add(
                    ("limits", section, key),
                    f"{what} for `{key}`, which is not an agent of this team",
                    _one_of(str(key), [*extra, *handles]),
                )


def _check_model_key(report: _Report, loc: Loc, key: Any, *, provider_alone: bool) -> None:
    """A key of ``limits.models`` (a provider or a provider/model) or of ``prices``
    (a provider/model only)."""
    if not isinstance(key, str):
        return
    shape = "a provider or a provider/model" if provider_alone else "a provider/model"
    fix = f"write {shape} with a provider among {', '.join(MODEL_PROVIDERS)}, e.g. {_EXAMPLE_MODEL}"
    if "/" in key:
        problem = _model_spec_problem(key)
        if problem:
            report.add(loc, f"`{_dotted(loc[:-1])}`: `{key}` {problem}", fix)
    elif not provider_alone:
        report.add(loc, f"`{_dotted(loc[:-1])}`: `{key}` is not a provider/model", fix)
    elif key not in MODEL_PROVIDERS:
        report.add(
            loc,
            f"`{_dotted(loc[:-1])}` has limits for the unknown provider `{key}`",
            f"{_one_of(key, MODEL_PROVIDERS)}, or write a provider/model such as {_EXAMPLE_MODEL}",
        )


def _check_auto(report: _Report, auto: dict[Any, Any], tiers: list[str]) -> None:
    for name in ("simple", "complex"):
        target = auto.get(name)
        if not isinstance(target, str) or target in tiers:
            continue
        problem = _model_spec_problem(target) if "/" in target else "names no tier of `models:`"
        if problem:
            report.add(
                ("auto", name),
                f"`auto.{name}: {target}` {problem}",
                f"use a tier ({', '.join(tiers) or 'none defined yet'}) or a provider/model "
                f"such as {_EXAMPLE_MODEL}{_did_you_mean(target, tiers)}",
            )
