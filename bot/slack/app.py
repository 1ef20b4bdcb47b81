"""Wiring Slack: the Web API client, the bolt app and its listeners, HTTP or Socket Mode."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from corral.bot.app import ChatServices
from corral.bot.gateway import Workers
from corral.bot.slack.adapter import SlackAdapter
from corral.bot.slack.directory import Directory
from corral.bot.slack.listeners import register
from corral.bot.slack.requests import bolt_request


@dataclass
class SlackParts:
    """What Slack adds to a running Corral."""

    client: AsyncWebClient
    adapter: SlackAdapter
    directory: Directory
    app: AsyncApp | None = None

    async def handle_http(self, request: web.Request) -> web.StreamResponse:
        """``POST /slack/events``: bolt verifies, acks and dispatches."""
        assert self.app is not None, "attach() the app before serving requests"
        parsed = await bolt_request(request)
        if isinstance(parsed, web.Response):
            return parsed
        return await to_aiohttp_response(await self.app.async_dispatch(parsed))

    async def close(self) -> None:
        """Close the Web API client's connections."""
        self.adapter.close()
        if self.client.session is not None:
            await self.client.session.close()

    def attach(
        self, services: ChatServices, workers: Workers, signing_secret: str | None
    ) -> AsyncApp:
        """Build the bolt app around ``workers`` (which post through :attr:`adapter`)."""
        _quiet_token_skipped()
        self.app = AsyncApp(
            client=self.client,
            signing_secret=signing_secret,
            # Socket Mode needs no signing secret; HTTP mode is refused without one.
            request_verification_enabled=bool(signing_secret),
            # Ack only once the listener has stored the message: a crash between an ack
            # and the insert would lose it, and Slack does not resend what was acked.
            process_before_response=True,
        )
        register(self.app, services, workers, self.adapter)
        return self.app


def _quiet_token_skipped() -> None:
    """Drop bolt's warning that ``token`` goes unused because ``client`` was given: bolt
    reads SLACK_BOT_TOKEN from the environment by itself, and the client carries that
    very token, so the warning came on every start and meant nothing."""
    from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped

    logger = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _TokenSkipped) for f in logger.filters):
        logger.addFilter(_TokenSkipped(warning_client_prioritized_and_token_skipped()))


class _TokenSkipped(logging.Filter):
    def __init__(self, message: str) -> None:
        super().__init__()
        self.message = message

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != self.message


def slack_parts(
    services: ChatServices, token: str, api_url: str, post_interval: float = 1.0
) -> SlackParts:
    """The Web API client (429s retried after Retry-After) and the adapter. Call from
    the running event loop; :meth:`SlackParts.close` when done."""
    client = AsyncWebClient(
        token=token,
        base_url=api_url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=3)],
        # One connection pool for every call, instead of a new session per call.
        session=aiohttp.ClientSession(),
    )
    directory = Directory(client)
    services.directory.register("slack", aliases=directory.aliases, membership=directory.in_group)
    adapter = SlackAdapter(
        client, services.team, directory, post_interval, requests=services.approvals
    )
    return SlackParts(client, adapter, directory)
