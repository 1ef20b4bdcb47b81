"""How much time Corral adds to an agent turn, compared with the bare model call.

In one process and one event loop, against the local fake model server
(``tests/fakes/model_server.py``), this measures alternating pairs of:

A. an agent turn through Corral: ``Gateway.submit`` of an ``Inbound`` addressed to
   ``@beaver`` → a worker claims it from the durable inbox (SQLite file) → the coordinator
   routes it by its explicit address (no model call) → the runtime recalls memories (empty
   store), calls the model once through the real Anthropic SDK (``AnthropicProvider`` via
   ``ModelRegistry``) and the model-call wrappers of the composition root (cooldowns,
   budgets and the ledger of spend, rate limits), posts the reply to a recording adapter
   and records the run. Timed
   from ``submit`` until ``Workers.wait`` returns for that message.
B. the bare SDK call: ``AsyncAnthropic(...).messages.create`` with the same request body
   that A sends (system prompt, tools, one user message), to the same server.

Each message starts its own thread, so the history stays one message long, like B's.
After a warm-up the pairs alternate which of A and B goes first, to cancel drift. It
prints the medians and p95s, the median of the per-pair ratio A/B against the goal
(≤ 1.3), the SQL statements one turn executes, the peak RSS of the process, and the
median wall time of ``corral --help`` (goal ≤ 0.5 s). It is not a test: it asserts no
timings, and only fails if a turn does not produce its reply.

Run it from the repository root::

    .venv/bin/python benchmarks/turn_overhead.py            # or: make bench
    .venv/bin/python benchmarks/turn_overhead.py --pairs 500 --warmup 50
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import anthropic  # noqa: E402
from fakes.model_server import FakeModelServer  # noqa: E402
from harness import RecordingAdapter  # noqa: E402
from sqlalchemy import event  # noqa: E402

from corral.agents.llm.anthropic_provider import AnthropicProvider  # noqa: E402
from corral.agents.llm.registry import ModelRegistry, ProviderSettings  # noqa: E402
from corral.agents.redaction import Redactor  # noqa: E402
from corral.agents.runtime import Runtime  # noqa: E402
from corral.agents.team import Team  # noqa: E402
from corral.bot.coordinator import Coordinator  # noqa: E402
from corral.bot.gateway import Gateway, Workers  # noqa: E402
from corral.bot.inbound import Inbound  # noqa: E402
from corral.bot.limits import compose_limits, in_process_stores  # noqa: E402
from corral.bot.permissions import Gatekeeper, PlatformDirectory  # noqa: E402
from corral.storage.queue import InProcessQueue  # noqa: E402
from corral.storage.store import Storage  # noqa: E402

MODEL = "bench-model"
RATIO_GOAL = 1.3
HELP_GOAL_S = 0.5

TEAM: dict[str, Any] = {
    "models": {"fast": [f"anthropic/{MODEL}"]},
    "agents": {
        "beaver": {
            "display_name": "Beaver",
            "role": "Developer; writes and fixes code",
            "instructions": "You write code.",
            "model": "fast",
            "channels": ["#dev"],
            "tools": ["memory"],
        },
        "owl": {
            "display_name": "Owl",
            "role": "QA engineer; tests releases",
            "instructions": "You test.",
            "model": "fast",
            "channels": ["#qa"],
        },
    },
}


class Bench:
    """Corral wired as in ``tests/harness.py`` plus a bare SDK client, on one fake server."""

    def __init__(self, storage: Storage, server: FakeModelServer) -> None:
        team = Team.model_validate(TEAM)
        self.storage = storage
        self.server = server
        self.models = ModelRegistry(
            team.models,
            ProviderSettings.from_variables(server.env(("anthropic",))),
            provider_factories={
                "anthropic": lambda: AnthropicProvider(
                    api_key="fake", base_url=server.anthropic_url
                ),
            },
        )
        queue = InProcessQueue()
        # Composed as the composition root does: redaction, cooldowns, budgets and cost,
        # rate limits (none configured: the sample's are a team's choice, not Corral's
        # overhead).
        redactor = Redactor(patterns=team.redact.patterns)
        directory = PlatformDirectory()
        run = compose_limits(
            team,
            storage,
            self.models.client_for,
            in_process_stores(),
            UTC,
            redact=redactor.redact,
            channel_aliases=directory.aliases,
        )
        seams = run.seams
        runtime = Runtime(team, seams, storage, gate=run.gate)
        coordinator = Coordinator(team, storage.threads, seams.model_call)
        self.adapter = RecordingAdapter(platform="bench")
        self.gateway = Gateway(storage, queue, redactor=redactor)
        self.workers = Workers(
            storage,
            queue,
            coordinator,
            runtime,
            {"bench": self.adapter},
            redactor=redactor,
            gatekeeper=Gatekeeper(team, directory, storage.audit),
        )
        self.bare = anthropic.AsyncAnthropic(
            base_url=server.anthropic_url, api_key="fake", max_retries=0
        )
        #: The body of A's model request, replayed by B (set by :meth:`capture_request`).
        self.body: dict[str, Any] = {}
        self._n = 0

    async def corral_turn(self) -> None:
        """A: one message through gateway, worker, coordinator, runtime and adapter."""
        self._n += 1
        message_id = f"m{self._n}"
        posted = len(self.adapter.posts)
        inbox_id = await self.gateway.submit(
            Inbound(
                platform="bench",
                event_id=f"e{self._n}",
                channel="C0BENCH",
                channel_name="#bench",
                message_id=message_id,
                thread=message_id,
                user="U1",
                user_name="Ursula",
                text=f"@beaver please look at build number {self._n}",
                to_app=True,
            )
        )
        if inbox_id is None:
            raise RuntimeError(f"message {message_id} was taken for a duplicate")
        await self.workers.wait(inbox_id)
        if len(self.adapter.posts) != posted + 1 or self.adapter.posts[-1][1].kind != "answer":
            raise RuntimeError(f"turn {message_id} did not post one answer: {self.adapter.posts}")

    async def bare_call(self) -> None:
        """B: the same request straight through the SDK."""
        self._n += 1
        await self.bare.messages.create(
            model=MODEL,
            max_tokens=self.body["max_tokens"],
            system=self.body.get("system", anthropic.omit),
            tools=self.body.get("tools", anthropic.omit),
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": f"[U1]: @beaver please look at build {self._n}"}
                    ],
                }
            ],
        )

    def capture_request(self) -> None:
        """Remember the body of Corral's latest model request, for B to replay."""
        self.body = self.server.requests_for(MODEL)[-1].json

    async def close(self) -> None:
        await self.workers.stop()
        await self.models.aclose()
        await self.bare.close()


