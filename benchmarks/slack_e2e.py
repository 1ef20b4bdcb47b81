"""Slack end to end: Corral's real HTTP app under 1,000 signed mentions, against a bare
slack-bolt app doing the least that answers a mention (the floor).

The world around the app — the fake Slack Web API (``tests/fakes/slack_server.py``), the
fake model server (``tests/fakes/model_server.py``) and the senders that play Slack
delivering events — runs in a subprocess by default (``--fakes process``): each fake on a
thread of its own via its ``in_thread()``, the senders on that process's event loop. The
measured process then runs nothing but the app, one event loop, as ``corral run`` would.
``--fakes thread`` runs that same world on threads of the measured process instead (one
interpreter, so the fakes compete with the app for the GIL).

Each configuration gets a fresh app on a free port of 127.0.0.1:

* **Corral**, wired as ``bot/service.py`` wires it in HTTP mode (and as the ``rig`` fixture
  of ``tests/test_slack_e2e.py`` does): ``Core`` with the test team, ``slack_parts`` (the
  Web API client pointed at the fake Slack), ``Workers`` (``--workers``, default 4),
  ``attach`` (bolt's ``AsyncApp`` with signature verification) and ``build_http_app``
  serving ``POST /slack/events``; storage in a fresh SQLite file in a temporary
  directory (or ``--database-url``, e.g. PostgreSQL). The scheduler is not started. Posts
  are paced by the adapter's per-channel interval: the product's default (about one
  message a second per channel) unless ``--post-interval`` says otherwise. When that
  pacing alone caps the answer rate below the goal, the output says so and Corral runs a
  second time with pacing off (``post_interval=0``).
* **The floor**: a minimal ``AsyncApp`` with one ``app_mention`` listener that makes the
  same raw Anthropic SDK call Corral makes (the request body captured from Corral's
  warm-up: system prompt, tools, ``max_tokens``; the mention as the one user message)
  and posts the answer with ``chat_postMessage`` in the thread; served by aiohttp the
  same way (``to_bolt_request`` → ``async_dispatch`` → ``to_aiohttp_response``).

A run: 20 warm-up mentions (one per channel, not measured), then 1,000 mentions from 50
concurrent senders across 20 channels. Every mention is a new message, seeded in the fake
Slack first (so ``reactions.add`` finds it), that starts its own thread; its
``app_mention`` event is signed as Slack signs it. A sender posts its next mention as
soon as the previous one is acknowledged — Slack delivers events whether or not earlier
ones were answered — so the 1,000 arrive as a burst, and event→answer includes the time
a mention waits in the app's backlog (``--rate`` spreads the arrivals instead).

Per mention it measures the ack latency (the HTTP round trip of ``POST /slack/events``,
seen by the sender; the app's own handler time is printed beside it) and event→answer
(from just before the POST until the fake Slack records the ``chat.postMessage`` in that
mention's thread, by the ``at`` monotonic time of its recorded call; both clocks are the
world process's). Answered/s is the answers over the span from the first send to the
last answer. Exactly once: after the last answer and a settling second, every thread has
exactly one post, carrying that mention's own text back, and nothing else was posted; for
Corral also the durable inbox holds every message as ``done``.

It prints ack p50/p99, event→answer p50/p99 and answered/s for each configuration, the
Slack calls per mention, the CPU each process used, and the goals with PASS/MISS:
Corral's event→answer p50 ≤ 2× the floor's, Corral's p99 ≤ 4× its own p50, ack p99 ≤
50 ms, ≥ 100 answered mentions/s in one process, every mention answered exactly once.
It asserts no timings; it exits non-zero only when a run cannot complete.

Run it from the repository root::

    .venv/bin/python benchmarks/slack_e2e.py
    .venv/bin/python benchmarks/slack_e2e.py --workers 8 --post-interval 0
    .venv/bin/python benchmarks/slack_e2e.py --database-url postgresql+asyncpg://…/db
    .venv/bin/python benchmarks/slack_e2e.py --profile /tmp/corral-profile.txt
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from fakes import slack_events as se  # noqa: E402
from fakes.model_server import FakeModelServer  # noqa: E402
from fakes.slack_server import FakeSlackServer  # noqa: E402

GOAL_P50_RATIO = 2.0
GOAL_TAIL_RATIO = 4.0
GOAL_ACK_P99_S = 0.050
GOAL_RATE = 100.0
#: The model Corral's test team answers mentions of beaver with (its "smart" tier).
MODEL = "smart-a"
#: Settling time after the last answer, for late duplicates to show up.
SETTLE_S = 1.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Json = dict[str, Any]


# ---------------------------------------------------------------------------------------
# The world: fake Slack, fake model server, and the senders that play Slack's delivery


def mention_text(tag: str, i: int) -> str:
    """What mention ``i`` of run ``tag`` says; the answer must carry ``build tag-i`` back."""
    return f"{se.mention()} beaver please look at build {tag}-{i:04d}"


class World:
    """The fakes (each on its own thread, via ``in_thread()``) and the senders, which run
    on the event loop that calls :meth:`handle`."""

    def __init__(self) -> None:
        self._stack = contextlib.ExitStack()
        self.slack: FakeSlackServer
        self.models: FakeModelServer
        self._users: set[str] = set()

    def start(self) -> Json:
        """Start both fakes; returns their addresses."""
        self.slack = self._stack.enter_context(FakeSlackServer.in_thread())
        self.models = self._stack.enter_context(FakeModelServer.in_thread())
        return {
            "slack_api_url": self.slack.api_url,
            "bot_token": self.slack.bot_token,
            "anthropic_url": self.models.anthropic_url,
            "openai_url": self.models.openai_url,
        }

    def stop(self) -> None:
        self._stack.close()

    async def handle(self, command: Json) -> Json:
        """Carry out one command of the benchmark process."""
        if command["cmd"] == "run":
            return await self.run(**command["args"])
        if command["cmd"] == "last_request":
            return {"body": self.models.requests_for(command["model"])[-1].json}
        raise ValueError(f"unknown command {command['cmd']!r}")

    def _seed(self, channels: list[str], senders: int) -> list[str]:
        for channel in channels:
            self.slack.add_channel(channel, channel.lower())
        users = [f"U0SEND{k:04d}" for k in range(senders)]
        for k, user in enumerate(users):
            if user not in self._users:
                self.slack.add_user(user, f"sender{k}", f"Sender {k}")
                self._users.add(user)
        return users

    async def run(
        self,
        url: str,
        tag: str,
        first: int,
        mentions: int,
        senders: int,
        channels: int,
        rate: float,
        limit_s: float,
    ) -> Json:
        """Send mentions ``first`` … ``first + mentions - 1`` of run ``tag`` to the app at
        ``url`` from ``senders`` concurrent senders; wait until every one is answered (or
        ``limit_s`` seconds), settle, and report what each mention saw."""
        names = [f"C0{tag}{c:03d}" for c in range(channels)]
        users = self._seed(names, senders)
        calls_before = len(self.slack.calls)
        sent: dict[tuple[str, str], Json] = {}
        started = time.monotonic()
        cpu_started = time.process_time()

        async def sender(k: int, http: aiohttp.ClientSession) -> None:
            for i in range(first + k, first + mentions, senders):
                if rate > 0:
                    await asyncio.sleep(max(0.0, started + (i - first) / rate - time.monotonic()))
                channel, user = names[i % channels], users[k]
                text = mention_text(tag, i)
                stored = self.slack.add_message(channel, None, text, user=user)
                event = se.app_mention(text, channel=channel, user=user, ts=stored["ts"])
                request = se.event_callback(event)
                sent_at = time.monotonic()
                async with http.post(url, data=request.body, headers=request.headers) as response:
                    await response.read()
                    status = response.status
                acked_at = time.monotonic()
                sent[(channel, stored["ts"])] = {
                    "i": i,
                    "sent": sent_at,
                    "ack": acked_at - sent_at,
                    "status": status,
                }

        connector = aiohttp.TCPConnector(limit=senders)
        async with aiohttp.ClientSession(connector=connector) as http:
            await asyncio.gather(*(sender(k, http) for k in range(senders)))
        sending_done = time.monotonic()

        answers: dict[tuple[str, str], list[tuple[float, str]]] = defaultdict(list)
        stray: list[Json] = []
        seen = calls_before
        wanted = set(sent)
        channel_set = set(names)

        def collect() -> None:
            nonlocal seen
            calls = self.slack.calls
            for call in calls[seen:]:
                if call.method != "chat.postMessage" or not call.ok:
                    continue
                channel = str(call.params.get("channel"))
                if channel not in channel_set:
                    continue
                key = (channel, str(call.params.get("thread_ts") or ""))
                if key in wanted:
                    answers[key].append((call.at, str(call.params.get("text") or "")))
                else:
                    stray.append({"channel": channel, "text": str(call.params.get("text"))[:200]})
            seen = len(calls)

        deadline = started + limit_s
        while True:
            collect()
            if len(answers) >= len(wanted) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.01)
        last_answer = max((min(at for at, _ in posts) for posts in answers.values()), default=0)
        await asyncio.sleep(SETTLE_S)
        collect()
        cpu = time.process_time() - cpu_started
        methods = Counter(c.method for c in self.slack.calls[calls_before:])

        report = []
        for key, info in sent.items():
            posts = answers.get(key, [])
            expected = f"build {tag}-{info['i']:04d}"
            report.append(
                {
                    "channel": key[0],
                    "sent": info["sent"],
                    "ack": info["ack"],
                    "status": info["status"],
                    "answer": min(at for at, _ in posts) - info["sent"] if posts else None,
                    "posts": len(posts),
                    "right": all(expected in text for _, text in posts),
                }
            )
        return {
            "mentions": report,
            "first_sent": min((v["sent"] for v in sent.values()), default=started),
            "sending_done": sending_done,
            "last_answer": last_answer,
            "stray": stray,
            "methods": dict(methods),
            "world_cpu": cpu,
            "world_wall": time.monotonic() - started,
            "timed_out": len(answers) < len(wanted),
        }


class WorldLink(Protocol):
    """How the benchmark talks to the world, wherever it runs."""

    addresses: Json
    where: str

    async def call(self, command: Json) -> Json: ...

    async def close(self) -> None: ...


class ProcessWorld:
    """The world in a subprocess (this script with ``--world``), JSON lines over pipes."""

    def __init__(self, process: asyncio.subprocess.Process, addresses: Json) -> None:
        self.process = process
        self.addresses = addresses
        self.where = (
            f"a subprocess (pid {process.pid}): each fake on its own thread (in_thread()), "
            "the senders on its event loop; this process runs only the app"
        )

    @classmethod
    async def start(cls) -> ProcessWorld:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--world",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=64 * 1024 * 1024,
        )
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line:
            raise RuntimeError("the world process did not start")
        return cls(process, json.loads(line))

    async def call(self, command: Json) -> Json:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(json.dumps(command).encode() + b"\n")
        await self.process.stdin.drain()
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the world process exited")
        reply: Json = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"the world failed:\n{reply['error']}")
        return reply

    async def close(self) -> None:
        assert self.process.stdin is not None
        with contextlib.suppress(ConnectionError):
            self.process.stdin.write(b'{"cmd": "quit"}\n')
            await self.process.stdin.drain()
        await asyncio.wait_for(self.process.wait(), timeout=30)


class ThreadWorld:
    """The world on threads of this process: the fakes' own, and one for the senders."""

    def __init__(self) -> None:
        self.world = World()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="world", daemon=True)
        self.thread.start()
        self.addresses = self.world.start()
        self.where = (
            "threads of this process: each fake on its own thread (in_thread()), the senders "
            "on another; they share the interpreter (and its GIL) with the app"
        )

    async def call(self, command: Json) -> Json:
        future = asyncio.run_coroutine_threadsafe(self.world.handle(command), self.loop)
        return await asyncio.wrap_future(future)

    async def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()
        self.world.stop()


