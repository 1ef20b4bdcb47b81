"""Budgets and cost, a model-call wrapper: before an attempt, its worst-case cost is
reserved against the agent's and the team's budget for the day, atomically across
processes; after it, the reservation is settled with the real cost from the price table
and the usage, and the call is written in the ledger. A call that cannot be reserved is
not made. A budgeted agent thus never overshoots by more than one call's worst case.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from corral.agents.llm.prices import PriceTable
from corral.agents.llm.types import Completion, Request
from corral.agents.model_calls import ApprovalAsk, CallContext, CallRefused, ModelCall
from corral.agents.rate_limits import estimate_input
from corral.agents.run_context import notify, run_calls
from corral.agents.team import Team
from corral.storage.spend import TEAM, CallRecord, Caps, Hold, Refusal, Settled, SpendStore


class BudgetWrapper:
    """Reserves before each attempt, settles after, prices the completion."""

    def __init__(
        self, spend: SpendStore, team: Team, prices: PriceTable, today: Callable[[], str]
    ) -> None:
        self.spend = spend
        self.team = team
        self.prices = prices
        #: The day a call counts on, in the team's timezone (``YYYY-MM-DD``).
        self.today = today

    def caps(self, agent: str) -> Caps:
        """The agent's and the team's budgets for a day, as configured."""
        limits = self.team.limits
        return Caps(limits.budget_for(agent), limits.team_budget())

    async def __call__(
        self, ctx: CallContext, request: Request, call_next: ModelCall
    ) -> Completion:
        """The call, if its worst case fits today's budgets; priced afterwards."""
        day = self.today()
        caps = self.caps(ctx.agent)
        hold: Hold | None = None
        budgeted = caps.agent is not None or caps.team is not None
        worst = (
            self.prices.worst_case(ctx.target, estimate_input(request), request.max_tokens)
            if budgeted
            else None
        )
        if worst is not None:
            reserved = await self.spend.reserve(day, ctx.agent, worst, caps)
            if isinstance(reserved, Refusal):
                raise self._refused(ctx.agent, day, reserved)
            hold = reserved
        try:
            completion = await call_next(ctx, request)
        except BaseException:
            if hold is not None:
                await self.spend.release(hold)
            raise
        cost = self.prices.cost(ctx.target, completion.usage)
        usage = completion.usage
        record = CallRecord(
            run_id=ctx.run_id,
            agent=ctx.agent,
            model=ctx.target,
            tokens_in=usage.input,
            tokens_out=usage.output,
            cache_read=usage.cache_read,
            cache_write=usage.cache_write,
            cost_usd=cost,
        )
        deferred = run_calls.get()
        if hold is None and caps.agent is None and caps.team is None and deferred is not None:
            # No budget counts on it: written with the run's end, a write less per call.
            deferred.append((day, record))
        else:
            settled = await self.spend.settle(hold, record, day, caps)
            self._warn(ctx.agent, caps, settled)
        return replace(completion, cost_usd=cost)

    def _name(self, handle: str) -> str:
        agent = self.team.agents.get(handle)
        return agent.display_name if agent else handle

    def _approvers(self) -> str:
        return self.team.approver_mentions() or "approvers"

    def _refused(self, agent: str, day: str, refusal: Refusal) -> CallRefused:
        who = self._name(agent) if refusal.scope == "agent" else "The team"
        its = "its" if refusal.scope == "agent" else "its shared"
        notice = (
            f"{who} has used {its} ${refusal.cap:g} budget for today "
            f"(${refusal.used:.2f}); an approver can raise it."
        )
        ask = None
        if refusal.first:
            step = refusal.cap if refusal.cap > 0 else 1.0
            scope = agent if refusal.scope == "agent" else TEAM
            ask = ApprovalAsk(
                "budget",
                f"{who} has reached {its} ${refusal.cap:g} budget for today "
                f"(${refusal.used:.2f} used). Raise it by ${step:g} for today?",
                {"scope": scope, "day": day, "step": step},
            )
        return CallRefused(notice, "over_budget", ask)

    def _warn(self, agent: str, caps: Caps, settled: Settled) -> None:
        if settled.warn_agent and caps.agent is not None:
            notify(
                f"{self._name(agent)} has used {settled.agent_used / caps.agent:.0%} of its "
                f"${caps.agent:g} budget for today (${settled.agent_used:.2f}) — "
                f"{self._approvers()}."
            )
        if settled.warn_team and caps.team is not None:
            notify(
                f"The team has used {settled.team_used / caps.team:.0%} of its ${caps.team:g} "
                f"budget for today (${settled.team_used:.2f}) — {self._approvers()}."
            )
