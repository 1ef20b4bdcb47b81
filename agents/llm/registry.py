"""Model specs (a tier of ``team.yaml`` or a literal ``provider/model``) to model clients."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.chain import FallbackChain
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.retry import RetryPolicy, Sleep
from corral.agents.llm.types import (
    Attempt,
    Completion,
    ModelClient,
    NoModelConfigured,
    Provider,
    Request,
)
from corral.storage.urls import shown_url

ProviderFactory = Callable[[], Provider]

DEFAULT_POLICY = RetryPolicy()

PROVIDERS = ("anthropic", "openai")

#: What a user sets to enable each provider: the variables its SDK reads.
_TO_SET = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)",
}
_WHERE = "in .env or the environment"


@dataclass(frozen=True)
class ProviderSettings:
    """What the providers connect with: ``ANTHROPIC_API_KEY``, ``ANTHROPIC_BASE_URL``,
    ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL``, as the composition root read them (None:
    not set, and the SDK's own default applies)."""

    anthropic_api_key: str | None = None
    anthropic_base_url: str | None = None
    openai_api_key: str | None = None
    openai_base_url: str | None = None

    @classmethod
    def from_variables(cls, variables: Mapping[str, str]) -> ProviderSettings:
        """From variables named as the SDKs name them; empty values count as unset."""
        return cls(
            anthropic_api_key=variables.get("ANTHROPIC_API_KEY") or None,
            anthropic_base_url=variables.get("ANTHROPIC_BASE_URL") or None,
            openai_api_key=variables.get("OPENAI_API_KEY") or None,
            openai_base_url=variables.get("OPENAI_BASE_URL") or None,
        )


class ModelRegistry:
    """Builds a fallback chain for a spec from the providers that have credentials.

    ``providers`` says which providers are configured, and what the default ones connect
    with. ``provider_factories`` replaces the default provider of a name (tests point them
    at a fake server). Each provider is created once, when first needed, and shared by
    every chain.
    """

    def __init__(
        self,
        models: dict[str, list[str]],
        providers: ProviderSettings,
        policy: RetryPolicy = DEFAULT_POLICY,
        provider_factories: dict[str, ProviderFactory] | None = None,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._models = models
        self._settings = providers
        self._policy = policy
        defaults: dict[str, ProviderFactory] = {
            "anthropic": lambda: AnthropicProvider(
                api_key=providers.anthropic_api_key, base_url=providers.anthropic_base_url
            ),
            "openai": lambda: OpenAIProvider(
                api_key=providers.openai_api_key, base_url=providers.openai_base_url
            ),
        }
        self._factories = {**defaults, **(provider_factories or {})}
        self._sleep = sleep
        self._providers: dict[str, Provider] = {}

    def client_for(self, spec: str) -> ModelClient:
        """The client for a tier or ``provider/model``; raises ValueError for a bad spec.

        When no provider of the chain is configured the client still exists, and its
        ``complete`` raises :class:`NoModelConfigured` saying what to set.
        """
        entries = self.resolve(spec)
        usable = [(self._provider(p), m) for p, m in entries if self.is_configured(p)]
        if not usable:
            return _Unconfigured(spec, _hint(p for p, _ in entries))
        return FallbackChain(usable, self._policy, spec, self._sleep)

    def resolve(self, spec: str) -> list[tuple[str, str]]:
        """The chain of ``(provider, model)`` a spec stands for, configured or not."""
        chain = self._models.get(spec)
        if chain is None:
            if "/" not in spec:
                tiers = ", ".join(self._models) or "none defined"
                raise ValueError(
                    f"`{spec}` is neither a model tier (tiers: {tiers}) nor a provider/model "
                    "such as anthropic/claude-haiku-4-5"
                )
            chain = [spec]
        return [_split(entry) for entry in chain]

    def is_configured(self, provider: str) -> bool:
        """Whether the settings have what ``provider``'s SDK needs to connect."""
        if provider == "anthropic":
            return bool(self._settings.anthropic_api_key)
        return bool(self._settings.openai_api_key or self._settings.openai_base_url)

    def configured_providers(self) -> list[str]:
        """The providers that have credentials, in a fixed order."""
        return [p for p in PROVIDERS if self.is_configured(p)]

    def status_line(self) -> str:
        """One line for the console: the configured providers, or what to set."""
        configured = self.configured_providers()
        if not configured:
            return f"No model provider configured: {_hint(PROVIDERS)}."
        local = self._settings.openai_base_url
        names = [
            f"openai at {shown_url(local)}" if p == "openai" and local else p for p in configured
        ]
        return f"Model providers: {', '.join(names)}."

    def describe(self, spec: str) -> list[str]:
        """The resolved chain, one ``provider/model`` a line, unconfigured ones marked."""
        return [
            f"{p}/{m}"
            if self.is_configured(p)
            else f"{p}/{m} (not configured: set {_TO_SET[p]} {_WHERE})"
            for p, m in self.resolve(spec)
        ]

    async def warm_up(self) -> None:
        """Create the configured providers now, importing their SDKs in a thread.

        The SDKs take seconds to import; on first use inside the event loop that would
        stall every task (acks, pings, schedules) for as long.
        """
        configured = [p for p in self.configured_providers() if p not in self._providers]
        for name in configured:
            provider = await asyncio.to_thread(self._factories[name])
            self._providers.setdefault(name, provider)

    async def aclose(self) -> None:
        """Close the providers this registry created (their connection pools)."""
        providers, self._providers = list(self._providers.values()), {}
        for provider in providers:
            if isinstance(provider, _Closable):
                await provider.aclose()

    def _provider(self, name: str) -> Provider:
        if name not in self._providers:
            self._providers[name] = self._factories[name]()
        return self._providers[name]


@runtime_checkable
class _Closable(Protocol):
    # Not part of Provider: a provider without connections to close needs no method.
    async def aclose(self) -> None: ...


class _Unconfigured:
    """The client of a chain none of whose providers has credentials."""

    def __init__(self, spec: str, hint: str) -> None:
        self._spec = spec
        self._hint = hint

    async def complete(self, request: Request, attempt: Attempt | None = None) -> Completion:
        raise NoModelConfigured(self._spec, self._hint)


def _split(entry: str) -> tuple[str, str]:
    provider, _, model = entry.partition("/")
    if provider not in PROVIDERS:
        raise ValueError(
            f"unknown model provider `{provider}` in `{entry}`: "
            f"write {' or '.join(f'{p}/<model>' for p in PROVIDERS)}"
        )
    if not model:
        raise ValueError(f"`{entry}` names no model: write {provider}/<model>")
    return provider, model


def _hint(providers: Iterable[str]) -> str:
    needed = dict.fromkeys(providers)  # ordered and without repeats
    return f"set {' or '.join(_TO_SET[p] for p in needed)} {_WHERE}"
