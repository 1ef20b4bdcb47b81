"""bot/intake.py: workers give acknowledgements the way, for a bounded time."""

from __future__ import annotations

import asyncio
import time

import pytest

import corral.bot.intake as intake_module
from corral.bot.intake import Intake


async def test_workers_go_at_once_when_nothing_is_being_taken_in() -> None:
    intake = Intake()
    async with asyncio.timeout(0.05):
        await intake.yield_to_acks()


async def test_workers_wait_until_the_last_message_is_stored() -> None:
    intake = Intake()
    order: list[str] = []

    async def worker() -> None:
        await intake.yield_to_acks()
        order.append("worker")

    with intake.taking():
        with intake.taking():
            waiting = asyncio.create_task(worker())
            await asyncio.sleep(0.02)
            order.append("first stored")
        await asyncio.sleep(0.02)
        order.append("second stored")
    await asyncio.wait_for(waiting, 1)
    assert order == ["first stored", "second stored", "worker"]


async def test_a_steady_stream_of_arrivals_holds_workers_back_only_so_long(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(intake_module, "YIELD_AT_MOST_S", 0.1)
    intake = Intake()
    with intake.taking():
        started = time.monotonic()
        await asyncio.wait_for(intake.yield_to_acks(), 1)
        assert 0.09 <= time.monotonic() - started < 0.5


async def test_a_failed_store_still_counts_out() -> None:
    intake = Intake()
    with pytest.raises(RuntimeError), intake.taking():
        raise RuntimeError("database away")
    async with asyncio.timeout(0.05):
        await intake.yield_to_acks()
