"""The team definition: the pydantic schema of ``team.yaml``.

Loading (with file and line numbers in errors) lives in :mod:`agents.team_loader`; this
module only says what a valid team is.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

HANDLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

#: Providers a ``provider/model`` may name, in a tier or directly as an agent's ``model:``.
MODEL_PROVIDERS = ("anthropic", "openai")


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

    @model_validator(mode="after")
    def _one_trigger(self) -> ScheduleConfig:
        if (self.cron is None) == (self.every is None):
            raise ValueError("give exactly one of `cron` and `every`")
        return self


class ProviderLimits(StrictModel):
    requests_per_minute: int | None = Field(default=None, gt=0)
    tokens_per_minute: int | None = Field(default=None, gt=0)


class Limits(StrictModel):
    providers: dict[str, ProviderLimits] = Field(default_factory=dict)
    budget_usd_per_day: dict[str, float] = Field(default_factory=dict)
    #: How many handoffs one message may cause before the chain is cut and escalated.
    handoff_depth: Annotated[int, Field(ge=1, le=20)] = 4
    #: Model calls one agent turn may make before it is stopped.
    tool_steps: Annotated[int, Field(ge=1, le=50)] = 8

    def budget_for(self, handle: str) -> float | None:
        """The agent's daily budget in USD: its own, else ``default``, else none."""
        return self.budget_usd_per_day.get(handle, self.budget_usd_per_day.get("default"))

    def team_budget(self) -> float | None:
        """The whole team's daily budget in USD, if capped."""
        return self.budget_usd_per_day.get("team")


class Team(StrictModel):
    """The whole ``team.yaml``."""

    models: dict[str, list[str]] = Field(default_factory=dict)
    agents: dict[str, AgentConfig]
    schedules: dict[str, ScheduleConfig] = Field(default_factory=dict)
    approvers: list[str] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)

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

    def router_handle(self) -> str | None:
        """The handle of the router agent, if the team has one."""
        return next((h for h, a in self.agents.items() if a.router), None)