async def world_main() -> None:
    """``--world``: serve the benchmark process's commands on stdin, answers on stdout."""
    world = World()
    print(json.dumps(world.start()), flush=True)
    try:
        while line := await asyncio.to_thread(sys.stdin.readline):
            command = json.loads(line)
            if command["cmd"] == "quit":
                break
            try:
                reply = await world.handle(command)
            except Exception:
                reply = {"error": traceback.format_exc()}
            print(json.dumps(reply), flush=True)
    finally:
        world.stop()


# ---------------------------------------------------------------------------------------
# The apps


@dataclass
class Served:
    """An app listening on 127.0.0.1 and the time its handler took for each request."""

    url: str
    handler_times: list[float] = field(default_factory=list)


@contextlib.asynccontextmanager
async def serve(
    build: Callable[[Handler], web.Application], handler: Handler
) -> AsyncIterator[Served]:
    """Serve ``build(timed handler)`` on a free port until the block ends."""
    served = Served("")

    async def timed(request: web.Request) -> web.StreamResponse:
        began = time.perf_counter()
        response = await handler(request)
        served.handler_times.append(time.perf_counter() - began)
        return response

    runner = web.AppRunner(build(timed), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    served.url = f"http://127.0.0.1:{runner.addresses[0][1]}/slack/events"
    try:
        yield served
    finally:
        await runner.cleanup()


@dataclass
class Config:
    """One app to measure."""

    name: str
    tag: str
    #: Corral's post_interval; None: the product's default.
    post_interval: float | None = None


@dataclass
class Outcome:
    """What one configuration's measured run gave."""

    config: Config
    world: Json
    handler_times: list[float]
    app_cpu: float
    pacing: float | None = None
    inbox: dict[str, int] = field(default_factory=dict)

    @property
    def mentions(self) -> list[Json]:
        return list(self.world["mentions"])

    @property
    def acks(self) -> list[float]:
        return [m["ack"] for m in self.mentions]

    @property
    def answers(self) -> list[float]:
        return [m["answer"] for m in self.mentions if m["answer"] is not None]

    @property
    def answered(self) -> int:
        return len(self.answers)

    @property
    def rate(self) -> float:
        span = self.world["last_answer"] - self.world["first_sent"]
        return self.answered / span if span > 0 else 0.0

    def exactly_once(self) -> tuple[bool, str]:
        """Whether every mention got one post, its own, and nothing else was posted."""
        counts = Counter(m["posts"] for m in self.mentions)
        wrong = sum(1 for m in self.mentions if m["posts"] and not m["right"])
        not_200 = sum(1 for m in self.mentions if m["status"] != 200)
        problems = []
        if counts.get(0):
            problems.append(f"{counts[0]} unanswered")
        if extra := sum(n for posts, n in counts.items() if posts > 1):
            problems.append(f"{extra} answered more than once")
        if wrong:
            problems.append(f"{wrong} with another mention's answer")
        if self.world["stray"]:
            problems.append(f"{len(self.world['stray'])} posts outside the threads")
        if not_200:
            problems.append(f"{not_200} acks not 200")
        if self.inbox:
            unfinished = {s: n for s, n in self.inbox.items() if s != "done" and n}
            if unfinished:
                problems.append(f"inbox not all done: {unfinished}")
        ok = not problems
        summary = f"{counts.get(1, 0)}/{len(self.mentions)} threads with exactly one post"
        return ok, summary + ("" if ok else " — " + ", ".join(problems))


def model_env(addresses: Json) -> dict[str, str]:
    return {
        "ANTHROPIC_BASE_URL": addresses["anthropic_url"],
        "ANTHROPIC_API_KEY": "fake",
        "OPENAI_BASE_URL": addresses["openai_url"],
        "OPENAI_API_KEY": "fake",
    }


async def drive(
    world: WorldLink,
    served: Served,
    config: Config,
    args: argparse.Namespace,
    pause: float,
    profile: Any = None,
) -> tuple[Json, float]:
    """Warm up, then the measured run; returns the world's report and this process's CPU."""
    common = {
        "url": served.url,
        "tag": config.tag,
        "senders": args.senders,
        "channels": args.channels,
        "limit_s": args.timeout,
    }
    warm = await world.call(
        {
            "cmd": "run",
            "args": {**common, "first": 0, "mentions": args.warmup, "rate": 0.0},
        }
    )
    if warm["timed_out"]:
        raise RuntimeError(f"{config.name}: the warm-up mentions were not all answered")
    # Let the per-channel pacing of the warm-up's posts run out before measuring.
    await asyncio.sleep(pause)
    served.handler_times.clear()
    if profile is not None:
        profile.start()
    cpu = time.process_time()
    report = await world.call(
        {
            "cmd": "run",
            "args": {**common, "first": args.warmup, "mentions": args.mentions, "rate": args.rate},
        }
    )
    cpu = time.process_time() - cpu
    if profile is not None:
        profile.stop()
    return report, cpu


async def run_corral(
    world: WorldLink, config: Config, args: argparse.Namespace, database_url: str, profile: Any
) -> Outcome:
    """Corral's real Slack app in HTTP mode, measured."""
    from harness import TEAM, make_core, make_team

    from corral.agents.llm.anthropic_provider import AnthropicProvider
    from corral.agents.llm.openai_provider import OpenAIProvider
    from corral.agents.llm.registry import ModelRegistry, ProviderSettings
    from corral.bot.heap import freeze_startup_heap
    from corral.bot.http_server import build_http_app
    from corral.bot.settings import Settings
    from corral.bot.slack.app import slack_parts
    from corral.storage.store import Storage

    addresses = world.addresses
    # The load comes from a few people in a few channels, far above the flood limits,
    # which this benchmark does not measure: they are set above the load.
    flood = {"person": 1_000_000, "channel": 1_000_000}
    team = make_team(limits={**TEAM["limits"], "messages_per_minute": flood})
    storage = await Storage.open(database_url)
    models = ModelRegistry(
        team.models,
        ProviderSettings.from_variables(model_env(addresses)),
        provider_factories={
            "anthropic": lambda: AnthropicProvider(
                api_key="fake", base_url=addresses["anthropic_url"]
            ),
            "openai": lambda: OpenAIProvider(api_key="fake", base_url=addresses["openai_url"]),
        },
    )
    core = make_core(
        storage,
        models,
        team,
        Settings(
            _env_file=None,
            slack_bot_token=addresses["bot_token"],
            slack_signing_secret=se.SIGNING_SECRET,
            slack_api_url=addresses["slack_api_url"],
            database_url=database_url,
        ),
    )
    services = core.chat_services()
    if config.post_interval is None:
        parts = slack_parts(services, addresses["bot_token"], addresses["slack_api_url"])
    else:
        parts = slack_parts(
            services,
            addresses["bot_token"],
            addresses["slack_api_url"],
            post_interval=config.post_interval,
        )
    pacing = parts.adapter.post_interval
    workers = core.workers({"slack": parts.adapter}, concurrency=args.workers)
    parts.attach(services, workers, se.SIGNING_SECRET)
    before = await storage.inbox.count_by_status()
    try:
        async with serve(lambda h: build_http_app(storage, slack=h), parts.handle_http) as served:
            # As bot/service.py starts: providers created, start-up's heap frozen, workers.
            await core.models.warm_up()
            freeze_startup_heap()
            workers.start()
            try:
                report, cpu = await drive(world, served, config, args, pacing + 0.1, profile)
                inbox = await settled_inbox(storage, before)
            finally:
                await workers.stop()
                await parts.close()
    finally:
        await models.aclose()
        await storage.close()
    return Outcome(config, report, served.handler_times, cpu, pacing, inbox)


async def settled_inbox(storage: Any, before: dict[str, int]) -> dict[str, int]:
    """The inbox's counts by status for this run (after ``before``), once nothing is in
    progress (or after 10 s)."""
    for _ in range(500):
        now = await storage.inbox.count_by_status()
        delta = {s: n - before.get(s, 0) for s, n in now.items() if n - before.get(s, 0)}
        if not delta.get("pending") and not delta.get("working"):
            return delta
        await asyncio.sleep(0.02)
    return delta


async def run_floor(
    world: WorldLink, config: Config, args: argparse.Namespace, body: Json
) -> Outcome:
    """The bare slack-bolt app: the same model call, one post in the thread."""
    import anthropic
    from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
    from slack_bolt.async_app import AsyncApp
    from slack_sdk.web.async_client import AsyncWebClient

    addresses = world.addresses
    client = AsyncWebClient(token=addresses["bot_token"], base_url=addresses["slack_api_url"])
    llm = anthropic.AsyncAnthropic(base_url=addresses["anthropic_url"], api_key="fake")
    app = AsyncApp(client=client, signing_secret=se.SIGNING_SECRET)

    async def on_mention(event: dict[str, Any], client: AsyncWebClient) -> None:
        text = str(event["text"]).replace(se.mention(), "").strip()
        message = await llm.messages.create(
            model=body["model"],
            max_tokens=body["max_tokens"],
            system=body.get("system", anthropic.omit),
            tools=body.get("tools", anthropic.omit),
            messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        )
        answer = "".join(b.text for b in message.content if b.type == "text")
        await client.chat_postMessage(channel=event["channel"], thread_ts=event["ts"], text=answer)

    app.event("app_mention")(on_mention)

    async def handle(request: web.Request) -> web.StreamResponse:
        return await to_aiohttp_response(await app.async_dispatch(await to_bolt_request(request)))

    def build(handler: Handler) -> web.Application:
        http = web.Application()
        http.router.add_post("/slack/events", handler)
        return http

    try:
        async with serve(build, handle) as served:
            report, cpu = await drive(world, served, config, args, 0.1)
    finally:
        await llm.close()
    return Outcome(config, report, served.handler_times, cpu)


# ---------------------------------------------------------------------------------------
# Figures


def quantile(values: list[float], q: int) -> float:
    """The ``q``-th percentile (inclusive method); NaN without values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def pacing_label(pacing: float | None) -> str:
    if pacing is None:
        return "no pacing"
    return f"{pacing:g} s/channel" if pacing > 0 else "pacing off"


def sending_span(outcome: Outcome) -> float:
    """Seconds from the first mention sent to the last."""
    return float(outcome.world["sending_done"] - outcome.world["first_sent"])


def print_outcome(outcome: Outcome, args: argparse.Namespace) -> None:
    acks, answers = outcome.acks, outcome.answers
    ok, summary = outcome.exactly_once()
    world = outcome.world
    n = len(outcome.mentions)
    print(f"{outcome.config.name}")
    if outcome.pacing is not None:
        print(f"  posting pace:    {pacing_label(outcome.pacing)} (adapter post_interval)")
    print(
        f"  ack:             p50 {ms(quantile(acks, 50))}   p99 {ms(quantile(acks, 99))}   "
        f"max {ms(max(acks))}   (in-app handler p50 {ms(quantile(outcome.handler_times, 50))}, "
        f"p99 {ms(quantile(outcome.handler_times, 99))})"
    )
    print(
        f"  event→answer:    p50 {ms(quantile(answers, 50))}   p99 {ms(quantile(answers, 99))}   "
        f"max {ms(max(answers, default=float('nan')))}"
    )
    sending = sending_span(outcome)
    print(
        f"  answered/s:      {outcome.rate:,.1f}   ({outcome.answered}/{n} answered; the "
        f"{n} mentions were sent in {sending:.2f} s, {n / sending:,.0f}/s)"
    )
    print(f"  exactly once:    {verdict(ok)}  {summary}")
    if outcome.inbox:
        print(f"  inbox (this run incl. warm-up): {dict(sorted(outcome.inbox.items()))}")
    per = ", ".join(
        f"{m} {c / n:.2f}"
        for m, c in sorted(world["methods"].items(), key=lambda kv: -kv[1])
        if c / n >= 0.005
    )
    print(f"  Slack calls per mention: {per}")
    wall = world["world_wall"]
    if args.fakes == "process":
        print(
            f"  CPU over the run ({wall:.1f} s): app process {outcome.app_cpu:.1f} s "
            f"({outcome.app_cpu / wall:.0%} of a core), world process {world['world_cpu']:.1f} s "
            f"({world['world_cpu'] / wall:.0%})"
        )
    else:
        print(
            f"  CPU over the run ({wall:.1f} s): {outcome.app_cpu:.1f} s "
            f"({outcome.app_cpu / wall:.0%} of a core) for the app and the world together"
        )


def paced_floor(outcome: Outcome) -> list[float]:
    """The least event→answer each mention could have had under the adapter's pacing:
    a channel's first ``POST_BURST`` posts may go at once (the bucket is full after the
    warm-up's pause), and its j-th mention (in sending order) cannot be answered before
    the first mention was sent plus j − (POST_BURST − 1) post intervals, however fast
    everything else is."""
    from corral.bot.slack.adapter import POST_BURST

    pacing = outcome.pacing or 0.0
    start = outcome.world["first_sent"]
    by_channel: defaultdict[str, list[float]] = defaultdict(list)
    for m in outcome.mentions:
        by_channel[m["channel"]].append(m["sent"])
    bounds = []
    for sent in by_channel.values():
        for j, at in enumerate(sorted(sent)):
            bounds.append(max(0.0, start + max(0, j - (POST_BURST - 1)) * pacing - at))
    return bounds


def answered_at_rate(outcome: Outcome, rate: float) -> list[float]:
    """Each mention's event→answer had it been answered in the order sent, one at a time,
    by something that answers ``rate`` mentions a second and does nothing else."""
    free = 0.0
    waits = []
    for sent in sorted(m["sent"] for m in outcome.mentions):
        free = max(free, sent) + 1 / rate
        waits.append(free - sent)
    return waits


def print_goals(corral: Outcome, floor: Outcome, args: argparse.Namespace) -> None:
    answers, floor_answers = corral.answers, floor.answers
    p50, p99 = quantile(answers, 50), quantile(answers, 99)
    floor_p50 = quantile(floor_answers, 50)
    ack_p99 = quantile(corral.acks, 99)
    once, _ = corral.exactly_once()
    cap = args.channels / corral.pacing if corral.pacing else float("inf")
    least_p50 = quantile(paced_floor(corral), 50)
    print(f"Goals for {corral.config.name}:")
    p50_line = (
        f"  event→answer p50 ≤ {GOAL_P50_RATIO:g}× the floor's: {ms(p50)} vs "
        f"{ms(floor_p50)} = {p50 / floor_p50:.2f}×   {verdict(p50 <= GOAL_P50_RATIO * floor_p50)}"
    )
    if least_p50 > GOAL_P50_RATIO * floor_p50:
        p50_line += (
            f"   (impossible with this pacing: these mentions, sent when they were, cannot "
            f"have an event→answer p50 under {ms(least_p50)})"
        )
    corral_span, floor_span = sending_span(corral), sending_span(floor)
    if args.rate == 0 and floor_span > 1.5 * corral_span:
        at_floor_rate = quantile(answered_at_rate(corral, floor.rate), 50)
        p50_line += (
            f"\n    (not like for like: each sender waits for its ack, and the floor acks "
            f"more slowly, so its mentions arrived over {floor_span:.2f} s against "
            f"{corral_span:.2f} s for Corral's and waited less in line. Answering Corral's "
            f"arrivals one by one at the floor's own rate, {floor.rate:,.0f}/s, would give a "
            f"p50 of {ms(at_floor_rate)} = {at_floor_rate / floor_p50:.2f}× the floor's. "
            "--rate compares both at the same arrivals)"
        )
    print(p50_line)
    print(
        f"  event→answer p99 ≤ {GOAL_TAIL_RATIO:g}× its own p50: {ms(p99)} = "
        f"{p99 / p50:.2f}× p50   {verdict(p99 <= GOAL_TAIL_RATIO * p50)}"
    )
    print(
        f"  ack p99 ≤ {GOAL_ACK_P99_S * 1000:g} ms: {ms(ack_p99)}   "
        f"{verdict(ack_p99 <= GOAL_ACK_P99_S)}"
    )
    rate_line = (
        f"  ≥ {GOAL_RATE:g} answered mentions/s in one process: {corral.rate:,.1f}/s   "
        f"{verdict(corral.rate >= GOAL_RATE)}"
    )
    if cap < GOAL_RATE:
        rate_line += (
            f"   (impossible with this pacing: {args.channels} channels × 1 post per "
            f"{corral.pacing:g} s = at most {cap:g} answers/s)"
        )
    print(rate_line)
    print(f"  every mention answered exactly once   {verdict(once)}")


# ---------------------------------------------------------------------------------------
# Main


@contextlib.asynccontextmanager
async def open_world(kind: str) -> AsyncIterator[WorldLink]:
    world: WorldLink = await ProcessWorld.start() if kind == "process" else ThreadWorld()
    try:
        yield world
    finally:
        await world.close()


@dataclass
class Results:
    """Every configuration's outcome."""

    corral: list[Outcome]
    floor: Outcome
    profile: Any = None


async def bench(args: argparse.Namespace) -> Results:
    """Run every configuration: Corral (again without pacing when the pacing caps the
    answer rate below the goal), and the floor after Corral's first run, whose model
    request it replays."""
    from corral.bot.slack.adapter import POST_INTERVAL_S

    first_pacing = POST_INTERVAL_S if args.post_interval is None else args.post_interval
    cap = args.channels / first_pacing if first_pacing > 0 else float("inf")
    configs = [Config(f"Corral ({pacing_label(first_pacing)})", "A", args.post_interval)]
    if cap < GOAL_RATE:
        configs.append(Config("Corral (pacing off, post_interval=0)", "B", 0.0))
    profile: Any = None
    if args.profile:
        from pyinstrument import Profiler

        profile = Profiler(interval=0.001, async_mode="disabled")

    print(
        f"Slack end to end: {args.mentions} signed mentions from {args.senders} concurrent "
        f"senders across {args.channels} channels, each a new thread; {args.warmup} warm-up "
        f"mentions first; Corral's Workers: {args.workers}."
    )
    if args.rate > 0:
        print(f"Arrivals spread at {args.rate:g} mentions/s.")
    else:
        print(
            "Each sender sends its next mention on the ack of its previous one: "
            f"{args.senders} requests are in flight while sending, so ack latency ≈ "
            f"{args.senders} ÷ the rate the app acks at."
        )
    if cap < GOAL_RATE:
        print(
            f"Note: Corral's pacing ({first_pacing:g} s between posts per channel) caps "
            f"answers at {args.channels} channels ÷ {first_pacing:g} s = {cap:g}/s, so the "
            f"goal of ≥ {GOAL_RATE:g} answered/s is impossible with it; Corral runs a "
            "second time with post_interval=0."
        )
    print(
        "Database: "
        + (args.database_url or "a SQLite file in a temporary directory, one per configuration")
    )
    corral: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="corral-slack-bench-") as tmp:
        async with open_world(args.fakes) as world:
            print(f"World (fake Slack, fake models, senders): {world.where}.")
            print()
            for n, config in enumerate(configs):
                url = args.database_url or f"sqlite+aiosqlite:///{tmp}/corral-{config.tag}.db"
                last = n == len(configs) - 1
                corral.append(await run_corral(world, config, args, url, profile if last else None))
                if n == 0:
                    body = (await world.call({"cmd": "last_request", "model": MODEL}))["body"]
                    floor = await run_floor(
                        world, Config("bare slack-bolt (floor)", "F"), args, body
                    )
    return Results(corral, floor, profile)


