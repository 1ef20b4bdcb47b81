"""Corral's HTTP server: Slack's requests (events, slash commands, interactivity) on
``POST /slack/events``, ``GET /healthz`` for supervisors, ``GET /metrics`` for Prometheus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from corral.storage.store import Storage

SlackHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: Name → whether that platform connection is up (Slack Socket Mode, Discord ...).
HealthCheck = Callable[[], dict[str, bool]]


def build_http_app(
    storage: Storage,
    *,
    slack: SlackHandler | None = None,
    health: HealthCheck | None = None,
) -> web.Application:
    """The aiohttp application; ``slack`` handles ``POST /slack/events`` when Slack runs
    in HTTP mode."""
    app = web.Application()

    async def healthz(request: web.Request) -> web.Response:
        connections = health() if health else {}
        healthy = all(connections.values())
        return web.json_response(
            {"status": "ok" if healthy else "unhealthy", "connections": connections},
            status=200 if healthy else 503,
        )

    async def metrics(request: web.Request) -> web.Response:
        counts = await storage.inbox.count_by_status()
        lines = [
            "# HELP corral_inbox_messages Messages in the durable inbox by status.",
            "# TYPE corral_inbox_messages gauge",
            *(f'corral_inbox_messages{{status="{s}"}} {n}' for s, n in sorted(counts.items())),
        ]
        return web.Response(text="\n".join(lines) + "\n", content_type="text/plain")

    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    if slack is not None:
        app.router.add_post("/slack/events", slack)
    return app
