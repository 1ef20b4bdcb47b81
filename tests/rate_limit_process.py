"""Agents calling one model tier on a schedule, through Corral's model-call seam (rate
limits and cooldowns composed as the composition root composes them) or through the bare
Anthropic SDK with its own retries; it reports when each call was answered, and by which
model.

tests/test_rate_limits_e2e.py and benchmarks/rate_limits.py use it in their own process
(:func:`play`) and as OS processes of one deployment (:func:`run_processes`): run as a
script, it reads a :class:`Plan` as one JSON line from stdin, builds its own registry,
limiter and cooldowns (from ``REDIS_URL`` and the plan's database), prints ``ready``, then
reads the start time (seconds since the epoch) and prints its :class:`Outcome` list as
JSON once every call has ended. The SDKs find the fake model server through the
environment (``ANTHROPIC_BASE_URL``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import make_team

from corral.agents.conversation import Place
from corral.agents.cooling import CoolingWrapper
from corral.agents.llm.registry import ModelRegistry, ProviderSettings
from corral.agents.llm.retry import RetryPolicy
from corral.agents.llm.types import ChatMessage, Request
from corral.agents.model_calls import PERSON, CallContext, ModelCall, ModelWrapper
from corral.agents.rate_limits import RateLimitWrapper
from corral.agents.seams import Seams
from corral.storage.cooldowns import (
    Cooldowns,
    DatabaseCooldowns,
    InProcessCooldowns,
    RedisCooldowns,
)
from corral.storage.db import Database
from corral.storage.failover import FailoverCooldowns, FailoverLimiter
from corral.storage.limiter import (
    DatabaseLimiter,
    InProcessLimiter,
    Limiter,
    RedisLimiter,
)

PLACE = Place("console", "c", "t")
#: Makes one call; returns the ``provider/model`` that answered.
Player = Callable[["Call"], Awaitable[str]]
SYSTEM = "You answer."


@dataclass(frozen=True)
class Call:
    """One message of ``agent``, arriving ``at`` seconds after the start."""

    agent: str
    at: float
    priority: int = PERSON
    text: str = "hello"


@dataclass(frozen=True)
class Plan:
    """What one process plays, and how it is wired.

    ``backend``: ``inprocess`` (InProcessLimiter, InProcessCooldowns), ``database``
    (on ``database_url``) or ``redis`` (``REDIS_URL``, keys under ``redis_prefix``, with
    the database as the fallback, as production wires it). ``bare``: the bare
    ``AsyncAnthropic`` client with its default retries instead of Corral, on the first
    model of ``chain``."""

    calls: list[Call]
    chain: list[str]
    window_s: float
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    max_tokens: int = 64
    backend: str = "inprocess"
    redis_prefix: str = ""
    database_url: str = ""
    bare: bool = False

    def to_json(self) -> str:
        """The plan as one line of JSON."""
        return json.dumps(asdict(self))

    @staticmethod
    def from_json(text: str) -> Plan:
        """The plan of :meth:`to_json`."""
        data = json.loads(text)
        data["calls"] = [Call(**call) for call in data["calls"]]
        return Plan(**data)


@dataclass(frozen=True)
class Outcome:
    """How one call went: when it arrived and ended (seconds since the epoch), the
    ``provider/model`` that answered, or the error that ended it."""

    agent: str
    priority: int
    text: str
    arrived: float
    ended: float
    model: str | None
    error: str | None = None

    @property
    def wait(self) -> float:
        """Arrival to answer (or to the error)."""
        return self.ended - self.arrived


@asynccontextmanager
async def stores(plan: Plan, env: Mapping[str, str]) -> AsyncIterator[tuple[Limiter, Cooldowns]]:
    """The limiter and the cooldowns of ``plan.backend``, closed after."""
    if plan.backend == "inprocess":
        yield InProcessLimiter(), InProcessCooldowns()
        return
    db = Database(plan.database_url)
    try:
        if plan.backend == "database":
            yield DatabaseLimiter(db), DatabaseCooldowns(db)
            return
        from redis.asyncio import Redis

        client = Redis.from_url(env["REDIS_URL"])
        try:
            yield (
                FailoverLimiter(
                    RedisLimiter(client, f"{plan.redis_prefix}limit:"), DatabaseLimiter(db)
                ),
                FailoverCooldowns(
                    RedisCooldowns(client, f"{plan.redis_prefix}cooldowns"),
                    DatabaseCooldowns(db),
                ),
            )
        finally:
            await client.aclose()
    finally:
        await db.dispose()


def corral_call(
    plan: Plan, limiter: Limiter, cooldowns: Cooldowns, env: Mapping[str, str]
) -> tuple[ModelCall, ModelRegistry]:
    """The model call of the composition root for a team whose ``fast`` tier is
    ``plan.chain`` and whose ``limits.models`` is ``plan.limits``; and its registry."""
    team = make_team(
        models={"fast": plan.chain, "smart": plan.chain}, limits={"models": plan.limits}
    )
    registry = ModelRegistry(
        team.models, ProviderSettings.from_variables(env), policy=RetryPolicy()
    )
    wrappers: list[ModelWrapper] = [
        CoolingWrapper(cooldowns),
        RateLimitWrapper(limiter, team.limits.limits_for, window_s=plan.window_s),
    ]
    return Seams.compose(registry.client_for, model_wrappers=wrappers).model_call, registry


@asynccontextmanager
async def player(plan: Plan, env: Mapping[str, str]) -> AsyncIterator[Player]:
    """What plays ``plan`` in this process, wired and warmed up (the SDK imported, the
    stores open), so that the first call costs no more than any other."""
    if plan.bare:
        import anthropic

        model = plan.chain[0].partition("/")[2]
        client = anthropic.AsyncAnthropic(api_key="fake", base_url=env["ANTHROPIC_BASE_URL"])

        async def bare(call: Call) -> str:
            await client.messages.create(
                model=model,
                max_tokens=plan.max_tokens,
                system=SYSTEM,
                messages=[{"role": "user", "content": call.text}],
            )
            return plan.chain[0]

        try:
            yield bare
        finally:
            await client.close()
        return
    async with stores(plan, env) as (limiter, cooldowns):
        model_call, registry = corral_call(plan, limiter, cooldowns, env)
        await registry.warm_up()

        async def corral(call: Call) -> str:
            ctx = CallContext(
                call.agent, PLACE, f"run-{call.agent}", "answer", "fast", call.priority
            )
            request = Request(SYSTEM, (ChatMessage.user(call.text),), max_tokens=plan.max_tokens)
            return (await model_call(ctx, request)).model

        try:
            yield corral
        finally:
            await registry.aclose()


async def play(plan: Plan, env: Mapping[str, str], lead_s: float = 0.1) -> list[Outcome]:
    """Every call of ``plan`` in this process, each ``lead_s`` + its ``at`` after the
    player is ready."""
    async with player(plan, env) as one:
        return await scheduled(plan.calls, time.time() + lead_s, one)


async def scheduled(calls: Sequence[Call], start: float, one: Player) -> list[Outcome]:
    """Each of ``calls`` made by ``one`` at ``start`` + its ``at``; how each went."""

    async def timed(call: Call) -> Outcome:
        arrived = start + call.at
        await asyncio.sleep(max(0.0, arrived - time.time()))
        try:
            model: str | None = await one(call)
            error = None
        except Exception as failed:  # the outcome says how the call ended, whatever it was
            model, error = None, f"{type(failed).__name__}: {failed}"
        return Outcome(call.agent, call.priority, call.text, arrived, time.time(), model, error)

    return list(await asyncio.gather(*(timed(call) for call in calls)))


async def run_processes(
    plans: Sequence[Plan], env: Mapping[str, str], lead_s: float = 0.3
) -> list[list[Outcome]]:
    """Each plan played by an OS process of its own (this file run with
    ``sys.executable``), all started at the same moment once every one is ready."""
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, **env},
        )
        for _ in plans
    ]
    try:
        for proc, plan in zip(procs, plans, strict=True):
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(plan.to_json().encode() + b"\n")
            await proc.stdin.drain()
        for proc in procs:
            assert proc.stdout is not None
            line = await proc.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"a process did not start: {line!r}")
        start = time.time() + lead_s
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n".encode())
            await proc.stdin.drain()
        outputs = [await proc.communicate() for proc in procs]
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
    return [[Outcome(**o) for o in json.loads(stdout)] for stdout, _ in outputs]


async def _main() -> None:
    loop = asyncio.get_running_loop()
    plan = Plan.from_json(await loop.run_in_executor(None, sys.stdin.readline))
    async with player(plan, os.environ) as one:
        print("ready", flush=True)
        start = float(await loop.run_in_executor(None, sys.stdin.readline))
        outcomes = await scheduled(plan.calls, start, one)
    print(json.dumps([asdict(o) for o in outcomes]), flush=True)


if __name__ == "__main__":
    asyncio.run(_main())
