"""``pip install .`` (not editable) into a new virtual environment beside the OpenAI
Agents SDK, as a company would install both: Corral's commands and migrations work from
the installed package, the SDK's ``agents`` is still the SDK's, and Corral put nothing at
the top of site-packages but ``corral``.

Slow the first time (everything comes from the package index); pip's cache makes later
runs quicker."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: What the build needs of the repository; the rest (tests, the venv, caches) stays.
SKIPPED = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", ".*_cache", "tests", "benchmarks"
)


def _run(*args: str | Path, cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_installed_beside_the_openai_agents_sdk(tmp_path: Path) -> None:
    # Built from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=SKIPPED)
    venv, elsewhere = tmp_path / "venv", tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
        and not k.startswith(("CORRAL_", "DATABASE_URL", "REDIS_URL"))
    }
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path, env=env)
    python, corral = venv / "bin" / "python", venv / "bin" / "corral"
    _run(
        python,
        "-m",
        "pip",
        "install",
        "--quiet",
        source,
        "openai-agents",
        cwd=elsewhere,
        env=env,
        timeout=900,
    )

    # Nothing but corral at the top level: its files, its dist-info, its command.
    site = Path(
        _run(
            python,
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
            cwd=elsewhere,
            env=env,
        ).strip()
    )
    (dist_info,) = site.glob("corral-*.dist-info")
    assert (dist_info / "top_level.txt").read_text().split() == ["corral"]
    for line in (dist_info / "RECORD").read_text().splitlines():
        path = line.split(",")[0]
        top = path.split("/")[0]
        assert top in ("corral", dist_info.name) or path.endswith("/bin/corral"), path

    assert "Talk to the team in the terminal." in _run(
        corral, "chat", "--help", cwd=elsewhere, env=env
    )
    database = elsewhere / "fresh.db"
    upgraded = _run(
        corral,
        "db",
        "upgrade",
        cwd=elsewhere,
        env={**env, "DATABASE_URL": f"sqlite+aiosqlite:///{database}"},
    )
    assert ": applied " in upgraded and "migrations (0001 to " in upgraded
    tables = _run(
        python,
        "-c",
        "import sqlite3, sys; print(*sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute("
        "\"SELECT name FROM sqlite_master WHERE type = 'table'\")))",
        database,
        cwd=elsewhere,
        env=env,
    ).split()
    assert {"inbox", "transcript", "limit_grants", "alembic_version"} <= set(tables)

    sdk = _run(
        python,
        "-c",
        "import agents, corral.agents; agents.Agent; "
        "print(agents.__file__, corral.agents.__file__)",
        cwd=elsewhere,
        env=env,
    ).split()
    assert sdk[0] == str(site / "agents" / "__init__.py")
    assert sdk[1] == str(site / "corral" / "agents" / "__init__.py")
