"""The audit of the configuration: each time a process loads a team file that differs
from the one last recorded, a ``config.load`` row says which file, its sha256 and what
changed, by top-level section and by agent."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from corral.agents.team import Team
from corral.storage.audit import AuditLog

#: Who loads the configuration: Corral itself, at start.
ACTOR = "corral"
ACTION = "config.load"


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint(text: str, team: Team) -> dict[str, str]:
    """A short hash of each part of the team file ``text``: each top-level section, and
    each agent as ``agents.<handle>`` (with the instructions it was loaded with, so that
    a changed ``instructions_file`` counts). Hashes only: a part's value may hold a
    secret, and the audit never stores one."""
    loader = YAML(typ="safe")
    # The loader has reported duplicate keys already; here the last one wins, as there.
    loader.allow_duplicate_keys = True
    data = loader.load(text)
    parts = {key: _digest(value) for key, value in data.items() if key != "agents"}
    for handle, agent in team.agents.items():
        parts[f"agents.{handle}"] = _digest([data["agents"].get(handle), agent.instructions])
    return dict(sorted(parts.items()))


def _changes(before: dict[str, str], after: dict[str, str]) -> dict[str, list[str]]:
    return {
        "added": sorted(after.keys() - before.keys()),
        "removed": sorted(before.keys() - after.keys()),
        "changed": sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
    }


async def _last(audit: AuditLog) -> dict[str, Any]:
    found = await audit.query(action_prefix=ACTION, limit=1)
    if not found:
        return {}
    try:
        last = json.loads(found[0].detail)
    except ValueError:
        return {}
    return last if isinstance(last, dict) else {}


@dataclass(frozen=True)
class LoadedConfig:
    """A team file as loaded: where it is, its sha256, and its parts' hashes."""

    path: str
    sha256: str
    parts: dict[str, str]


def loaded_config(path: Path, team: Team) -> LoadedConfig:
    """The team file at ``path``, which was loaded as ``team``."""
    raw = path.read_bytes()
    return LoadedConfig(
        str(path.resolve()), hashlib.sha256(raw).hexdigest(), fingerprint(raw.decode(), team)
    )


async def record_config_load(audit: AuditLog, config: LoadedConfig) -> bool:
    """Record that ``config`` was loaded, unless it is what the last ``config.load``
    recorded (same sha256, same parts): a restart with the same file adds nothing.
    Returns whether a row was added."""
    last = await _last(audit)
    if last.get("sha256") == config.sha256 and last.get("parts") == config.parts:
        return False
    before = last.get("parts")
    detail = {
        "sha256": config.sha256,
        **_changes(before if isinstance(before, dict) else {}, config.parts),
        "parts": config.parts,
    }
    await audit.record(
        ACTOR, ACTION, config.path, json.dumps(detail, separators=(",", ":")), outcome="ok"
    )
    return True
