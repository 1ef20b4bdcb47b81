"""The composition root: the one place that reads settings and wires Corral together."""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from corral.agents.config_audit import loaded_config, record_config_load
from corral.agents.llm.registry import ModelRegistry, ProviderSettings
from corral.agents.redaction import BUILTIN, Redactor, held_secrets
from corral.agents.runtime import Runtime
from corral.agents.team import Team
from corral.agents.team_loader import load_team, parse_every
from corral.bot.adapter import ChatAdapter
from corral.bot.commands.registry import CommandContext
from corral.bot.connections import one_line, redis_problem
from corral.bot.coordinator import Coordinator
from corral.bot.gateway import Gateway, Workers
from corral.bot.limits import LimitStores, compose_limits, in_process_stores, limit_stores
from corral.bot.logs import redact_logs
from corral.bot.permissions import Gatekeeper, PlatformDirectory
from corral.bot.settings import Settings
from corral.storage.approvals import ApprovalStore
from corral.storage.dedupe import Delivered, Requests
from corral.storage.embeddings import EmbeddingsUnavailable, enabled
from corral.storage.locks import DatabaseLock, Lock
from corral.storage.queue import InProcessQueue, WorkQueue
from corral.storage.store import Storage
from corral.storage.urls import shown_url

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from corral.bot.commands.schedule import ScheduleControl
    from corral.bot.scheduling.runner import FireRunner
    from corral.bot.scheduling.scheduler import Scheduler

log = logging.getLogger("corral.app")

#: How late a missed fire may still run when CORRAL_SCHEDULE_GRACE is not set.
DEFAULT_SCHEDULE_GRACE = timedelta(hours=1)
#: The longest connecting to Redis may take.
REDIS_TIMEOUT_S = 1.0


class StartupError(Exception):
    """Corral cannot start; the message says what to fix."""


@dataclass(frozen=True)
class ChatServices:
    """What a platform's listeners reach, and no more: the team, the gateway that stores
    what arrives, the approvals a click decides, and the context a slash command runs in."""

    team: Team
    gateway: Gateway
    approvals: ApprovalStore
    #: ``(user, platform, channel)`` → what a slash command run by ``user`` may touch.
    command_context: Callable[[str, str, str], CommandContext]
    #: Commands and clicks already taken: a replayed one does nothing.
    requests: Requests
    #: Where each platform says what it knows of channel names and groups of people,
    #: for the permission checks.
    directory: PlatformDirectory = field(default_factory=PlatformDirectory)


@dataclass
class Core:
    """Everything but the platforms: team, storage, models, routing, runtime, gateway."""

    settings: Settings
    team_path: Path
    team: Team
    storage: Storage
    models: ModelRegistry
    queue: WorkQueue
    gateway: Gateway
    coordinator: Coordinator
    runtime: Runtime
    #: Shared by every process on the database (on Redis, when REDIS_URL is set); None:
    #: the database's.
    lock: Lock | None = None
    #: How late a missed fire of a schedule may still run.
    schedule_grace: timedelta = DEFAULT_SCHEDULE_GRACE
    #: Closed with the core (the Redis client, when there is one).
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    #: Where rate limits, cooldowns and run slots are kept (in-process without Redis).
    limits: LimitStores = field(default_factory=in_process_stores)
    #: What every path in and out redacts with (see :func:`deployment_redactor`).
    redactor: Redactor = BUILTIN
    #: What the platforms know of channel names and groups, for the permission checks.
    directory: PlatformDirectory = field(default_factory=PlatformDirectory)
    #: The scheduler this process runs, once made: the slash commands' by default.
    running_scheduler: Scheduler | None = field(default=None, init=False, repr=False)

    def command_context(
        self,
        user: str,
        platform: str,
        channel: str = "",
        scheduler: ScheduleControl | None = None,
        *,
        shell: bool = False,
    ) -> CommandContext:
        """What a slash command run by ``user`` may see and touch; ``scheduler`` (by
        default the one this process runs, if any) fires schedules for ``run``;
        ``shell``: run from a shell, not typed in a chat."""
        return CommandContext(
            team=self.team,
            storage=self.storage,
            user=user,
            platform=platform,
            channel=channel,
            models_status=self.models.status_line(),
            scheduler=scheduler or self.running_scheduler,
            shell=shell,
            timezone=self.settings.timezone(),
            cooling=self.limits.cooldowns.cooling,
            limits_degraded=self.limits.degraded(),
            redact=self.redactor.redact,
            channel_aliases=self.directory.aliases,
        )

    def chat_services(self) -> ChatServices:
        """What the Slack and Discord listeners are given."""
        database = DatabaseLock(self.storage.db)
        requests = Requests(self.lock or database, database)
        return ChatServices(
            self.team,
            self.gateway,
            self.storage.approvals,
            self.command_context,
            requests,
            self.directory,
        )

    def fire_runner(self, workers: Workers) -> FireRunner:
        """Fires schedules of the platforms ``workers`` serve; the workers run them."""
        # Imported here: the scheduler loads APScheduler, which most commands never need.
        from corral.bot.scheduling.runner import FireRunner

        lock = self.lock or DatabaseLock(self.storage.db)
        return FireRunner(self.team, self.storage, workers, lock, grace=self.schedule_grace)

    def scheduler(self, workers: Workers) -> Scheduler:
        """The scheduler of this process, whose fires ``workers`` run; start it after
        the workers."""
        from corral.bot.scheduling.scheduler import Scheduler

        self.running_scheduler = Scheduler(self.fire_runner(workers), self.storage, self.team)
        return self.running_scheduler

    def workers(self, adapters: Mapping[str, ChatAdapter], concurrency: int = 4) -> Workers:
        """Workers that post through ``adapters`` (keyed by platform)."""
        return Workers(
            self.storage,
            self.queue,
            self.coordinator,
            self.runtime,
            adapters,
            concurrency,
            intake=self.gateway.intake,
            redactor=self.redactor,
            gatekeeper=Gatekeeper(self.team, self.directory, self.storage.audit),
        )

    async def close(self) -> None:
        for close in self.closers:
            await close()
        await self.storage.close()


