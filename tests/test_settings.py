"""Settings are read in the composition root only, from the process environment or else
``.env``, and handed down as values: nothing writes to the process environment, and
what ``.env`` says still reaches the model SDKs and the storage."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.model_server import FakeModelServer

from corral.agents.llm.registry import ProviderSettings
from corral.bot.app import provider_settings
from corral.bot.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
CORRAL = str(Path(sys.executable).with_name("corral"))
READ = ("ANTHROPIC_", "OPENAI_", "CORRAL_", "DATABASE_URL", "REDIS_URL", "SLACK_", "DISCORD_")


@pytest.fixture
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A working folder of this test's own, and a process environment without any
    variable Corral reads."""
    for name in list(os.environ):
        if name.startswith(READ):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


def test_dotenv_reaches_the_providers_and_the_process_environment_wins(
    clean_environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (clean_environment / ".env").write_text(
        "ANTHROPIC_API_KEY=from-the-file\n"
        "OPENAI_BASE_URL=http://file.example/v1\n"
        "OPENAI_API_KEY=\n"
        "CORRAL_EMBEDDINGS=1\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("OPENAI_BASE_URL", "http://process.example/v1")
    before = dict(os.environ)

    settings = Settings()

    assert provider_settings(settings) == ProviderSettings(
        anthropic_api_key="from-the-file", openai_base_url="http://process.example/v1"
    )
    assert settings.corral_embeddings == "1"
    assert dict(os.environ) == before  # nothing exported for anyone


def test_check_sees_what_dotenv_sets(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("ANTHROPIC_API_KEY=sk-from-the-file\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(READ)}
    done = subprocess.run(
        # Offline: the key is not a real one to ask Anthropic with.
        [CORRAL, "check", "--offline", "--team", str(ROOT / "team.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no model provider" not in done.stdout + done.stderr


def test_a_model_key_only_in_dotenv_answers_in_chat(tmp_path: Path) -> None:
    with FakeModelServer.in_thread() as server:
        dotenv = "".join(f"{k}={v}\n" for k, v in server.env(["anthropic"]).items())
        (tmp_path / ".env").write_text(dotenv, encoding="utf-8")
        env = {k: v for k, v in os.environ.items() if not k.startswith(READ)}
        done = subprocess.run(
            [CORRAL, "chat", "--team", str(ROOT / "team.yaml")],
            input="@beaver hello there\n/quit\n",
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env={**env, "COLUMNS": "200"},
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    assert "hello there" in done.stdout
    assert server.requests, "the model server was never asked"
