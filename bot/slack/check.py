"""``corral check`` for Slack: is the token valid, and does the app have every scope?"""

from __future__ import annotations

import logging

from corral.agents.team_loader import Problem
from corral.storage.urls import scrubbed, shown_url

#: The bot scopes Corral uses; deploy/slack/manifest.yaml grants exactly these.
REQUIRED_SCOPES = frozenset(
    {
        "app_mentions:read",
        "channels:history",
        "channels:read",
        "groups:history",
        "groups:read",
        "im:history",
        "im:read",
        "im:write",
        "mpim:history",
        "chat:write",
        "chat:write.customize",
        "commands",
        "reactions:read",
        "reactions:write",
        "users:read",
        "usergroups:read",
        "files:write",
    }
)


#: The Web API client's own log for the check: silent, since the check says what went
#: wrong in its own words (a failed call would otherwise add raw lines, and a retry).
_QUIET = logging.getLogger("corral.slack.check.sdk")
_QUIET.propagate = False
_QUIET.addHandler(logging.NullHandler())


def check_slack(token: str, api_url: str) -> list[Problem]:
    """Ask Slack (``auth.test``) whether ``token`` works and which scopes it carries."""
    from slack_sdk import WebClient
    from slack_sdk.errors import SlackApiError

    client = WebClient(token=token, base_url=api_url, timeout=10, logger=_QUIET, retry_handlers=[])
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "unknown error")
        return [
            Problem(
                ".env",
                None,
                f"Slack refused SLACK_BOT_TOKEN ({error})",
                "copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page",
            )
        ]
    except OSError as exc:
        return [
            Problem(
                ".env",
                None,
                f"could not reach Slack at {shown_url(api_url)} ({scrubbed(str(exc), api_url)})",
                "check the network, or SLACK_API_URL if you use a proxy",
                severity="warning",
            )
        ]
    header = response.headers.get("x-oauth-scopes") or response.headers.get("X-OAuth-Scopes")
    granted = {s.strip() for s in str(header or "").split(",") if s.strip()}
    missing = sorted(REQUIRED_SCOPES - granted)
    if not missing:
        return []
    return [
        Problem(
            ".env",
            None,
            f"the Slack app lacks the scopes {', '.join(missing)}",
            "add them under OAuth & Permissions (deploy/slack/manifest.yaml lists every "
            "scope) and reinstall the app to the workspace",
        )
    ]
