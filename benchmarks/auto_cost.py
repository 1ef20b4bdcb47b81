"""What ``model: auto`` saves: the sample team on a mixed workload, with and without it.

Against the local fake model server (``tests/fakes/model_server.py``), through the real
Anthropic SDK, the sample ``team.yaml`` answers the same messages twice:

A. as written, except that its ``model: auto`` agents use the ``smart`` tier (the
   baseline: every careful agent on the strong model);
B. with ``model: auto`` on every agent of the ``smart`` tier, so each message gets the
   ``fast`` or the ``smart`` tier by how hard it is: the router rates the messages it
   routes, and one small call on the fast tier rates the ones addressed to an agent.

The workload is ``--messages`` messages (default 100), ``--routine`` of them routine
(default 60%), the rest asking for real work; half are addressed to an agent, half go
through the router. The fake rates a message complex when it asks to design, plan, debug,
write … or runs over 25 words (the router and the classifier of a real model judge for
themselves). Token counts are the fake's (words of the request and of a short answer),
so the figures compare the two runs; they do not forecast a bill. Costs are the shipped
price table's. The sample's rate limits are lifted: this measures cost, not pacing.

Run it from the repository root::

    .venv/bin/python benchmarks/auto_cost.py
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.model_server import FakeModelServer  # noqa: E402
from harness import Harness  # noqa: E402

from corral.agents.model_choice import AUTO  # noqa: E402
from corral.agents.team import MessageLimits, Team  # noqa: E402
from corral.agents.team_loader import load_team  # noqa: E402
from corral.storage.store import Storage  # noqa: E402

ROUTINE = [
    "is the build green?",
    "who is on call today?",
    "did the release go out?",
    "what is the status of the login fix?",
    "is staging up?",
]
COMPLEX = [
    "please design the retry logic for the payment webhooks and plan the rollout",
    "debug why the nightly export sometimes drops the last row",
    "write the migration plan for moving sessions to Redis",
    "investigate the memory growth in the worker and propose a fix",
]
#: Agents addressed by name, and the channel a message to the router goes to.
ADDRESSED = ["beaver", "owl", "otter", "lark"]


def _team(auto: bool) -> Team:
    team = load_team(ROOT / "team.yaml")
    # Every message of the run comes from one person in a few channels, far above the
    # flood limits, which would only stretch the run: they are set above the load.
    flood = MessageLimits(person=100_000, channel=100_000)
    limits = team.limits.model_copy(
        update={"models": {}, "providers": {}, "messages_per_minute": flood}
    )
    agents = {}
    for handle, agent in team.agents.items():
        careful = agent.model in ("smart", AUTO)
        model = (AUTO if auto else "smart") if careful else agent.model
        agents[handle] = agent.model_copy(update={"model": model})
    return team.model_copy(update={"agents": agents, "limits": limits})


def _workload(messages: int, routine: float) -> list[tuple[str, str | None]]:
    """``(text, agent addressed or None)`` for each message, in a fixed order."""
    out: list[tuple[str, str | None]] = []
    for n in range(messages):
        pool = ROUTINE if (n % 10) < round(routine * 10) else COMPLEX
        text = pool[n % len(pool)]
        agent = ADDRESSED[n % len(ADDRESSED)] if n % 2 == 0 else None
        out.append((f"@{agent} {text}" if agent else text, agent))
    return out


@dataclass(frozen=True)
class Result:
    cost: float
    calls: dict[str, int]
    unknown: int


async def _run(auto: bool, messages: int, routine: float) -> Result:
    with tempfile.TemporaryDirectory() as folder:
        storage = await Storage.open(f"sqlite+aiosqlite:///{folder}/bench.db")
        async with FakeModelServer() as server:
            h = Harness.build(storage, server, team=_team(auto))
            h.workers.start()
            try:
                for n, (text, _) in enumerate(_workload(messages, routine)):
                    await h.say(
                        text,
                        channel="C0GENERAL",
                        channel_name="#general",
                        event_id=f"e{n}",
                        message_id=f"m{n}",
                    )
            finally:
                await h.close()
            now = datetime.now(UTC)
            rows = await storage.spend.usage(now - timedelta(hours=1), now + timedelta(hours=1))
        await storage.close()
    cost = sum(r.cost_usd for r in rows)
    calls: Counter[str] = Counter()
    for r in rows:
        calls[r.model] += r.calls
    unknown = sum(r.unknown_cost_calls for r in rows)
    return Result(cost, dict(calls), unknown)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100)
    parser.add_argument("--routine", type=float, default=0.6, help="share of routine messages")
    args = parser.parse_args()
    baseline = asyncio.run(_run(False, args.messages, args.routine))
    chosen = asyncio.run(_run(True, args.messages, args.routine))
    print(f"sample team, {args.messages} messages, {args.routine:.0%} routine, half routed")
    for name, result in (("without auto (baseline)", baseline), ("with model: auto", chosen)):
        calls = ", ".join(f"{m} {n}" for m, n in sorted(result.calls.items()))
        print(f"  {name:24} ${result.cost:.6f}   calls: {calls}; unpriced: {result.unknown}")
    print(f"  auto saves {1 - chosen.cost / baseline.cost:.0%} of the baseline's cost here")


if __name__ == "__main__":
    main()