def report(results: Results, args: argparse.Namespace) -> None:
    """Print the figures and the goals."""
    everything = (*results.corral, results.floor)
    for outcome in everything:
        print_outcome(outcome, args)
        print()
    print(
        f"{'':38}{'ack p50':>9}{'ack p99':>10}{'answer p50':>12}{'answer p99':>12}"
        f"{'answered/s':>12}  exactly once"
    )
    for outcome in everything:
        acks, answers = outcome.acks, outcome.answers
        print(
            f"{outcome.config.name:38}{quantile(acks, 50) * 1000:>7.1f}ms"
            f"{quantile(acks, 99) * 1000:>8.1f}ms{quantile(answers, 50) * 1000:>10.0f}ms"
            f"{quantile(answers, 99) * 1000:>10.0f}ms{outcome.rate:>12.1f}  "
            f"{verdict(outcome.exactly_once()[0])}"
        )
    print()
    for outcome in results.corral:
        print_goals(outcome, results.floor, args)
    if results.profile is not None:
        Path(args.profile).write_text(results.profile.output_text(show_all=False, color=False))
        print(
            f"\nProfile of the app process during {results.corral[-1].config.name}: {args.profile}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mentions", type=int, default=1000, help="measured mentions (1000)")
    parser.add_argument("--senders", type=int, default=50, help="concurrent senders (50)")
    parser.add_argument("--channels", type=int, default=20, help="channels (20)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up mentions (20)")
    parser.add_argument("--workers", type=int, default=4, help="Corral's Workers (default 4)")
    parser.add_argument(
        "--post-interval",
        type=float,
        default=None,
        help="seconds between Corral's posts per channel (default: the product's default)",
    )
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="spread the mentions' arrivals at this many per second (default 0: each sender "
        "sends as soon as its previous mention is acknowledged)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="Corral's database (default: a SQLite file in a temporary directory); e.g. "
        "postgresql+asyncpg://user@host/db — used as it is (migrated, not emptied)",
    )
    parser.add_argument(
        "--fakes",
        choices=("process", "thread"),
        default="process",
        help="run the fakes and senders in a subprocess (default) or on threads of this one",
    )
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds a run may take (240)")
    parser.add_argument(
        "--profile",
        metavar="FILE",
        default=None,
        help="profile the app process (pyinstrument) during the last Corral run, text to FILE",
    )
    parser.add_argument("--world", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # The runtime logs each run at INFO; keep the output to the figures.
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if args.world:
        asyncio.run(world_main())
        return
    results = asyncio.run(bench(args))
    report(results, args)
    if any(o.world["timed_out"] for o in (*results.corral, results.floor)):
        sys.exit("a run did not complete within --timeout")


if __name__ == "__main__":
    main()
