"""Settings from the process environment and ``.env`` (DESIGN.md, "Environment")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every variable Corral reads. The model SDKs read their own keys from the
    environment; :func:`export_provider_env` puts ``.env``'s values there for them."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    corral_team: str = "team.yaml"
    database_url: str = "sqlite+aiosqlite:///corral.db"
    redis_url: str | None = None
    corral_http_host: str = "127.0.0.1"
    corral_http_port: int = 3000
    #: Seconds a platform connection (Slack Socket Mode) may stay down before
    #: ``GET /healthz`` answers 503, so that a supervisor restarts the process.
    corral_unhealthy_after: float = Field(default=120.0, gt=0)
    slack_bot_token: str | None = None
    slack_signing_secret: str | None = None
    slack_app_token: str | None = None
    slack_api_url: str = "https://slack.com/api/"
    discord_token: str | None = None
    #: Base URL of Discord's REST API (proxies, tests).
    discord_api_url: str = "https://discord.com/api/v10"
    #: Servers (ids, comma-separated) whose application commands are registered at start
    #: (they show at once); unset: registered globally (Discord may take up to an hour).
    discord_guild_ids: str = ""
    #: When a new conversation gets its own Discord thread: always, only in a busy
    #: channel (another person wrote there in the last five minutes), or never.
    corral_discord_threads: Literal["always", "busy", "never"] = "busy"
    corral_log_format: Literal["text", "json"] = "text"
    #: Unset: INFO for services, WARNING for the interactive commands.
    corral_log_level: str | None = None
    #: How late a missed fire may still run (after downtime): 30m, 1h, 1d …
    corral_schedule_grace: str = "1h"


PROVIDER_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
)
#: Read by the storage layer from the process environment, since it knows nothing of
#: ``.env``: CORRAL_EMBEDDINGS=1 turns on semantic memory search (storage/embeddings.py).
STORAGE_VARIABLES = ("CORRAL_EMBEDDINGS",)


def export_provider_env(env_file: str = ".env") -> None:
    """Copy the SDKs' own variables, and the storage layer's, from ``.env`` into the
    process environment.

    The SDKs read only ``os.environ``; a value already set in the process wins, so
    nothing the user exported is overridden.
    """
    import os

    from dotenv import dotenv_values

    for key, value in dotenv_values(env_file).items():
        exported = key in PROVIDER_VARIABLES or key in STORAGE_VARIABLES
        if exported and value and key not in os.environ:
            os.environ[key] = value
