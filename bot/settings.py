"""Settings from the process environment and ``.env`` (DESIGN.md, "Environment")."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every variable Corral reads, from the process environment or else ``.env``. Only
    the composition root (bot/app.py) looks at them, and hands each part what it needs;
    nothing is written back to the process environment."""

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
    #: 1/true/yes/on: semantic memory search (storage/embeddings.py).
    corral_embeddings: str = ""
    #: The model providers' credentials and addresses, handed to their SDKs' clients.
    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None

    def variables(self) -> dict[str, str]:
        """The settings under the names of their variables (``DATABASE_URL``, …), as
        read or defaulted; unset ones left out."""
        return {
            name.upper(): str(value)
            for name, value in self.model_dump().items()
            if value is not None
        }