def resolve_team_path(team: str | None, settings: Settings) -> Path:
    """``--team``, else ``$CORRAL_TEAM``, else ``./team.yaml``."""
    return Path(team or settings.corral_team).expanduser()


async def build_core(settings: Settings, team_path: Path, *, own_queue: bool = False) -> Core:
    """Load the team, open (and migrate) the database, wire models and routing.

    The work queue is shared through Redis when REDIS_URL is set, unless ``own_queue``
    (``corral chat``: the terminal's messages are answered where they are typed).
    Raises the loader's ``TeamFileError`` or :class:`StartupError` with a fix.
    """
    team = load_team(team_path)
    try:
        grace = parse_every(settings.corral_schedule_grace)
    except ValueError as exc:
        raise StartupError(f"CORRAL_SCHEDULE_GRACE: {exc}. Set it in .env, e.g. 1h.") from None
    try:
        semantic = enabled(settings.corral_embeddings)
        storage = await Storage.open(settings.database_url, semantic=semantic)
    except EmbeddingsUnavailable as exc:
        # Semantic search is switched on but cannot run: the message says what to install.
        raise StartupError(str(exc)) from exc
    except Exception as exc:
        url = settings.database_url
        raise StartupError(
            f"cannot open the database at {shown_url(url)}: {one_line(exc, url)}. "
            "Check DATABASE_URL in .env (default: sqlite+aiosqlite:///corral.db)."
        ) from None
    if settings.redis_url and (problem := await redis_problem(settings.redis_url)):
        await storage.close()
        raise StartupError(
            f"{problem}. Start Redis, or check REDIS_URL in .env (unset: Corral runs in "
            "one process, without Redis)."
        )
    await record_config_load(storage.audit, loaded_config(team_path, team))
    models = ModelRegistry(team.models, provider_settings(settings))
    try:
        lock, delivered, shared_queue, closers, redis = _shared(settings, storage)
    except ValueError as exc:
        await storage.close()
        raise StartupError(
            f"REDIS_URL is not a Redis URL ({one_line(exc, settings.redis_url or '')}); "
            "write e.g. redis://localhost:6379/0"
        ) from None
    queue: WorkQueue = InProcessQueue() if own_queue or shared_queue is None else shared_queue
    stores = limit_stores(storage, redis)
    redactor = deployment_redactor(settings, team)
    redact_logs(redactor.redact)
    directory = PlatformDirectory()
    run = compose_limits(
        team,
        storage,
        models.client_for,
        stores,
        settings.timezone(),
        redact=redactor.redact,
        channel_aliases=directory.aliases,
    )
    seams = run.seams
    runtime = Runtime(team, seams, storage, gate=run.gate)
    return Core(
        settings=settings,
        team_path=team_path,
        team=team,
        storage=storage,
        models=models,
        queue=queue,
        gateway=Gateway(storage, queue, delivered, redactor=redactor),
        coordinator=Coordinator(team, storage.threads, seams.model_call),
        runtime=runtime,
        lock=lock,
        schedule_grace=grace,
        closers=closers,
        limits=stores,
        redactor=redactor,
        directory=directory,
    )


def deployment_redactor(settings: Settings, team: Team) -> Redactor:
    """The redactor of this deployment: the exact values of every secret it holds (the
    secret-like variables of the process, of ``.env`` and of the settings, and the
    passwords in DATABASE_URL and REDIS_URL), the built-in formats and the team's
    ``redact.patterns``."""
    from dotenv import dotenv_values

    held = held_secrets(settings.variables(), os.environ, dotenv_values(".env"))
    return Redactor(held, team.redact.patterns)


def provider_settings(settings: Settings) -> ProviderSettings:
    """What the model providers connect with, from ``settings``."""
    return ProviderSettings(
        anthropic_api_key=settings.anthropic_api_key or None,
        anthropic_base_url=settings.anthropic_base_url or None,
        openai_api_key=settings.openai_api_key or None,
        openai_base_url=settings.openai_base_url or None,
    )


def _shared(
    settings: Settings, storage: Storage
) -> tuple[
    Lock, Delivered | None, WorkQueue | None, list[Callable[[], Awaitable[None]]], Redis | None
]:
    """What every process shares beyond the database: locks, the record of stored
    deliveries and the work queue in Redis when REDIS_URL is set (else locks in the
    database, deliveries deduplicated by the database alone, no shared queue); what
    closes them; and the Redis client, for the limits."""
    if not settings.redis_url:
        return DatabaseLock(storage.db), None, None, [], None
    # Imported here: redis is not cheap to import, and only a REDIS_URL needs it.
    from redis.asyncio import Redis

    from corral.storage.dedupe import RedisDelivered
    from corral.storage.locks import RedisLock
    from corral.storage.stream_queue import RedisStreamQueue

    # A bounded connect: the delivery check runs before Slack's ack, and an unreachable
    # Redis must cost a delivery no more than this before the database takes over. No
    # socket timeout: blocking reads (a queue's) wait longer than any command should.
    client = Redis.from_url(settings.redis_url, socket_connect_timeout=REDIS_TIMEOUT_S)
    return (
        RedisLock(client),
        RedisDelivered(client),
        RedisStreamQueue(client),
        [client.aclose],
        client,
    )
