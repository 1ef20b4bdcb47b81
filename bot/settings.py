"""Settings from the process environment and ``.env`` (DESIGN.md, "Environment")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from corral.storage.urls import shown_url

#: The log levels CORRAL_LOG_LEVEL may name.
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class Settings(BaseSettings):
    """Every variable Corral reads, from the process environment or else ``.env``. Only
    the composition root (bot/app.py) looks at them, and hands each part what it needs;
    nothing is written back to the process environment."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    corral_team: str = "team.yaml"
    database_url: str = "sqlite+aiosqlite:///corral.db"
    redis_url: str | None = None
    corral_http_host: str = "127.0.0.1"
    corral_http_port: int = Field(default=3000, ge=1, le=65535)
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
    #: The IANA zone whose days budgets and usage count in.
    corral_timezone: str = "UTC"
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

    @field_validator("corral_log_level")
    @classmethod
    def _log_level(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if value.strip().upper() not in LOG_LEVELS:
            raise ValueError("not a log level")
        return value.strip().upper()

    @field_validator("corral_schedule_grace")
    @classmethod
    def _grace(cls, value: str) -> str:
        from corral.agents.team_loader import parse_every

        parse_every(value)
        return value

    @field_validator("corral_embeddings")
    @classmethod
    def _embeddings(cls, value: str) -> str:
        from corral.storage.embeddings import EmbeddingsUnavailable, enabled

        try:
            enabled(value)
        except EmbeddingsUnavailable:
            raise ValueError("neither on nor off") from None
        return value

    @field_validator("corral_timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value.strip())
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone") from None
        return value.strip()

    def timezone(self) -> ZoneInfo:
        """``CORRAL_TIMEZONE`` as a zone."""
        return ZoneInfo(self.corral_timezone)

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        if value.strip().partition("://")[0].lower() not in ("redis", "rediss", "unix"):
            raise ValueError("not a Redis URL")
        return value.strip()


#: What each setting that can be wrong allows, as the messages say it.
_ALLOWED = {
    "corral_http_port": "a port number from 1 to 65535",
    "corral_unhealthy_after": "a number of seconds greater than 0, e.g. 120",
    "corral_discord_threads": "always, busy or never",
    "corral_log_format": "text or json",
    "corral_log_level": ", ".join(LOG_LEVELS[:-1]) + " or " + LOG_LEVELS[-1],
    "corral_schedule_grace": "an interval such as 30s, 5m, 1h, 1d or 1h30m",
    "corral_embeddings": "1 (semantic memory search on) or 0 (off, the default)",
    "corral_timezone": "an IANA time zone such as UTC or Europe/Berlin",
    "redis_url": "a Redis URL such as redis://localhost:6379/0, or nothing",
}


@dataclass(frozen=True)
class WrongSetting:
    """A variable whose value Corral cannot use."""

    variable: str
    #: As it is shown: a URL with its secrets masked.
    value: str
    #: What the variable allows, as a message says it.
    allowed: str

    @property
    def problem(self) -> str:
        """``CORRAL_HTTP_PORT=abc is not allowed``."""
        return f"{self.variable}={self.value} is not allowed"

    @property
    def fix(self) -> str:
        """What to write instead, and where."""
        return f"use {self.allowed}, in .env or the environment"

    def __str__(self) -> str:
        return f"{self.problem}: {self.fix}"


class SettingsError(Exception):
    """Some variables have values Corral cannot use; one line each says which variable,
    the value and what is allowed."""

    def __init__(self, wrong: dict[str, WrongSetting]) -> None:
        #: Each wrong setting, by the setting's field name.
        self.wrong = wrong
        super().__init__("\n".join(str(w) for w in wrong.values()))


def _wrong(error: Any) -> tuple[str, WrongSetting]:
    """The field and what is wrong with it, from a pydantic error about a setting."""
    field = str(error["loc"][0]) if error["loc"] else ""
    value = str(error.get("input", ""))
    allowed = _ALLOWED.get(field) or str(error["msg"]).removeprefix("Value error, ")
    shown = shown_url(value) if field.endswith("_url") else value
    return field, WrongSetting(field.upper() or "a setting", shown, allowed)


def read_settings(**overrides: Any) -> Settings:
    """The settings from the environment and ``.env``; raises :class:`SettingsError`,
    not pydantic's ValidationError, when some are wrong. ``overrides`` win over both."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(dict(_wrong(e) for e in exc.errors())) from None


def read_settings_leniently() -> tuple[Settings, list[WrongSetting]]:
    """The settings, the wrong ones at their defaults, and what is wrong with those (for
    ``corral check``, which reports every problem it can find)."""
    try:
        return read_settings(), []
    except SettingsError as exc:
        wrong = exc.wrong
    fields = Settings.model_fields
    defaults = {f: fields[f].default for f in wrong if f in fields}
    try:
        return read_settings(**defaults), list(wrong.values())
    except SettingsError as again:  # a default that no longer validates: report all
        raise SettingsError({**wrong, **again.wrong}) from None
