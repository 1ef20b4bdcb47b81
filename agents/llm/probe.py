"""``corral check`` for the model providers: does each model the team uses answer?

Each configured provider is asked, through its real SDK client, for a one-token
completion of every model the team names, with a short timeout and no retry. A
provider that cannot be reached, a key it refuses and a model it does not have are
errors, each naming the provider, the model and the URL (its secrets masked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.registry import ProviderSettings
from corral.agents.llm.types import ChatMessage, ModelError, Provider, Request
from corral.agents.team import Team
from corral.agents.team_loader import Problem
from corral.storage.urls import shown_url

#: The longest a provider may take to answer before it counts as unreachable.
PROBE_TIMEOUT_S = 10.0

_DEFAULT_URLS = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
_KEYS = {"anthropic": "ANTHROPIC_API_KEY", "openai": "OPENAI_API_KEY"}
_BASE_URLS = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}
_CHANGE_MODEL = "change the model in team.yaml's models: (or the agent's model:)"

_PING = Request(system="", messages=(ChatMessage.user("ping"),), max_tokens=1)


def models_in_use(team: Team) -> list[tuple[str, str]]:
    """Every ``(provider, model)`` of the team's tiers and of its agents' literal
    ``provider/model``, once each, in the order they are named."""
    specs = [spec for chain in team.models.values() for spec in chain]
    specs += [a.model for a in team.agents.values() if a.model not in team.models]
    found: dict[tuple[str, str], None] = {}
    for spec in specs:
        provider, _, model = spec.partition("/")
        if provider in _KEYS and model:
            found[(provider, model)] = None
    return list(found)


def configured(provider: str, settings: ProviderSettings) -> bool:
    """Whether ``provider`` has what it needs to be asked at all."""
    if provider == "anthropic":
        return bool(settings.anthropic_api_key)
    return bool(settings.openai_api_key or settings.openai_base_url)


async def probe_models(
    models: Iterable[tuple[str, str]],
    settings: ProviderSettings,
    seconds: float = PROBE_TIMEOUT_S,
) -> list[Problem]:
    """Ask each configured provider for one token of each of ``models``, all at once;
    a problem for each that does not answer. Unconfigured providers are skipped."""
    wanted = [(p, m) for p, m in models if configured(p, settings)]
    if not wanted:
        return []
    providers = {p: _provider(p, settings, seconds) for p in dict.fromkeys(p for p, _ in wanted)}
    try:
        found = await asyncio.gather(
            *(_probe(providers[p], p, m, _url(p, settings), seconds) for p, m in wanted)
        )
    finally:
        for provider in providers.values():
            await provider.aclose()
    return [p for p in found if p is not None]


def _provider(
    name: str, settings: ProviderSettings, timeout: float
) -> AnthropicProvider | OpenAIProvider:
    if name == "anthropic":
        return AnthropicProvider(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            timeout=timeout,
        )
    return OpenAIProvider(
        api_key=settings.openai_api_key, base_url=settings.openai_base_url, timeout=timeout
    )


def _url(provider: str, settings: ProviderSettings) -> str:
    given = settings.anthropic_base_url if provider == "anthropic" else settings.openai_base_url
    return given or _DEFAULT_URLS[provider]


async def _probe(
    provider: Provider, name: str, model: str, url: str, seconds: float
) -> Problem | None:
    where = f"{name}/{model} at {shown_url(url)}"
    try:
        # The SDK's own timeout covers each phase; this one covers the whole call.
        async with asyncio.timeout(seconds + 1):
            await provider.complete(model, _PING)
    except ModelError as exc:
        return _problem(name, where, exc)
    except TimeoutError:
        return Problem(
            ".env",
            None,
            f"{where} did not answer within {seconds:g} s",
            f"start the server, or check {_BASE_URLS[name]}",
        )
    except Exception as exc:  # whatever else the SDK raises: said, not a traceback
        said = " ".join(str(exc).split()) or type(exc).__name__
        return Problem(".env", None, f"cannot ask {where}: {said}", f"check {_BASE_URLS[name]}")
    return None


def _problem(name: str, where: str, exc: ModelError) -> Problem | None:
    said = " ".join(exc.message.split()).rstrip(".")
    key, base = _KEYS[name], _BASE_URLS[name]
    match exc.status:
        case None:
            message, fix = f"cannot reach {where}: {said}", f"start the server, or check {base}"
        case 401 | 403:
            message = f"{where} refused the key ({exc.status}: {said})"
            fix = f"set {key} to a valid key in .env or the environment"
        case 404:
            message = f"{where}: the server has no such model ({said})"
            fix = _CHANGE_MODEL
        case 429:
            return Problem(
                ".env",
                None,
                f"{where} is rate-limited now (429: {said})",
                "nothing, if it passes; else check the account's limits",
                "warning",
            )
        case status:
            message = f"{where} answered {status}: {said}"
            fix = f"check {key}, {base} and the model in team.yaml's models:"
    return Problem(".env", None, message, fix)
