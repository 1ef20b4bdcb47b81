"""Flood limits (``limits.messages_per_minute``): a person or a channel over its limit has
every message answered later, in order, never dropped, and is told once per burst by the
app; under the limit nothing changes. Kept in this process and in Redis, on a clock the
test steps (a wait moves it on; nobody waits a real minute). An oversized message reaches
the models cut."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from backends import Clock, redis_clients
from fakes.model_server import CallTool, FakeModelServer
from harness import TEAM, Harness, make_team

from corral.agents.prompt import HISTORY_TOKENS
from corral.bot.flood import FloodGate
from corral.bot.gateway import Workers
from corral.bot.inbound import Inbound
from corral.bot.limits import LimitStores, in_process_stores
from corral.storage.cooldowns import InProcessCooldowns
from corral.storage.keys import ThreadKey
from corral.storage.limiter import RedisLimiter
from corral.storage.run_slots import InProcessRunSlots
from corral.storage.store import Storage


class Flooded:
    """The test team wired end to end with flood limits on a stepped clock."""

    def __init__(self, harness: Harness, clock: Clock) -> None:
        self.harness = harness
        self.clock = clock
        #: How long the flood gate waited, each time.
        self.waits: list[float] = []
        self._n = 0

    async def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.clock.advance(seconds)
        await asyncio.sleep(0)

    async def submit(self, texts: list[str], *, user: str = "U1", thread: str = "") -> list[str]:
        """Submit every message at once (a burst); their inbox ids."""
        ids = []
        for text in texts:
            self._n += 1
            message_id = f"f{self._n}"
            inbox_id = await self.harness.gateway.submit(
                Inbound(
                    platform="test",
                    event_id=f"fe{self._n}",
                    channel="C0GEN",
                    channel_name="#general",
                    message_id=message_id,
                    thread=thread or message_id,
                    user=user,
                    text=text,
                    to_app=True,
                )
            )
            assert inbox_id is not None
            ids.append(inbox_id)
        return ids

    async def wait(self, ids: list[str]) -> None:
        async with asyncio.timeout(20):
            for inbox_id in ids:
                await self.harness.workers.wait(inbox_id)

    async def send(self, texts: list[str], *, user: str = "U1", thread: str = "") -> None:
        """Submit every message at once (a burst), then wait until each is handled."""
        await self.wait(await self.submit(texts, user=user, thread=thread))

    def answered(self) -> list[int]:
        """The build numbers of the answers, in the order they were posted."""
        return [
            int(n)
            for text in self.harness.adapter.texts("answer")
            for n in re.findall(r"build (\d+)</message>$", text)
        ]


@pytest.fixture(params=["in-process", "redis"])
async def limit_stores(request: pytest.FixtureRequest) -> AsyncIterator[tuple[LimitStores, Clock]]:
    clock = Clock()
    if request.param == "in-process":
        yield in_process_stores(clock), clock
        return
    async with redis_clients() as (client, prefix):
        limiter = RedisLimiter(client(), prefix, clock)
        yield (
            LimitStores(
                limiter, InProcessCooldowns(clock), InProcessRunSlots(clock), lambda: False
            ),
            clock,
        )


def _team(person: int | None, channel: int | None) -> Any:
    limits = {**TEAM["limits"], "messages_per_minute": {"person": person, "channel": channel}}
    return make_team(limits=limits)


Flood = Callable[..., Awaitable[Flooded]]


@pytest.fixture
async def flood(
    storage: Storage, model_server: FakeModelServer, limit_stores: tuple[LimitStores, Clock]
) -> AsyncIterator[Flood]:
    """Makes the team with flood limits ``person`` and ``channel`` (a minute each), started."""
    built: list[Harness] = []

    async def make(person: int | None = 3, channel: int | None = 60) -> Flooded:
        team = _team(person, channel)
        stores, clock = limit_stores
        harness = Harness.build(storage, model_server, team=team, stores=stores)
        flooded = Flooded(harness, clock)
        gate = FloodGate(
            stores.limiter, team.limits.messages_per_minute, clock=clock, sleep=flooded.sleep
        )
        harness.workers = Workers(
            storage,
            harness.workers.queue,
            harness.coordinator,
            harness.runtime,
            {"test": harness.adapter},
            2,
            flood=gate,
        )
        harness.workers.start()
        built.append(harness)
        return flooded

    yield make
    for harness in built:
        await harness.close()


async def test_a_person_over_the_limit_is_answered_later_in_order_and_told_once(
    flood: Flood,
) -> None:
    flooded = await flood()
    await flooded.send([f"@owl check build {n}" for n in range(8)], thread="f1")
    # Three a minute: three at once, three a minute later, the last two a minute after.
    assert flooded.answered() == list(range(8))
    assert len(flooded.waits) == 2 and all(55 <= w <= 60 for w in flooded.waits)
    ((about, text),) = flooded.harness.adapter.notices
    assert about.user == "U1" and about.message_id == "f4"
    assert "answered in a moment, in order" in text and "3 a minute from one person" in text
    # The app said it, not an agent: nothing of it was posted under a persona.
    assert not any("in a moment" in t for t in flooded.harness.adapter.texts())


async def test_a_burst_across_threads_is_answered_and_told_once(flood: Flood) -> None:
    flooded = await flood()
    await flooded.send([f"@owl check build {n}" for n in range(6)])
    assert sorted(flooded.answered()) == list(range(6))
    assert len(flooded.waits) == 1
    assert len(flooded.harness.adapter.notices) == 1


async def test_under_the_limit_nothing_changes(flood: Flood) -> None:
    flooded = await flood()
    await flooded.send([f"@owl check build {n}" for n in range(3)], thread="f1")
    assert flooded.answered() == [0, 1, 2]
    assert flooded.waits == [] and flooded.harness.adapter.notices == []


async def test_a_new_burst_after_a_quiet_minute_is_told_again(flood: Flood) -> None:
    flooded = await flood()
    await flooded.send([f"@owl check build {n}" for n in range(4)], thread="f1")
    flooded.clock.advance(120)
    await flooded.send([f"@owl check build {n}" for n in range(4, 8)], thread="f1")
    assert flooded.answered() == list(range(8))
    assert len(flooded.harness.adapter.notices) == 2


async def test_a_channel_over_its_limit_holds_everyone_in_it(flood: Flood) -> None:
    flooded = await flood(None, 2)
    await flooded.send(["@owl check build 0", "@owl check build 1"], user="U1", thread="f1")
    await flooded.send(["@owl check build 2"], user="U2")
    assert flooded.answered() == [0, 1, 2]
    ((about, text),) = flooded.harness.adapter.notices
    assert about.user == "U2" and "2 a minute from one channel" in text
    assert len(flooded.waits) == 1


async def test_no_limit_when_both_are_null(flood: Flood) -> None:
    flooded = await flood(None, None)
    await flooded.send([f"@owl check build {n}" for n in range(30)], thread="f1")
    assert flooded.answered() == list(range(30))
    assert flooded.waits == [] and flooded.harness.adapter.notices == []


async def test_a_held_person_does_not_hold_the_workers(flood: Flood) -> None:
    flooded = await flood(1, None)
    gate = flooded.harness.workers.flood
    assert gate is not None
    release = asyncio.Event()

    async def held(seconds: float) -> None:
        await release.wait()
        await flooded.sleep(seconds)

    gate.sleep = held
    # One passes, two wait for U1's window: more than the harness's two workers' worth.
    waiting = await flooded.submit([f"@owl check build {n}" for n in range(4)])
    await flooded.send(["@owl check build 9"], user="U2")
    assert 9 in flooded.answered() and len(flooded.answered()) == 2
    release.set()
    await flooded.wait(waiting)
    assert sorted(flooded.answered()) == [0, 1, 2, 3, 9]


async def test_an_approval_decision_does_not_count(flood: Flood) -> None:
    flooded = await flood(1, None)
    harness = flooded.harness
    harness.server.script(
        "smart-a", CallTool("post_message", {"channel": "#releases", "text": "v2 is out"})
    )
    await flooded.send(["@beaver announce v2 in #releases"])
    (approval,) = await harness.storage.approvals.pending()
    await harness.decide(approval.id)
    assert "v2 is out" in harness.adapter.texts()
    assert flooded.waits == [] and harness.adapter.notices == []


async def test_an_oversized_message_reaches_every_model_call_cut_with_a_note(
    harness: Harness,
) -> None:
    pasted = "what went wrong here? " + "ERROR disk full\n" * 20_000  # about 320,000 chars
    await harness.say(pasted, channel="C0OTHER", channel_name="#random")
    route, answer = harness.server.requests_for("fast-a")
    assert "choose_agent" in json.dumps(route.json["tools"])
    for request in (route, answer):
        text = "".join(b["text"] for m in request.json["messages"] for b in m["content"])
        assert len(text) < HISTORY_TOKENS * 4 + 200
        assert "what went wrong here?" in text
        assert "more characters not shown]" in text
    # Stored whole: only what a model reads is cut.
    history = await harness.storage.transcript.history(ThreadKey("test", "C0OTHER", "m0"))
    assert [e.text for e in history if e.user] == [pasted]
