"""Checks of the environment a team runs in: model providers, database URL, Slack tokens.

They complement :func:`agents.team_loader.load_team` for ``corral check`` and start-up.
Each finding is a :class:`~agents.team_loader.Problem` about ``.env`` (the variables may
also come from the process environment); the caller decides which ones stop a start.
"""

from __future__ import annotations

from collections.abc import Mapping

from corral.agents.team import Team
from corral.agents.team_loader import Problem, Severity

#: The variables that make a provider usable; the official SDKs read them themselves.
PROVIDER_ENV: Mapping[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY",),
    # A base URL alone is enough for OpenAI-compatible servers that take no key.
    "openai": ("OPENAI_API_KEY", "OPENAI_BASE_URL"),
}

_ENV_FILE = ".env"
_SLACK = ("SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "SLACK_SIGNING_SECRET")


def check_environment(team: Team, env: Mapping[str, str]) -> list[Problem]:
    """What in ``env`` keeps ``team`` from working fully, one Problem per finding.

    A missing model provider is a warning (agents still answer, saying that no model is
    configured); a tier none of whose providers is configured is a warning too, for the
    same reason; everything else is an error.
    """
    problems = _check_providers(team, env)
    problems += _check_database(env)
    problems += _check_slack(env)
    return problems


def _is_set(env: Mapping[str, str], name: str) -> bool:
    # A variable left empty (`KEY=` in .env) is one the user has switched off.
    return bool(env.get(name, "").strip())


def _problem(message: str, fix: str, severity: Severity = "error") -> Problem:
    return Problem(_ENV_FILE, None, message, fix, severity)


def _check_providers(team: Team, env: Mapping[str, str]) -> list[Problem]:
    configured = {p for p, names in PROVIDER_ENV.items() if any(_is_set(env, n) for n in names)}
    if not configured:
        return [
            _problem(
                "no model provider is configured, so agents will answer that no model is "
                "configured",
                "set ANTHROPIC_API_KEY or OPENAI_API_KEY (or OPENAI_BASE_URL for an "
                "OpenAI-compatible server) in .env",
                "warning",
            )
        ]
    # A tier, or a provider/model named directly by an agent, is a chain to check.
    chains = dict(team.models)
    for agent in team.agents.values():
        if agent.model not in chains and "/" in agent.model:
            chains[agent.model] = [agent.model]
    problems = []
    for name, chain in chains.items():
        providers = {spec.partition("/")[0] for spec in chain}
        if providers & configured:
            continue
        users = [h for h, a in team.agents.items() if a.model == name]
        used_by = f" (used by {', '.join(users)})" if users else ""
        needed = sorted(PROVIDER_ENV[p][0] for p in providers if p in PROVIDER_ENV)
        other = f"a model of a configured provider ({', '.join(sorted(configured))})"
        instead = f"add {other} to the tier" if name in team.models else f"use {other}"
        problems.append(
            _problem(
                f"no provider of `{name}`{used_by} is configured, so its agents will answer "
                "that no model is configured",
                f"set {' or '.join(needed)}, or {instead}",
                "warning",
            )
        )
    return problems


def _check_database(env: Mapping[str, str]) -> list[Problem]:
    if not _is_set(env, "DATABASE_URL"):
        return []
    # SQLAlchemy is imported only when there is a URL to check: it is not cheap to load.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        make_url(env["DATABASE_URL"].strip())
    except (ArgumentError, ValueError):
        return [
            _problem(
                "DATABASE_URL is not a database URL",
                "use e.g. sqlite+aiosqlite:///corral.db or "
                "postgresql+asyncpg://user:password@host:5432/corral, or remove it for the "
                "default SQLite file",
            )
        ]
    return []


def _check_slack(env: Mapping[str, str]) -> list[Problem]:
    problems = []
    bot, app, secret = (_is_set(env, n) for n in _SLACK)
    if bot and not (app or secret):
        problems.append(
            _problem(
                "SLACK_BOT_TOKEN is set, but neither SLACK_APP_TOKEN nor SLACK_SIGNING_SECRET "
                "is, so Slack events cannot be received",
                "set SLACK_APP_TOKEN (xapp-…) for Socket Mode, or SLACK_SIGNING_SECRET for "
                "events over HTTP (both are on the Slack app's Basic Information page)",
            )
        )
    if not bot and (app or secret):
        problems.append(
            _problem(
                "Slack credentials are set but SLACK_BOT_TOKEN is not, so Slack stays off",
                "set SLACK_BOT_TOKEN (xoxb-…, from OAuth & Permissions), or remove the others",
                "warning",
            )
        )
    for name, prefix, page in (
        ("SLACK_BOT_TOKEN", "xoxb-", "OAuth & Permissions: the Bot User OAuth Token"),
        ("SLACK_APP_TOKEN", "xapp-", "Basic Information: an app-level token"),
    ):
        if _is_set(env, name) and not env[name].strip().startswith(prefix):
            problems.append(
                _problem(
                    f"{name} does not start with {prefix}",
                    f"copy it from the Slack app's {page}, which starts with {prefix}",
                )
            )
    return problems
