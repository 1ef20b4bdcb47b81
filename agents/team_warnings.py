"""What a valid team file allows but probably did not mean: limits and prices for models
nobody uses, budgets too small for a single call, models whose cost cannot be counted,
nobody to approve or administer, tools that act outside the thread without approval.

Each finding is ``(loc, message, fix)``, ``loc`` being the path of the key in the file;
:mod:`agents.team_loader` turns it into a warning with its line.
"""

from __future__ import annotations

import math

from corral.agents.llm.prices import PriceTable, base_model
from corral.agents.llm.types import Request
from corral.agents.team import Team
from corral.agents.tool import UNTRUSTED, ToolRegistry

Finding = tuple[tuple[str | int, ...], str, str]

#: The output a call may ask for unless it says otherwise: the budget's worst case.
MAX_TOKENS: int = Request.max_tokens


def team_warnings(team: Team, prices: PriceTable, tools: ToolRegistry) -> list[Finding]:
    """Every warning about ``team``, with ``prices`` the table its costs are counted with
    and ``tools`` the tools that exist."""
    return [
        *_unused_entries(team),
        *_budgets_below_one_call(team, prices),
        *_unpriced(team, prices),
        *_nobody_in_charge(team),
        *_unapproved_outside_tools(team, tools),
    ]


def _nobody_in_charge(team: Team) -> list[Finding]:
    if team.admin_ids() or team.approver_ids():
        return []
    return [
        (
            ("roles",),
            "the team has no admins and no approvers: nobody can approve a tool call, raise "
            "a budget or change a schedule",
            'add `roles: {admins: ["U0…"], approvers: ["U0…"]}` with platform user ids',
        )
    ]


def _unapproved_outside_tools(team: Team, tools: ToolRegistry) -> list[Finding]:
    findings: list[Finding] = []
    for handle, agent in team.agents.items():
        if UNTRUSTED in agent.approval:
            continue
        toolset = tools.toolset(agent)
        for name in sorted(toolset.tools):
            if toolset.tools[name].side_effect != "outside" or toolset.needs_approval(name):
                continue
            findings.append(
                (
                    ("agents", handle, "tools"),
                    f"`{handle}` may use `{name}`, which acts outside the thread, without "
                    "anyone's approval: a message it reads could make it post or schedule",
                    f"add `{name}` to its `approval:` (every use waits for a human), or "
                    "`untrusted` (uses wait once the run has read others' content)",
                )
            )
    return findings


def _used(team: Team) -> set[str]:
    return {spec for handle in team.agents for spec in team.models_of(handle)} | {
        spec for chain in team.models.values() for spec in chain
    }


def _unused_entries(team: Team) -> list[Finding]:
    used = _used(team)
    bases = {base_model(spec) for spec in used}
    findings: list[Finding] = []
    for key in team.limits.models:
        if "/" in key and key not in used:
            findings.append(
                (
                    ("limits", "models", key),
                    f"`limits.models` has limits for `{key}`, which no tier or agent uses",
                    "name the model exactly as a tier or agent does, or remove the entry",
                )
            )
    for key in team.prices:
        if key not in used and key not in bases:
            findings.append(
                (
                    ("prices", key),
                    f"`prices` has a price for `{key}`, which no tier or agent uses",
                    "name the model exactly as a tier or agent does, or remove the entry",
                )
            )
    return findings


def _budgets_below_one_call(team: Team, prices: PriceTable) -> list[Finding]:
    findings: list[Finding] = []
    own = team.limits.budget_usd_per_day
    for handle in team.agents:
        budget = team.limits.budget_for(handle)
        costs = [
            (cost, spec)
            for spec in team.models_of(handle)
            if (cost := prices.worst_case(spec, 0, MAX_TOKENS)) is not None
        ]
        if budget is None or not costs:
            continue
        worst, spec = max(costs)
        if budget < worst:
            key = handle if handle in own else "default"
            findings.append(
                (
                    ("limits", "budget_usd_per_day", key),
                    f"`{handle}`'s budget of ${budget:g} a day is less than one call's worst "
                    f"case (${worst:.4f}: {MAX_TOKENS} output tokens of {spec}), so it could "
                    "never answer",
                    f"raise `{handle}`'s budget to at least ${math.ceil(worst * 100) / 100:.2f}, "
                    "or give it a cheaper model",
                )
            )
    return findings


def _unpriced(team: Team, prices: PriceTable) -> list[Finding]:
    named: list[tuple[tuple[str | int, ...], str]] = [
        (("models", tier, index), spec)
        for tier, chain in team.models.items()
        for index, spec in enumerate(chain)
    ]
    named += [
        (("agents", handle, "model"), agent.model)
        for handle, agent in team.agents.items()
        if "/" in agent.model
    ]
    if team.auto is not None:
        named += [
            (("auto", tier), spec)
            for tier, spec in (("simple", team.auto.simple), ("complex", team.auto.complex))
            if "/" in spec
        ]
    findings: list[Finding] = []
    warned: set[str] = set()
    for loc, spec in named:
        if prices.price(spec) is None and spec not in warned:
            warned.add(spec)
            findings.append(
                (
                    loc,
                    f"no price is known for `{spec}`: its cost is recorded as unknown and "
                    "budgets cannot count it",
                    f'add it under prices:, e.g. `"{spec}": {{input: 1.0, output: 5.0}}` '
                    "(dollars per million tokens; 0 for a model that costs nothing)",
                )
            )
    return findings
