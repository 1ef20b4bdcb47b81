"""No channel, person or agent stalls the others: one person's hundred mentions in one
channel, whose answers go out at Slack's pace of about one a second, must not hold the
workers that would answer another person in another channel."""

from __future__ import annotations

import time

from fakes import slack_events as se
from fakes.model_server import FakeModelServer
from fakes.slack_server import FakeSlackServer
from test_slack_e2e import DEV, GENERAL, fake_slack, slack_rig

from corral.storage.store import Storage

__all__ = ["fake_slack"]  # the fixture, shared with the Slack suite

BOB = "U0HUMAN002"


async def test_a_flood_in_one_channel_does_not_delay_another_channel(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> None:
    fake_slack.add_user(BOB, "bob", "Bob Builder")
    # A hundred mentions a minute from one person: above the default flood limits, which
    # would hold most of them before the pace this test is about.
    flood = {"person": 200, "channel": 200}
    async with slack_rig(
        storage, model_server, fake_slack, post_interval=1.0, messages_per_minute=flood
    ) as rig:
        for n in range(100):
            await rig.mention(f"owl check build {n}", GENERAL)
        # The flood is being answered at the channel's pace: a few answers are out.
        await rig.until(lambda: len(rig.posts(GENERAL)) >= 2)
        stored = fake_slack.add_message(DEV, None, "owl is the deploy green?", user=BOB)
        asked = time.monotonic()
        event = se.app_mention("owl is the deploy green?", channel=DEV, user=BOB, ts=stored["ts"])
        assert (await rig.send(se.event_callback(event))).status == 200
        await rig.until(lambda: bool(rig.posts(DEV)))
        waited = time.monotonic() - asked
        (answer,) = rig.posts(DEV)
        assert answer["thread_ts"] == event["ts"] and "is the deploy green" in answer["text"]
        # Without sharing, every worker sleeps on #general's pace and Bob waits ~90 s.
        assert waited < 5.0, f"Bob waited {waited:.1f}s behind #general's flood"
        assert len(rig.posts(GENERAL)) < 100  # the flood was still going
