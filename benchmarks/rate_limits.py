"""Shared rate limits under load (issue 13): 50 agents send 1,000 messages to one model
whose provider — the fake model server (``tests/fakes/model_server.py``) — enforces 600
requests and 100,000 tokens per minute in a sliding window and answers 429 with
``retry-after`` and the rate-limit headers, as Anthropic does.

Messages arrive at a steady 1.25x the request limit's rate (``--overload``), spread over
the agents in turn, so that demand exceeds supply and goodput is meaningful. Each
configuration plays the same arrivals, from 1 and from 3 OS processes
(``tests/rate_limit_process.py``, all started at one moment; message *i* goes to process
*i* mod P), each with a fresh fake provider running on a thread of this process:

* **limits configured** — Corral's model-call seam as the composition root composes it
  (``CoolingWrapper``, then ``RateLimitWrapper``), ``limits.models`` equal to the
  provider's limits;
* **headers only** — the same seam with no ``limits:``: the wrapper learns the limits
  from the provider's headers;
* **bare SDK** — ``AsyncAnthropic`` with its default retries (``max_retries=2``, which
  honour ``retry-after``): what a team gets without Corral; a message whose retries run
  out is lost.

With one process Corral's limiter and cooldowns live in the process; with three they are
shared through Redis (``--redis-url``; a SQLite database in a temporary folder is the
failover, as in production).

Per configuration it prints the provider's 429s, the messages left unanswered, goodput
(answered requests per window ÷ the limit, from the first arrival to the last answer),
p50/p99 wait per message (arrival → answer), the longest wait of any message, the spread
of the agents' mean waits (fairness), and the most requests the provider admitted in
any one window; then the goals with PASS/MISS: zero 429s and goodput ≥ 95% with limits
configured, ≥ 90% with headers only.

``--scale K`` shrinks the 60 s window K-fold on both sides (default 10: a run takes about
two minutes); every wait printed is then K times shorter than in real time.
``--scale 1`` is the real thing (about twenty minutes). Run it from the repository root::

    .venv/bin/python benchmarks/rate_limits.py
    .venv/bin/python benchmarks/rate_limits.py --scale 1
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakes.model_server import FakeModelServer  # noqa: E402
from rate_limit_process import Call, Outcome, Plan, run_processes  # noqa: E402

from corral.storage.db import Database  # noqa: E402

MODEL = "claude-haiku-4-5"
TARGET = f"anthropic/{MODEL}"
MODES = ("limits configured", "headers only", "bare SDK")
#: Goodput goals, by mode.
GOALS = {"limits configured": 0.95, "headers only": 0.90}


@dataclass(frozen=True)
class Figures:
    """What one configuration measured."""

    mode: str
    processes: int
    refused: int
    unanswered: int
    goodput: float
    p50: float
    p99: float
    longest: float
    agent_means: tuple[float, float]
    peak: int


def arrivals(messages: int, agents: int, rate: float) -> list[Call]:
    """``messages`` at a steady ``rate`` per second, from the agents in turn."""
    return [
        Call(f"agent{i % agents}", i / rate, text=f"message {i} from agent {i % agents}")
        for i in range(messages)
    ]


async def measure(
    mode: str, processes: int, calls: list[Call], args: argparse.Namespace, folder: Path
) -> Figures:
    """One configuration on a fresh fake provider."""
    window_s = 60.0 / args.scale
    with FakeModelServer.in_thread() as server:
        server.limit(
            MODEL,
            requests_per_minute=args.rpm,
            tokens_per_minute=args.tpm,
            window_s=window_s,
        )
        limits = (
            {TARGET: {"requests_per_minute": args.rpm, "tokens_per_minute": args.tpm}}
            if mode == "limits configured"
            else {}
        )
        prefix = f"corral-bench:{uuid.uuid4().hex}:"
        database_url = f"sqlite+aiosqlite:///{folder / f'{processes}-{MODES.index(mode)}.db'}"
        if processes > 1:
            db = Database(database_url)
            await db.upgrade()
            await db.dispose()
        plans = [
            Plan(
                calls[p::processes],
                [TARGET],
                window_s,
                limits,
                max_tokens=args.max_tokens,
                backend="redis" if processes > 1 else "inprocess",
                redis_prefix=prefix,
                database_url=database_url,
                bare=mode == "bare SDK",
            )
            for p in range(processes)
        ]
        env = {**server.env(["anthropic"]), "REDIS_URL": args.redis_url}
        try:
            outcomes = [o for result in await run_processes(plans, env) for o in result]
        finally:
            if processes > 1:
                await forget(args.redis_url, prefix)
        return figures(mode, processes, outcomes, server, window_s, args.rpm)


async def forget(redis_url: str, prefix: str) -> None:
    """Delete the run's keys from Redis."""
    from redis.asyncio import Redis

    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=prefix + "*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def figures(
    mode: str,
    processes: int,
    outcomes: list[Outcome],
    server: FakeModelServer,
    window_s: float,
    limit: int,
) -> Figures:
    """The figures of one run's outcomes and its provider's counts."""
    done = [o for o in outcomes if o.error is None]
    span = max(o.ended for o in done) - min(o.arrived for o in outcomes)
    waits = sorted(o.wait for o in done)
    by_agent: defaultdict[str, list[float]] = defaultdict(list)
    for outcome in done:
        by_agent[outcome.agent].append(outcome.wait)
    means = [statistics.fmean(w) for w in by_agent.values()]
    return Figures(
        mode=mode,
        processes=processes,
        refused=server.refused(MODEL),
        unanswered=len(outcomes) - len(done),
        goodput=len(done) / (span / window_s) / limit,
        p50=waits[len(waits) // 2],
        p99=waits[min(len(waits) - 1, int(len(waits) * 0.99))],
        longest=waits[-1],
        agent_means=(min(means), max(means)),
        peak=server.max_in_window(MODEL, "requests"),
    )


def report(results: list[Figures]) -> None:
    """The table, then the goals."""
    header = (
        f"{'configuration':<18} {'procs':>5} {'429s':>5} {'lost':>5} {'goodput':>8} "
        f"{'p50 wait':>9} {'p99 wait':>9} {'longest':>8} {'agent mean wait':>16} "
        f"{'peak/window':>11}"
    )
    print(header)
    print("-" * len(header))
    for f in results:
        low, high = f.agent_means
        print(
            f"{f.mode:<18} {f.processes:>5} {f.refused:>5} {f.unanswered:>5} "
            f"{f.goodput:>8.1%} {f.p50:>8.2f}s {f.p99:>8.2f}s {f.longest:>7.2f}s "
            f"{f'{low:.2f}–{high:.2f}s':>16} {f.peak:>11}"
        )
    print()
    print("Goals:")
    for f in results:
        goal = GOALS.get(f.mode)
        if goal is None:
            continue
        met = f.goodput >= goal and (f.mode != "limits configured" or f.refused == 0)
        zero = "zero 429s and " if f.mode == "limits configured" else ""
        print(
            f"  {'PASS' if met else 'MISS'}  {f.mode}, {f.processes} process(es): "
            f"{zero}goodput ≥ {goal:.0%} — {f.refused} 429s, goodput {f.goodput:.1%}"
        )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10.0, help="window = 60 s / K")
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--rpm", type=int, default=600, help="requests per window")
    parser.add_argument("--tpm", type=int, default=100_000, help="tokens per window")
    parser.add_argument("--overload", type=float, default=1.25, help="arrivals ÷ the limit")
    parser.add_argument("--max-tokens", type=int, default=64, help="each call's max_tokens")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 3])
    args = parser.parse_args()

    window_s = 60.0 / args.scale
    rate = args.overload * args.rpm / window_s
    calls = arrivals(args.messages, args.agents, rate)
    print(
        f"Rate limits: the provider allows {args.rpm} requests and {args.tpm:,} tokens per "
        f"window of {window_s:g} s (a minute scaled {args.scale:g}x: --scale {args.scale:g}; "
        f"every time below is {args.scale:g}x shorter than in real time); {args.agents} "
        f"agents, {args.messages:,} messages arriving at {rate:g}/s ({args.overload:g}x the "
        f"limit), max_tokens {args.max_tokens}."
    )
    print(
        "Goodput: answered requests per window ÷ the limit, from the first arrival to the "
        "last answer. Wait: arrival → answer, of the answered messages. lost: messages "
        "never answered. "
        "peak/window: most requests the provider admitted in one window."
    )
    print()
    results = []
    with tempfile.TemporaryDirectory() as folder:
        for processes in args.processes:
            for mode in MODES:
                results.append(await measure(mode, processes, calls, args, Path(folder)))
    report(results)


if __name__ == "__main__":
    asyncio.run(main())
