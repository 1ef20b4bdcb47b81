"""The composition root: the one place that reads settings and wires Corral together."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agents.llm.registry import ModelRegistry
from agents.runtime import Runtime
from agents.team import Team
from agents.team_loader import load_team
from bot.adapter import ChatAdapter
from bot.commands.registry import CommandContext
from bot.coordinator import Coordinator
from bot.gateway import Gateway, Workers
from bot.settings import Settings
from storage.queue import InProcessQueue
from storage.store import Storage

log = logging.getLogger("corral.app")


class StartupError(Exception):
    """Corral cannot start; the message says what to fix."""


@dataclass
class Core:
    """Everything but the platforms: team, storage, models, routing, runtime, gateway."""

    settings: Settings
    team_path: Path
    team: Team
    storage: Storage
    models: ModelRegistry
    queue: InProcessQueue
    gateway: Gateway
    coordinator: Coordinator
    runtime: Runtime

    def command_context(self, user: str, platform: str, channel: str = "") -> CommandContext:
        """What a slash command run by ``user`` may see and touch."""
        return CommandContext(
            team=self.team,
            storage=self.storage,
            user=user,
            platform=platform,
            channel=channel,
            models_status=self.models.status_line(),
        )

    def workers(self, adapters: Mapping[str, ChatAdapter], concurrency: int = 4) -> Workers:
        """Workers that post through ``adapters`` (keyed by platform)."""
        return Workers(
            self.storage, self.queue, self.coordinator, self.runtime, adapters, concurrency
        )

    async def close(self) -> None:
        await self.storage.close()


def resolve_team_path(team: str | None, settings: Settings) -> Path:
    """``--team``, else ``$CORRAL_TEAM``, else ``./team.yaml``."""
    return Path(team or settings.corral_team).expanduser()


async def build_core(settings: Settings, team_path: Path) -> Core:
    """Load the team, open (and migrate) the database, wire models and routing.

    Raises the loader's ``TeamFileError`` or :class:`StartupError` with a fix.
    """
    team = load_team(team_path)
    try:
        storage = await Storage.open(settings.database_url)
    except Exception as exc:
        raise StartupError(
            f"cannot open the database at {settings.database_url}: {exc}. "
            "Check DATABASE_URL in .env (default: sqlite+aiosqlite:///corral.db)."
        ) from exc
    models = ModelRegistry(team.models, env=os.environ)
    queue = InProcessQueue()
    runtime = Runtime(team, models.client_for, storage)
    return Core(
        settings=settings,
        team_path=team_path,
        team=team,
        storage=storage,
        models=models,
        queue=queue,
        gateway=Gateway(storage, queue),
        coordinator=Coordinator(team, storage.threads, models.client_for),
        runtime=runtime,
    )
