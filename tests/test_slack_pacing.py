"""Posting pace per Slack channel: short bursts, then about one message per interval."""

from __future__ import annotations

from typing import cast

import pytest
from harness import make_team
from slack_sdk.web.async_client import AsyncWebClient

from corral.bot.decisions import RequestMessages
from corral.bot.slack.adapter import SlackAdapter
from corral.bot.slack.directory import Directory


def adapter(interval: float, burst: int) -> SlackAdapter:
    # Pacing is bookkeeping only: no client call is made.
    client = cast(AsyncWebClient, None)
    requests = cast(RequestMessages, None)
    return SlackAdapter(client, make_team(), Directory(client), interval, burst, requests=requests)


def test_a_burst_goes_at_once_then_one_per_interval() -> None:
    slack = adapter(interval=10.0, burst=3)
    waits = [slack._pace("C0A") for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    assert waits[3:] == pytest.approx([10.0, 20.0, 30.0], abs=0.5)
    # Each channel has its own pace.
    assert slack._pace("C0B") == 0.0


def test_no_pacing() -> None:
    slack = adapter(interval=0.0, burst=1)
    assert [slack._pace("C0A") for _ in range(3)] == [0.0, 0.0, 0.0]
