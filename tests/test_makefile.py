"""``make`` makes the virtual environment again when another Python built it (one
upgraded or removed since), and refuses a Python too old for Corral with a message that
says what to do. Run on a copy of the Makefile, with fake interpreters: no network."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def _fake_python(path: Path, version: str) -> Path:
    """An interpreter that answers the Makefile's questions as Python ``version`` would."""
    major, minor = (int(part) for part in version.split("."))
    too_old = 1 if (major, minor) < (3, 11) else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "#!/bin/sh\n"
        'case "$2" in\n'
        f"  *print*) echo {version} ;;\n"
        f"  *exit*) exit {too_old} ;;\n"
        "esac\n"
        f'[ "$1" = --version ] && echo "Python {version}.0"\n'
        "exit 0\n"
    )
    path.chmod(0o755)
    return path


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    (tmp_path / "pyproject.toml").write_text("")
    return tmp_path


def _make(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "VENV", "PYTHON"))}
    return subprocess.run(
        ["make", *args, f"PYTHON={sys.executable}"],
        cwd=project,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def _installed(project: Path, version: str | None) -> None:
    """A venv that was set up completely, by Python ``version`` (None: its interpreter
    is gone, as after the Python that made it was uninstalled)."""
    python = project / ".venv" / "bin" / "python"
    if version is None:
        python.parent.mkdir(parents=True)
        python.symlink_to(project / "no-such-python3.10")
    else:
        _fake_python(python, version)
    stamp = python.parent / ".installed"
    stamp.touch()
    os.utime(stamp, (os.path.getmtime(project / "pyproject.toml") + 10,) * 2)


def test_a_venv_of_this_python_that_is_up_to_date_is_kept(project: Path) -> None:
    _installed(project, THIS_PYTHON)
    done = _make(project, "-n", ".venv/bin/.installed")
    assert done.returncode == 0, done.stderr
    assert "is up to date" in done.stdout


def test_a_changed_pyproject_reinstalls_into_the_same_venv(project: Path) -> None:
    _installed(project, THIS_PYTHON)
    os.utime(project / "pyproject.toml")
    os.utime(project / ".venv" / "bin" / ".installed", (1, 1))
    done = _make(project, "-n", ".venv/bin/.installed")
    assert done.returncode == 0, done.stderr
    assert "pip install" in done.stdout
    assert "rm -rf" not in done.stdout


@pytest.mark.parametrize("built_by", ["3.10", None], ids=["older python", "python gone"])
def test_a_venv_built_by_another_python_is_made_again(project: Path, built_by: str) -> None:
    _installed(project, built_by)
    done = _make(project, "-n", ".venv/bin/.installed")
    assert done.returncode == 0, done.stderr
    commands = done.stdout.splitlines()
    removed = commands.index("rm -rf .venv")
    assert commands[removed + 1] == f"{sys.executable} -m venv .venv"
    assert any("pip install" in command for command in commands[removed:])


def test_a_python_too_old_for_corral_is_refused_with_what_to_do(project: Path) -> None:
    old = _fake_python(project / "old" / "python3", "3.10")
    done = subprocess.run(
        ["make", ".venv/bin/.installed", f"PYTHON={old}"],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "Corral needs Python 3.11 or newer" in done.stderr
    assert "Python 3.10.0" in done.stderr
    assert "make PYTHON=" in done.stderr
    assert not (project / ".venv").exists()
