"""How ``.env`` is kept: it holds the tokens and keys Corral runs with, so only its owner
should read it."""

from __future__ import annotations

import stat
from pathlib import Path

from corral.agents.team_loader import Problem


def env_file_problems(path: Path) -> list[Problem]:
    """A warning when the file at ``path`` (``.env``) can be read or written by users
    other than its owner; nothing when it is private or absent."""
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:  # no .env: the variables come from the environment
        return []
    if not mode & (stat.S_IRWXG | stat.S_IRWXO):
        return []
    return [
        Problem(
            str(path),
            None,
            f"{path} holds Corral's secrets and other users of this machine may read it "
            f"(mode {mode:04o})",
            f"make it private to its owner: chmod 600 {path}",
            "warning",
        )
    ]