async def timed(call: Callable[[], Awaitable[None]]) -> float:
    """Seconds ``call`` took."""
    started = time.perf_counter()
    await call()
    return time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[18]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kilobytes, macOS bytes.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def help_times(runs: int) -> list[float]:
    """Wall times of ``corral --help`` in fresh processes (after one unmeasured run)."""
    corral = Path(sys.executable).with_name("corral")
    command = (
        [str(corral), "--help"]
        if corral.exists()
        else [sys.executable, "-c", "from corral.bot.cli import main; main()", "--help"]
    )
    times = []
    for i in range(runs + 1):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        if i:
            times.append(time.perf_counter() - started)
    return times


async def measure(
    pairs: int, warmup: int, latency_ms: float = 0.0
) -> tuple[list[float], list[float], float]:
    """A and B times of ``pairs`` pairs, and the SQL statements per Corral turn."""
    with tempfile.TemporaryDirectory(prefix="corral-bench-") as tmp:
        storage = await Storage.open(f"sqlite+aiosqlite:///{tmp}/bench.db")
        try:
            async with FakeModelServer() as server:
                server.latency = latency_ms / 1000
                bench = Bench(storage, server)
                bench.workers.start()
                try:
                    return await _pairs(bench, pairs, warmup)
                finally:
                    await bench.close()
        finally:
            await storage.close()


async def _pairs(bench: Bench, pairs: int, warmup: int) -> tuple[list[float], list[float], float]:
    statements = 0

    def count(*_: Any) -> None:
        nonlocal statements
        statements += 1

    engine = bench.storage.db.engine.sync_engine
    await bench.corral_turn()
    bench.capture_request()
    # Statements are counted over the warm-up only, so the listener costs A nothing later.
    event.listen(engine, "before_cursor_execute", count)
    for _ in range(warmup):
        await bench.corral_turn()
        await bench.bare_call()
    event.remove(engine, "before_cursor_execute", count)
    per_turn = statements / warmup if warmup else float("nan")

    a_times: list[float] = []
    b_times: list[float] = []
    for i in range(pairs):
        if i % 2 == 0:
            a_times.append(await timed(bench.corral_turn))
            b_times.append(await timed(bench.bare_call))
        else:
            b_times.append(await timed(bench.bare_call))
            a_times.append(await timed(bench.corral_turn))
    return a_times, b_times, per_turn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=200, help="measured pairs (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up pairs (default 20)")
    parser.add_argument("--help-runs", type=int, default=5, help="`corral --help` runs (5)")
    parser.add_argument(
        "--model-latency-ms",
        type=float,
        default=0.0,
        help="delay of every fake model answer, to compare at a real model's latency (0)",
    )
    args = parser.parse_args()
    # The runtime logs each run at INFO; keep the output to the figures.
    logging.basicConfig(level=logging.WARNING)

    a, b, statements = asyncio.run(measure(args.pairs, args.warmup, args.model_latency_ms))
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    ratio = statistics.median(ratios)
    rss = peak_rss_mb()
    helps = help_times(args.help_runs)
    help_median = statistics.median(helps)

    print(
        f"Corral turn overhead: {args.pairs} pairs after {args.warmup} warm-up pairs, "
        f"fake model latency {args.model_latency_ms:g} ms"
    )
    print(f"  A  Corral turn (submit → worker done)   median {ms(statistics.median(a))}", end="")
    print(f"   p95 {ms(p95(a))}")
    print(f"  B  bare SDK messages.create           median {ms(statistics.median(b))}", end="")
    print(f"   p95 {ms(p95(b))}")
    extra = statistics.median(x - y for x, y in zip(a, b, strict=True))
    print(f"  A − B per pair: median {ms(extra)}")
    print(f"  A/B per pair: median {ratio:.2f}   p95 {p95(ratios):.2f}")
    print(f"  goal: ratio ≤ {RATIO_GOAL}  →  {verdict(ratio <= RATIO_GOAL)}")
    print(f"  SQL statements per Corral turn: {statements:.1f}")
    print(f"Peak RSS of this process: {rss:.1f} MB")
    print(
        f"`corral --help`: median {help_median:.3f} s of {len(helps)} runs "
        f"(min {min(helps):.3f} s, max {max(helps):.3f} s)"
    )
    print(f"  goal: ≤ {HELP_GOAL_S} s  →  {verdict(help_median <= HELP_GOAL_S)}")


if __name__ == "__main__":
    main()
