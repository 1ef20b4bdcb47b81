"""A signed Slack request is taken once: a replay of a slash command or a click (the same
signature, timestamp and body, which Slack's 5-minute rule would still accept) gets an
empty 200 and nothing runs.

A global bolt middleware, so it runs after bolt has verified the signature: a forged
request never reaches it. Events are left to the gateway, which deduplicates them on
their event id and message (Slack's own retries of an event carry new signatures).
Socket Mode requests carry no signature and come over Slack's own connection.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from corral.storage.dedupe import Requests

log = logging.getLogger("corral.slack")

SIGNATURE_HEADER = "x-slack-signature"
#: Request types deduplicated elsewhere (events) or that change nothing.
_PASSED = frozenset({"event_callback", "url_verification", "ssl_check"})

Middleware = Callable[
    [AsyncBoltRequest, BoltResponse, Callable[[], Awaitable[None]]],
    Awaitable[BoltResponse],
]


def signature_of(req: AsyncBoltRequest) -> str:
    """The request's ``X-Slack-Signature`` ('' when it has none)."""
    values: Any = req.headers.get(SIGNATURE_HEADER) or [""]
    return str(values[0])


def once_only(requests: Requests) -> Middleware:
    """The middleware that lets each signed command or click through once."""

    async def once(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[None]]
    ) -> BoltResponse:
        signature = signature_of(req)
        kind = str(req.body.get("type") or "")
        if signature and kind not in _PASSED and not await requests.first("slack:" + signature):
            log.warning("a replayed Slack request was ignored (%s)", kind or "command")
            return BoltResponse(status=200, body="")
        await next()
        return resp

    return once
