"""The team definition: the pydantic schema of ``team.yaml``.

Loading (with file and line numbers in errors) lives in :mod:`agents.team_loader`; this
module only says what a valid team is.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

HANDLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

#: Providers a ``provider/model`` may name, in a tier or directly as an agent's ``model:``.
MODEL_PROVIDERS = ("anthropic", "openai")

#: The ``model:`` of an agent whose tier is picked per message from ``auto:``.
AUTO = "auto"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AgentConfig(StrictModel):
    """One agent of the team; its handle is the key it has under ``agents:``."""

    display_name: str
    icon: str = ":robot_face:"
    role: str
    instructions: str = ""
    instructions_file: str | None = None
    model: str = "fast"
    router: bool = False
    channels: list[str] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list)
    handoff_to: list[str] = Field(default_factory=list)
    approval: list[str] = Field(default_factory=list)


class ScheduleConfig(StrictModel):
    """A recurring task; exactly one of ``cron`` and ``every``."""

    cron: str | None = None
    every: str | None = None
    timezone: str = "UTC"
    agent: str
    channel: str
    prompt: str
    #: The model tier its fires use instead of the agent's own model (e.g. a cheap one
    #: for routine work); None: the agent's.
    tier: str | None = None

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` and `every`")
        return self


class ModelLimits(StrictModel):
    """Per-minute limits of one provider, or of one model, shared by every agent."""

    requests_per_minute: PositiveInt | None = None
    #: Input and output tokens together, as OpenAI counts them.
    tokens_per_minute: PositiveInt | None = None
    input_tokens_per_minute: PositiveInt | None = None
    output_tokens_per_minute: PositiveInt | None = None


class Limits(StrictModel):
    """``limits:`` — rate limits, budgets, concurrency and the bounds of one run."""

    #: Keys: a provider (``openai``) or a ``provider/model``.
    models: dict[str, ModelLimits] = Field(default_factory=dict)
    #: The older spelling of provider keys under ``models``, merged into it (an entry of
    #: ``models`` for the same provider wins); the loader warns that it is deprecated.
    providers: dict[str, ModelLimits] = Field(default_factory=dict)
    #: Keys: ``team`` (the whole team), ``default`` (each agent not listed) or a handle.
    budget_usd_per_day: dict[str, NonNegativeFloat] = Field(default_factory=dict)
    #: Keys: ``default`` or a handle; runs of one agent at the same time.
    concurrent_runs: dict[str, PositiveInt] = Field(default_factory=dict)
    #: How many handoffs one message may cause before the chain is cut and escalated.
    handoff_depth: Annotated[int, Field(ge=1, le=20)] = 4
    #: Model calls one agent turn may make before it is stopped.
    tool_steps: Annotated[int, Field(ge=1, le=50)] = 8

    @model_validator(mode="after")
    def _providers_into_models(self) -> Limits:
        # Merged after validation, so a mistake under `providers:` is reported once, there.
        if not self.providers:
            return self
        return self.model_copy(update={"models": {**self.providers, **self.models}})

    def limits_for(self, provider: str, model: str) -> list[tuple[str, ModelLimits]]:
        """The limits a call of ``provider``/``model`` must keep, each with its key: the
        ``provider/model`` entry, then the ``provider`` entry, those that exist."""
        keys = (f"{provider}/{model}", provider)
        return [(key, self.models[key]) for key in keys if key in self.models]

    def budget_for(self, handle: str) -> float | None:
        """The agent's dollars per day: its own, else ``default``, else None (no budget)."""
        return self.budget_usd_per_day.get(handle, self.budget_usd_per_day.get("default"))

    def team_budget(self) -> float | None:
        """The whole team's dollars per day (``team``), or None when it has none."""
        return self.budget_usd_per_day.get("team")

    def concurrency_for(self, handle: str) -> int | None:
        """How many runs of the agent may go at once: its own, else ``default``, else
        None (no cap)."""
        return self.concurrent_runs.get(handle, self.concurrent_runs.get("default"))


class Price(StrictModel):
    """Dollars per million tokens of one model (``prices:``); a cache price left out is
    the shipped table's, else the input price."""

    input: NonNegativeFloat
    output: NonNegativeFloat
    cache_read: NonNegativeFloat | None = None
    cache_write: NonNegativeFloat | None = None


class AutoTiers(StrictModel):
    """``auto:`` — what ``model: auto`` picks between, per message: each a tier or a
    ``provider/model``."""

    simple: str
    complex: str


class Team(StrictModel):
    """The whole ``team.yaml``."""

    models: dict[str, list[str]] = Field(default_factory=dict)
    agents: dict[str, AgentConfig]
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    approvers: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    #: Keys: ``provider/model``; laid over the shipped price table.
    prices: dict[str, Price] = Field(default_factory=dict)
    auto: AutoTiers | None = None

    @field_validator("models")
    @classmethod
    def _chains_not_empty(cls, models: dict[str, list[str]]) -> dict[str, list[str]]:
        for tier, chain in models.items():
            if not chain:
                raise ValueError(f"tier `{tier}` has no models")
        return models

    def agent(self, handle: str) -> AgentConfig:
        """The agent with this handle (KeyError when there is none)."""
        return self.agents[handle]

    def specs_of(self, model: str) -> list[str]:
        """The ``provider/model`` entries that ``model`` (a tier or a ``provider/model``)
        stands for; none for a name that is neither."""
        return list(self.models.get(model, [model] if "/" in model else []))

    def models_of(self, handle: str) -> list[str]:
        """Every ``provider/model`` the agent may call, once each: its tier's chain or its
        literal model; both ``auto:`` tiers for ``model: auto``."""
        model = self.agents[handle].model
        names = [self.auto.simple, self.auto.complex] if model == AUTO and self.auto else [model]
        return list(dict.fromkeys(spec for name in names for spec in self.specs_of(name)))

    def approver_mentions(self) -> str:
        """The approvers as Slack and Discord mention them (``<@U…>``), "" when none."""
        return " ".join(f"<@{u}>" for u in self.approvers)

    def router_handle(self) -> str | None:
        """The handle of the router agent, if the team has one."""
        return next((h for h, a in self.agents.items() if a.router), None)
