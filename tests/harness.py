"""The small test team wired end to end through the real gateway, coordinator, runtime,
model SDKs (against the fake model server) and storage."""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path
from typing import Any

from fakes.model_server import FakeModelServer

from corral.agents.conversation import Place, Recorder, Reply
from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.registry import ModelRegistry, ProviderSettings
from corral.agents.llm.retry import RetryPolicy
from corral.agents.redaction import Redactor
from corral.agents.runtime import Runtime
from corral.agents.seams import Seams
from corral.agents.team import Team
from corral.bot.adapter import OnPart, ThreadLine
from corral.bot.app import Core
from corral.bot.coordinator import Coordinator, Route
from corral.bot.gateway import Gateway, Workers
from corral.bot.inbound import Inbound
from corral.bot.limits import LimitStores, compose_limits, in_process_stores
from corral.bot.permissions import Gatekeeper, PlatformDirectory
from corral.bot.settings import Settings
from corral.storage.approvals import ApprovalRecord
from corral.storage.inbox import work_id
from corral.storage.queue import InProcessQueue
from corral.storage.store import Storage

#: Model names are the fake server's keys: "fast-a" is the first model of the fast tier.
TEAM: dict[str, Any] = {
    "models": {
        "fast": ["anthropic/fast-a", "openai/fast-b"],
        "smart": ["anthropic/smart-a", "openai/smart-b"],
    },
    "agents": {
        "roo": {
            "display_name": "Roo",
            "role": "Operations lead; routes work and answers general questions",
            "instructions": "You run operations.",
            "model": "fast",
            "router": True,
            "channels": ["#ops"],
            "tools": ["memory", "handoff", "escalate"],
            "handoff_to": ["beaver", "owl"],
        },
        "beaver": {
            "display_name": "Beaver",
            "role": "Developer; writes and fixes code",
            "instructions": "You write code.",
            "model": "smart",
            "channels": ["#dev"],
            "tools": ["memory", "handoff", "escalate", "post_message"],
            "handoff_to": ["owl"],
            "approval": ["post_message"],
        },
        "owl": {
            "display_name": "Owl",
            "role": "QA engineer; tests releases",
            "instructions": "You test.",
            "model": "smart",
            "channels": ["C0QA"],
            "tools": ["memory", "handoff"],
            "handoff_to": ["beaver"],
        },
    },
    "approvers": ["U0ADMIN"],
    "roles": {"admins": ["U0ADMIN"]},
    "limits": {"handoff_depth": 3, "tool_steps": 4},
}


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def make_team(**overrides: Any) -> Team:
    """The test team, with top-level keys replaced by ``overrides``."""
    return Team.model_validate({**TEAM, **overrides})


