"""The team definition: the pydantic schema of ``team.yaml``.

Loading (with file and line numbers in errors) lives in :mod:`agents.team_loader`; this
module only says what a valid team is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def channel_key(name: str) -> str:
    """A channel's name as ``team.yaml`` compares names: ``#`` first, lowercase
    (``Sales``, ``#sales`` and ``#SALES`` are one channel)."""
    return "#" + name.strip().lstrip("#").lower()


def listed(entries: Iterable[str], *channel: str) -> bool:
    """Whether a channel known by any of ``channel`` (id, name) is among ``entries`` (ids
    and ``#names``): an id matches exactly, a ``#name`` by :func:`channel_key`."""
    names = {channel_key(c) for c in channel if c}
    ids = {c for c in channel if c}
    return any((channel_key(e) in names) if e.startswith("#") else (e in ids) for e in entries)


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
    #: Tools that wait for a human's approval; the word ``untrusted`` also makes every
    #: tool with side effects outside the thread wait once the run has read untrusted
    #: content.
    approval: list[str] = Field(default_factory=list)
    #: Where it may answer and post (ids or ``#names``); None: everywhere the app is.
    allowed_channels: list[str] | None = None
    #: Who may talk to it (user ids or Slack user-group ids); None: everyone.
    allowed_users: list[str] | None = None

    @field_validator("allowed_channels", "allowed_users")
    @classmethod
    def _grant_not_empty(cls, grant: list[str] | None) -> list[str] | None:
        # An empty list would shut the agent out everywhere; nobody means that.
        if grant is not None and not grant:
            raise ValueError("is empty; leave the key out to allow everyone and everywhere")
        return grant

    def may_answer_in(self, *channel: str) -> bool:
        """Whether the agent may answer or post in a channel known by any of ``channel``
        (its id, its name with or without ``#``). An id matches exactly; a ``#name`` of
        ``allowed_channels`` matches that name in any case, with or without ``#``, as
        ``channels:`` does."""
        return self.allowed_channels is None or listed(self.allowed_channels, *channel)


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


class MessageLimits(StrictModel):
    """``limits.messages_per_minute`` — how many messages one person, or one channel, may
    send the team in a minute; past it, messages wait their turn and are told so."""

    person: PositiveInt | None = 20
    channel: PositiveInt | None = 60


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
    messages_per_minute: MessageLimits = Field(default_factory=MessageLimits)

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


class Roles(StrictModel):
    """``roles:`` — who may run admin commands, and who may approve."""

    #: May change schedules and budgets, forget any memory, read the audit.
    admins: list[str] = Field(default_factory=list)
    #: May approve and reject (with the top-level ``approvers:``: the union).
    approvers: list[str] = Field(default_factory=list)


class Redact(StrictModel):
    """``redact:`` — the company's own secret formats, added to the built-in detectors."""

    patterns: list[str] = Field(default_factory=list)

    @field_validator("patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for pattern in patterns:
            try:
                compiled = re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"`{pattern}` is not a regular expression: {exc}") from None
            if compiled.match(""):
                raise ValueError(f"`{pattern}` matches empty text; it would redact nothing")
        return patterns


class Team(StrictModel):
    """The whole ``team.yaml``."""

    models: dict[str, list[str]] = Field(default_factory=dict)
    agents: dict[str, AgentConfig]
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    #: The older spelling of ``roles.approvers`` (both given: the union).
    approvers: list[str] = Field(default_factory=list)
    roles: Roles = Field(default_factory=Roles)
    limits: Limits = Field(default_factory=Limits)
    #: Keys: ``provider/model``; laid over the shipped price table.
    prices: dict[str, Price] = Field(default_factory=dict)
    auto: AutoTiers | None = None
    redact: Redact = Field(default_factory=Redact)

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

    def approver_ids(self) -> list[str]:
        """Who may approve: ``approvers:`` and ``roles.approvers``, once each."""
        return list(dict.fromkeys([*self.approvers, *self.roles.approvers]))

    def admin_ids(self) -> list[str]:
        """Who may run admin commands (``roles.admins``)."""
        return list(self.roles.admins)

    def is_approver(self, user: str) -> bool:
        """Whether ``user`` may approve and reject."""
        return user in self.approver_ids()

    def is_admin(self, user: str) -> bool:
        """Whether ``user`` is an admin."""
        return user in self.roles.admins

    def approver_mentions(self) -> str:
        """The approvers as Slack and Discord mention them (``<@U…>``), "" when none."""
        return " ".join(f"<@{u}>" for u in self.approver_ids())

    def router_handle(self) -> str | None:
        """The handle of the router agent, if the team has one."""
        return next((h for h, a in self.agents.items() if a.router), None)
