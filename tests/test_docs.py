"""The reference docs stay in sync with the code: every key of the team.yaml schema is in
docs/team-yaml.md (and nothing else is), and every setting is in .env.example.

The convention of docs/team-yaml.md: each key is a level-3 heading holding its full dotted
path in backticks, e.g. ### `agents.<handle>.tools`. A name the user chooses (a mapping's
key) is written as any word in angle brackets (`<handle>`, `<tier>`); items of a list of
mappings as `[]` (`path[].key`). Under the heading, the key's default is given as
"Default: `value`" (or "Default: unset" for none), or the word "Required".
"""

from __future__ import annotations

import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import pytest
from pydantic import AliasChoices, BaseModel
from pydantic.fields import FieldInfo

from corral.agents.team import Team
from corral.bot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
TEAM_DOC = ROOT / "docs" / "team-yaml.md"
ENV_EXAMPLE = ROOT / ".env.example"

_HEADING = re.compile(r"^### `([^`]+)`\s*$", re.MULTILINE)
_ANY_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_PLACEHOLDER = re.compile(r"<[^<>]+>")
_ASSIGNMENT = re.compile(r"^# [A-Z][A-Z0-9_]*=")


def _yaml_keys(name: str, field: FieldInfo) -> list[str]:
    """The keys a YAML file writes for a field: its alias(es) if it has any, else its name."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [choice for choice in alias.choices if isinstance(choice, str)]
    if isinstance(alias, str):
        return [alias]
    return [field.alias or name]


def _walk_type(kind: Any, path: str) -> Iterator[tuple[str, FieldInfo | None]]:
    """The key paths inside a value of type ``kind`` found at ``path``."""
    origin = get_origin(kind)
    if origin is Annotated:
        yield from _walk_type(get_args(kind)[0], path)
    elif origin in (Union, types.UnionType):
        for arg in get_args(kind):
            yield from _walk_type(arg, path)
    elif origin is dict:
        entry = f"{path}.<*>"
        yield entry, None
        yield from _walk_type(get_args(kind)[1], entry)
    elif origin in (list, tuple, set, frozenset):
        for arg in get_args(kind):
            if arg is not Ellipsis:
                yield from _walk_type(arg, f"{path}[]")
    elif isinstance(kind, type) and issubclass(kind, BaseModel):
        yield from _walk_model(kind, path)


def _walk_model(model: type[BaseModel], path: str = "") -> Iterator[tuple[str, FieldInfo | None]]:
    for name, field in model.model_fields.items():
        for key in _yaml_keys(name, field):
            dotted = f"{path}.{key}" if path else key
            yield dotted, field
            yield from _walk_type(field.annotation, dotted)


def schema_keys() -> dict[str, FieldInfo | None]:
    """Every key path of team.yaml, with the field it is (None for a mapping's entry)."""
    return dict(_walk_model(Team))


def _normal(path: str) -> str:
    return _PLACEHOLDER.sub("<*>", path)


def documented_sections() -> dict[str, str]:
    """Each key path documented in docs/team-yaml.md (placeholders as ``<*>``), with the
    text of its section."""
    text = TEAM_DOC.read_text(encoding="utf-8")
    sections: dict[str, str] = {}
    for match in _HEADING.finditer(text):
        following = _ANY_HEADING.search(text, match.end())
        body = text[match.end() : following.start() if following else len(text)]
        sections[_normal(match.group(1))] = body
    return sections


def _readable(path: str) -> str:
    return path.replace("<*>", "<name>")


def test_every_schema_key_is_documented() -> None:
    documented = documented_sections()
    missing = [_readable(p) for p in schema_keys() if p not in documented]
    assert not missing, (
        f"{TEAM_DOC.relative_to(ROOT)} does not document these team.yaml keys: "
        f"{', '.join(missing)}. Add a heading ### `KEY` for each (a chosen name may be "
        "written as any <word>), with its type, default and an example."
    )


def test_every_documented_key_exists_in_the_schema() -> None:
    keys = schema_keys()
    stale = [_readable(p) for p in documented_sections() if p not in keys]
    assert not stale, (
        f"{TEAM_DOC.relative_to(ROOT)} documents keys that the team.yaml schema "
        f"(agents/team.py) does not have: {', '.join(stale)}. Remove or rename them."
    )


def _default_text(field: FieldInfo) -> str:
    """How the doc states a field's default."""
    if field.is_required():
        return "Required"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "Default: unset"
    if isinstance(value, BaseModel):
        return "Default: each key's own default"
    if isinstance(value, bool):
        shown = "true" if value else "false"
    elif value == "":
        shown = '""'
    elif isinstance(value, list | tuple):
        shown = "[]" if not value else f"[{', '.join(map(str, value))}]"
    elif isinstance(value, dict):
        shown = "{}" if not value else str(value)
    else:
        shown = str(value)
    return f"Default: `{shown}`"


def test_documented_defaults_match_the_schema() -> None:
    documented = documented_sections()
    wrong = []
    for path, field in schema_keys().items():
        if field is None or path not in documented:
            continue  # a mapping's entry has no default; a missing key fails above
        body = documented[path]
        expected = _default_text(field)
        if expected not in body:
            wrong.append(f"`{_readable(path)}` should say {expected!r}")
        if "```yaml" not in body:
            wrong.append(f"`{_readable(path)}` has no ```yaml example")
    assert not wrong, f"{TEAM_DOC.relative_to(ROOT)}: " + "; ".join(wrong)


def _env_names(settings: type[Settings]) -> list[str]:
    prefix = str(settings.model_config.get("env_prefix", ""))
    names = []
    for name, field in settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names += [c.upper() for c in alias.choices if isinstance(c, str)]
        elif isinstance(alias, str):
            names.append(alias.upper())
        else:
            names.append(f"{prefix}{field.alias or name}".upper())
    return names


@pytest.mark.parametrize("variable", _env_names(Settings))
def test_env_example_lists_every_setting(variable: str) -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    line = re.search(rf"^# {re.escape(variable)}=", text, re.MULTILINE)
    assert line, (
        f"{ENV_EXAMPLE.relative_to(ROOT)} does not list {variable}, which bot/settings.py "
        f"reads: add a commented `# {variable}=...` line with a one-line comment above it"
    )
    # Above it, past other variables' lines (several may share one comment): a comment.
    above = text[: line.start()].splitlines()
    while above and _ASSIGNMENT.match(above[-1]):
        above.pop()
    assert above and above[-1].startswith("# ") and len(above[-1]) > 2, (
        f"{ENV_EXAMPLE.relative_to(ROOT)}: {variable} has no comment line above it"
    )


def test_the_walk_follows_aliases_lists_and_optional_mappings() -> None:
    from pydantic import Field

    class Item(BaseModel):
        size: int = Field(default=1, alias="item_size")

    class Root(BaseModel):
        items: list[Item] = Field(default_factory=list)
        named: dict[str, Item] | None = None

    assert list(dict(_walk_model(Root))) == [
        "items",
        "items[].item_size",
        "named",
        "named.<*>",
        "named.<*>.item_size",
    ]