def fake_models(
    team: Team,
    server: FakeModelServer,
    policy: RetryPolicy,
    *,
    env: dict[str, str] | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> ModelRegistry:
    """The team's models, served by the fake model server through the real SDKs."""
    factories: dict[str, Callable[[], Any]] = {
        "anthropic": lambda: AnthropicProvider(api_key="fake", base_url=server.anthropic_url),
        "openai": lambda: OpenAIProvider(api_key="fake", base_url=server.openai_url),
    }
    return ModelRegistry(
        team.models,
        ProviderSettings.from_variables(server.env() if env is None else env),
        policy=policy,
        provider_factories=factories,
        sleep=sleep,
    )


def make_core(storage: Storage, models: ModelRegistry, team: Team, settings: Settings) -> Core:
    """A composition root like ``build_core``'s, from parts a test made."""
    queue = InProcessQueue()
    stores = in_process_stores()
    redactor = Redactor(patterns=team.redact.patterns)
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
    return Core(
        settings=settings,
        team_path=Path("team.yaml"),
        team=team,
        storage=storage,
        models=models,
        queue=queue,
        gateway=Gateway(storage, queue, redactor=redactor),
        coordinator=Coordinator(team, storage.threads, seams.model_call),
        runtime=Runtime(team, seams, storage, gate=run.gate),
        limits=stores,
        redactor=redactor,
        directory=directory,
    )


@dataclass
class RecordingAdapter:
    """A chat platform that remembers what it was asked to show."""

    platform: str = "test"
    routes: list[Route] = field(default_factory=list)
    posts: list[tuple[Place, Reply]] = field(default_factory=list)
    #: What the platform has of threads Corral has not seen (thread → lines).
    history: dict[str, list[ThreadLine]] = field(default_factory=dict)
    #: What the app told people itself (``notice``), with the message it was about.
    notices: list[tuple[Inbound, str]] = field(default_factory=list)

    async def with_names(self, inbound: Inbound) -> Inbound:
        return inbound

    async def picked_up(self, inbound: Inbound, route: Route) -> None:
        self.routes.append(route)

    async def unanswered(self, inbound: Inbound) -> None:
        pass

    async def post(
        self, place: Place, reply: Reply, *, start: int = 0, on_part: OnPart | None = None
    ) -> list[str]:
        """Record the reply, as one part (this platform takes any length)."""
        if start > 0:
            return []
        self.posts.append((place, reply))
        message_id = f"p{len(self.posts)}"
        if on_part is not None:
            await on_part(0, message_id, True)
        return [message_id]

    async def say(self, place: Place, reply: Reply, *, record: Recorder | None = None) -> None:
        """A poster without a ledger, for runs started outside a worker: post, then record."""
        await self.post(place, reply)
        if record is not None:
            await record(None)

    async def thread_history(self, place: Place, before: str) -> list[ThreadLine]:
        return list(self.history.get(place.thread, []))

    async def notice(self, inbound: Inbound, text: str) -> None:
        self.notices.append((inbound, text))

    def texts(self, kind: str | None = None) -> list[str]:
        return [r.text for _, r in self.posts if kind is None or r.kind == kind]


@dataclass
class Harness:
    team: Team
    storage: Storage
    server: FakeModelServer
    models: ModelRegistry
    runtime: Runtime
    coordinator: Coordinator
    gateway: Gateway
    workers: Workers
    adapter: RecordingAdapter
    #: Delays the retry policy asked for (nobody actually waits in tests).
    slept: list[float]
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    #: Workers for other adapters (:meth:`workers_for`), stopped with the harness.
    others: list[Workers] = field(default_factory=list)

    @staticmethod
    def build(
        storage: Storage,
        server: FakeModelServer,
        team: Team | None = None,
        env: dict[str, str] | None = None,
        compose: Callable[[ModelRegistry], Seams] | None = None,
        stores: LimitStores | None = None,
        redactor: Redactor | None = None,
    ) -> Harness:
        """The test team (or ``team``) wired end to end; ``compose`` makes the run's
        seams from the models (default: as the composition root does, with every limit,
        kept in ``stores``, by default in this process, and redaction by ``redactor``,
        by default the built-in formats and the team's patterns)."""
        team = team or make_team()
        redactor = redactor or Redactor(patterns=team.redact.patterns)
        slept: list[float] = []

        async def sleep(delay: float) -> None:
            slept.append(delay)

        models = fake_models(
            team,
            server,
            RetryPolicy(attempts=3),
            env=server.env() if env is None else env,
            sleep=sleep,
        )
        queue = InProcessQueue()

        # Time moves on by what the chain slept, which the test only records.
        def clock() -> float:
            return time.time() + sum(slept)

        stores = stores or in_process_stores(clock)
        directory = PlatformDirectory()
        run = compose_limits(
            team,
            storage,
            models.client_for,
            stores,
            UTC,
            redact=redactor.redact,
            clock=clock,
            channel_aliases=directory.aliases,
        )
        seams = compose(models) if compose else run.seams
        runtime = Runtime(team, seams, storage, gate=run.gate)
        coordinator = Coordinator(team, storage.threads, seams.model_call)
        adapter = RecordingAdapter()
        gatekeeper = Gatekeeper(team, directory, storage.audit)
        workers = Workers(
            storage,
            queue,
            coordinator,
            runtime,
            {"test": adapter},
            2,
            redactor=redactor,
            gatekeeper=gatekeeper,
        )
        return Harness(
            team,
            storage,
            server,
            models,
            runtime,
            coordinator,
            Gateway(storage, queue, redactor=redactor),
            workers,
            adapter,
            slept,
        )

    async def say(
        self,
        text: str,
        *,
        channel: str = "C0GEN",
        channel_name: str = "#general",
        thread: str | None = None,
        to_app: bool = True,
        user: str = "U1",
        mentions: tuple[str, ...] = (),
        event_id: str | None = None,
        message_id: str | None = None,
    ) -> str | None:
        """Send a message through the gateway and wait until it is handled; returns the
        message's id (None for a duplicate). A message without ``thread`` starts one."""
        n = next(self._ids)
        message_id = message_id or f"m{n}"
        inbox_id = await self.gateway.submit(
            Inbound(
                platform="test",
                event_id=event_id or f"e{n}",
                channel=channel,
                channel_name=channel_name,
                message_id=message_id,
                thread=thread or message_id,
                user=user,
                text=text,
                to_app=to_app,
                agent_mentions=mentions,
            )
        )
        if inbox_id is not None:
            await self.workers.wait(inbox_id)
        return inbox_id

    async def decide(
        self, approval_id: str, approved: bool = True, by: str = "U0ADMIN"
    ) -> ApprovalRecord | None:
        """Decide an approval as a surface does, and wait until its run has continued."""
        record = await self.workers.decide(approval_id, approved, by)
        if record is not None:
            await self.workers.wait(work_id("decision", approval_id))
        return record

    def workers_for(self, adapter: RecordingAdapter) -> Workers:
        """Started workers of this harness's runtime that post through ``adapter``."""
        workers = Workers(
            self.storage,
            InProcessQueue(),
            self.coordinator,
            self.runtime,
            {adapter.platform: adapter},
            2,
            gatekeeper=self.workers.gatekeeper,
        )
        workers.start()
        self.others.append(workers)
        return workers

    async def close(self) -> None:
        for other in self.others:
            await other.stop()
        await self.workers.stop()
        await self.models.aclose()
