"""The edge of ``POST /slack/events``: a request is parsed and its shape checked before
bolt sees it, so that a malformed body is refused with a 400 and one log line (without
the request's text) instead of failing somewhere inside bolt or a listener with a 500
and a traceback, and so that nothing half-parsed is ever stored."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

log = logging.getLogger("corral.slack")

#: The interactivity payloads whose listeners read a user and a channel.
_NEEDS_USER = frozenset({"block_actions", "view_submission", "message_action", "shortcut"})


async def bolt_request(request: web.Request) -> AsyncBoltRequest | web.Response:
    """``request`` as bolt's request, or the 400 that refuses it."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return refuse("the body is not UTF-8")
    try:
        parsed = AsyncBoltRequest(
            body=text, query=request.query_string, headers=dict(request.headers)
        )
    except Exception:  # bolt's parsing raises whatever the body makes it raise
        return refuse("the body is not JSON or form data that Slack sends")
    problem = shape_problem(parsed.body)
    if problem is not None:
        return refuse(problem)
    return parsed


def refuse(reason: str) -> web.Response:
    """A 400 for a malformed request, logged once, without the request's text."""
    log.warning("refused a malformed Slack request: %s", reason)
    return web.Response(status=400, text="malformed request")


def shape_problem(body: object) -> str | None:
    """What is wrong with the shape of a parsed Slack request; None when nothing is.
    Only what bolt and Corral's listeners rely on is checked: the rest may be anything."""
    if not isinstance(body, Mapping):
        return "the body is not an object"
    if not all(isinstance(key, str) for key in body):
        return "the body has keys that are not text"
    if "command" in body:
        return _command_problem(body)
    kind = body.get("type")
    if not isinstance(kind, str | None):
        return "its type is not text"
    if kind == "event_callback":
        return _event_problem(body)
    if kind in _NEEDS_USER:
        return _interaction_problem(body)
    return None


def _command_problem(body: Mapping[str, Any]) -> str | None:
    for field in ("command", "user_id", "channel_id"):
        if not _text(body.get(field)):
            return f"a slash command without {field}"
    return None


def _event_problem(body: Mapping[str, Any]) -> str | None:
    event = body.get("event")
    if not isinstance(event, Mapping):
        return "an event callback without an event"
    if not isinstance(event.get("type"), str):
        return "an event without a type"
    if not isinstance(body.get("authorizations", []), list):
        return "an event whose authorizations are not a list"
    return None


def _interaction_problem(body: Mapping[str, Any]) -> str | None:
    user = body.get("user")
    if not isinstance(user, Mapping) or not _text(user.get("id")):
        return "an interaction without a user"
    clicked = body.get("type") == "block_actions"
    actions = body.get("actions", [])
    if not isinstance(actions, list) or not all(
        isinstance(a, Mapping) and isinstance(a.get("action_id"), str) for a in actions
    ):
        return "an interaction whose actions are not objects with an action_id"
    if clicked and not actions:
        # Bolt reads a click's first action.
        return "a click on no action"
    if clicked:
        channel = body.get("channel")
        container = body.get("container")
        in_channel = isinstance(channel, Mapping) and _text(channel.get("id"))
        in_container = isinstance(container, Mapping) and _text(container.get("channel_id"))
        if not (in_channel or in_container):
            return "a click without a channel"
    for field in ("message", "container", "channel", "team"):
        if body.get(field) is not None and not isinstance(body.get(field), Mapping):
            return f"an interaction whose {field} is not an object"
    return None


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())
