"""Bad input on ``POST /slack/events``, through Corral's HTTP server and slack-bolt's real
request handling, signed as Slack signs: what once crashed or misbehaved, then fuzzed
events, slash commands and button clicks. Never a 500, never a traceback in a response or
a post, ``/healthz`` stays 200, and a valid message is still stored and answered."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from fakes import slack_events as se
from fakes.model_server import FakeModelServer
from fakes.slack_server import FakeSlackServer
from fuzz_strategies import json_values, mangled, outside_text
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from test_slack_e2e import GENERAL, SlackRig, fake_slack, slack_rig

from corral.storage.store import Storage
from corral.storage.tables import InboxRow

__all__ = ["fake_slack"]  # the fixture, used by name

#: What would show that an exception reached a person.
TRACEBACK_SIGNS = ("Traceback", 'File "', "Error:", "Exception")
#: What would show that a slash command or a click failed inside.
FAILED_INSIDE = "internal error"


@pytest.fixture
async def rig(
    storage: Storage, model_server: FakeModelServer, fake_slack: FakeSlackServer
) -> AsyncIterator[SlackRig]:
    async with slack_rig(storage, model_server, fake_slack) as rig:
        yield rig


async def stored(rig: SlackRig) -> int:
    return sum((await rig.storage.inbox.count_by_status()).values())


async def healthy(rig: SlackRig) -> None:
    async with rig.http.get(f"{rig.base}/healthz") as response:
        assert response.status == 200


def no_traceback_posted(rig: SlackRig) -> None:
    for call in rig.slack.calls:
        text = str(call.params.get("text") or "")
        assert not any(sign in text for sign in TRACEBACK_SIGNS), text


def every_answer_in_its_thread(rig: SlackRig) -> None:
    # Corral starts no thread of its own in these tests: every post answers a message.
    assert all(p.get("thread_ts") for p in rig.posts()), rig.posts()


# --- what was known to break -------------------------------------------------------------


async def test_a_message_with_a_nul_byte_is_stored_and_answered(rig: SlackRig) -> None:
    event = await rig.mention("the build \x00 is red")
    await rig.settled()
    (post,) = rig.posts(GENERAL)
    assert post["thread_ts"] == event["ts"] and "the build  is red" in post["text"]


async def test_a_user_id_over_200_characters_is_stored_and_answered(rig: SlackRig) -> None:
    event = se.app_mention("who is on call", channel=GENERAL, user="U" + "9" * 250)
    response = await rig.send(se.event_callback(event, event_id="Ev" + "1" * 250))
    assert response.status == 200
    await rig.settled()
    (post,) = rig.posts(GENERAL)
    assert post["thread_ts"] == event["ts"], post
    # The fake model echoes the first 200 characters of the prompt: the sender's id.
    assert post["text"].startswith('[fast-a] <message from="person" name="U999'), post["text"]


def _form(fields: dict[str, str]) -> se.SignedRequest:
    # surrogatepass: a lone surrogate goes as the bytes a broken client would send.
    body = urlencode(fields, encoding="utf-8", errors="surrogatepass").encode()
    return _raw(body, content_type="application/x-www-form-urlencoded")


def _raw(body: bytes, content_type: str = "application/json") -> se.SignedRequest:
    return se.SignedRequest(body, se.sign(body, content_type=content_type))


MALFORMED = {
    "bad JSON": _raw(b'{"type": "event_callback", "secret-words'),
    "not UTF-8": _raw(b'{"type": "event_callback", "event": "secret-words \xff"}'),
    "a JSON list": _raw(b'["secret-words"]'),
    "an event that is text": _raw(b'{"type": "event_callback", "event": "secret-words"}'),
    "a bad payload=": _raw(
        b"payload=%7Bsecret-words", content_type="application/x-www-form-urlencoded"
    ),
    "a command without a user": _form(
        {"command": "/corral", "text": "secret-words", "channel_id": GENERAL}
    ),
    "a command without a channel": _form(
        {"command": "/corral", "text": "secret-words", "user_id": se.USER_ID}
    ),
    "a click without a user": _form(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "channel": {"id": GENERAL},
                    "actions": [{"action_id": "corral_approve", "value": "secret-words"}],
                }
            )
        }
    ),
    "a click on an action without an id": _form(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": se.USER_ID},
                    "channel": {"id": GENERAL},
                    "actions": [{"value": "secret-words"}],
                }
            )
        }
    ),
    "a click on no action": _form(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": se.USER_ID, "name": "secret-words"},
                    "channel": {"id": GENERAL},
                    "actions": [],
                }
            )
        }
    ),
    "a click without a channel": _form(
        {
            "payload": json.dumps(
                {
                    "type": "block_actions",
                    "user": {"id": se.USER_ID},
                    "actions": [{"action_id": "corral_approve", "value": "secret-words"}],
                }
            )
        }
    ),
}


async def test_a_malformed_signed_request_is_refused_with_one_quiet_log_line(
    rig: SlackRig, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    for name, request in MALFORMED.items():
        caplog.clear()
        response = await rig.send(request)
        assert response.status == 400, name
        assert "secret-words" not in await response.text()
        refusals = [r for r in caplog.records if "malformed Slack request" in r.getMessage()]
        assert len(refusals) == 1, name
        assert not any(r.exc_info for r in caplog.records), name
        assert not any("secret-words" in r.getMessage() for r in caplog.records), name
    assert await stored(rig) == 0
    await healthy(rig)


async def test_an_event_whose_ts_is_not_a_slack_ts_is_never_answered_at_the_top(
    rig: SlackRig,
) -> None:
    for ts in ("abc", "1700000000", "1.2.3", "NaN", "1e9", "-1.5"):
        event = se.app_mention("hello", channel=GENERAL, ts=ts)
        assert (await rig.send(se.event_callback(event))).status == 200
        reply = se.app_mention("and in a thread", channel=GENERAL, thread_ts=ts)
        assert (await rig.send(se.event_callback(reply))).status == 200
    await rig.settled()
    assert rig.posts() == [] and await stored(rig) == 0


# --- fuzzed ------------------------------------------------------------------------------


@pytest.fixture
async def fuzz_rig(rig: SlackRig) -> AsyncIterator[SlackRig]:
    """The rig with one valid message stored and answered before the fuzzing; after it,
    that message is still there, a new one is answered too, and nothing crashed."""
    first = await rig.mention("before the storm")
    await rig.settled()
    yield rig
    await rig.settled()
    await healthy(rig)
    after = await rig.mention("after the storm")
    await rig.settled()
    answered = {p["thread_ts"] for p in rig.posts(GENERAL)}
    assert {first["ts"], after["ts"]} <= answered
    async with rig.storage.db.reading() as connection:
        texts = (
            await connection.execute(
                select(InboxRow.text).where(InboxRow.message_id == first["ts"])
            )
        ).scalars()
        assert list(texts) == ["before the storm"]
    every_answer_in_its_thread(rig)
    no_traceback_posted(rig)


async def _survives(rig: SlackRig, request: se.SignedRequest) -> None:
    response = await rig.send(request)
    body = await response.text()
    # 404 is bolt's answer to an event no listener takes (a type Corral does not handle).
    assert response.status in (200, 400, 404), (response.status, body)
    assert not any(sign in body for sign in TRACEBACK_SIGNS), body
    assert FAILED_INSIDE not in body, body


def _event(kind: str, text: str, ts: str) -> dict[str, Any]:
    if kind == "app_mention":
        return se.app_mention(text, channel=GENERAL, ts=ts)
    return se.message(text, channel=GENERAL, ts=ts)


@given(
    kind=st.sampled_from(["app_mention", "message"]),
    text=outside_text(),
    data=st.data(),
)
async def test_fuzz_events(fuzz_rig: SlackRig, kind: str, text: str, data: st.DataObject) -> None:
    event = data.draw(mangled(_event(kind, text, se.new_ts())))
    await _survives(fuzz_rig, se.event_callback(event))


@given(envelope=json_values(20))
async def test_fuzz_envelopes(fuzz_rig: SlackRig, envelope: Any) -> None:
    body = json.dumps(envelope).encode()
    await _survives(fuzz_rig, _raw(body))


@given(data=st.data(), text=outside_text())
async def test_fuzz_slash_commands(fuzz_rig: SlackRig, data: st.DataObject, text: str) -> None:
    command = data.draw(st.sampled_from(["/corral", "/memory"]))
    fields = dict(_form_fields(se.slash_command(command, channel_id=GENERAL)))
    fields["text"] = text
    fuzzed = data.draw(mangled(fields))
    form = {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in fuzzed.items()}
    await _survives(fuzz_rig, _form(form))


@given(data=st.data(), value=outside_text(60))
async def test_fuzz_button_clicks(fuzz_rig: SlackRig, data: st.DataObject, value: str) -> None:
    action = data.draw(st.sampled_from(["corral_approve", "corral_reject", "corral_resolve"]))
    request = se.block_actions(action, value, channel=GENERAL, message_ts=se.new_ts())
    payload = json.loads(dict(_form_fields(request))["payload"])
    payload = data.draw(mangled(payload))
    if data.draw(st.booleans()) and isinstance(payload.get("actions"), list):
        payload["actions"] = [
            data.draw(mangled(a)) if isinstance(a, dict) else a for a in payload["actions"]
        ]
    await _survives(fuzz_rig, _form({"payload": json.dumps(payload)}))


def _form_fields(request: se.SignedRequest) -> list[tuple[str, str]]:
    return parse_qsl(request.text, keep_blank_values=True)
