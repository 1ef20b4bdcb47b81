"""The agent runtime: one message's turn, from context assembly through the tool loop to
the reply, including handoffs between agents and pauses for a human's approval."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from agents.conversation import Place, Poster, Reply
from agents.llm.types import (
    AllModelsFailed,
    ChatMessage,
    ModelClient,
    NoModelConfigured,
    Request,
    TextBlock,
    ToolResult,
    ToolUse,
)
from agents.prompt import history_messages, system_prompt
from agents.run_context import current_run_id
from agents.run_state import RunState
from agents.team import Team
from agents.tools import Handoff, ToolContext, escalate, run_tool, specs_for
from storage.store import Storage

log = logging.getLogger("corral.runtime")

HISTORY_LIMIT = 40
MEMORY_LIMIT = 5


@dataclass(frozen=True)
class Turn:
    """A message routed to an agent."""

    place: Place
    agent: str
    route_reason: str
    text: str
    inbox_id: str | None = None


@dataclass(frozen=True)
class Outcome:
    """How a chain of runs for one message ended: the last run's outcome and who ran."""

    outcome: str
    agents: tuple[str, ...]
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Step:
    outcome: str
    state: RunState
    handoff: Handoff | None = None
    error: str = ""


class Runtime:
    """Runs agents. Receives everything it needs; reads no settings of its own."""

    def __init__(
        self,
        team: Team,
        client_for: Callable[[str], ModelClient],
        storage: Storage,
    ) -> None:
        self.team = team
        self.client_for = client_for
        self.storage = storage

    async def handle(self, turn: Turn, post: Poster) -> Outcome:
        """Run ``turn.agent`` on the message, following handoffs until one agent answers."""
        state = await self._start(
            turn.place,
            turn.agent,
            turn.route_reason,
            turn.text,
            turn.inbox_id,
            depth=0,
            chain=(turn.agent,),
            task=None,
        )
        return await self._follow(state, post, (), ())

    async def resume(
        self, approval_id: str, approved: bool, by: str, post: Poster
    ) -> Outcome | None:
        """Continue the run that waits for ``approval_id``; None if it was already decided."""
        record = await self.storage.approvals.decide(
            approval_id, status="approved" if approved else "rejected", by=by
        )
        if record is None or record.kind != "tool":
            return None
        state = RunState.from_json(dict(record.state))
        use, rest = state.pending[0], state.pending[1:]
        token = current_run_id.set(state.run_id)
        try:
            log.info("approval %s %s by %s", approval_id, record.status, by)
            if approved:
                result = await self._call_tool(state, use, post)
            else:
                refusal = (
                    f"A human ({by}) rejected this call. Do not retry it; tell the user what "
                    "you would have done and what they can do instead."
                )
                result = _Called(ToolResult(use.id, refusal, is_error=True), None)
            state = state.with_(pending=rest, results=(*state.results, result.result))
        finally:
            current_run_id.reset(token)
        return await self._follow(state, post, (), (), handoff=result.handoff)

    async def _start(
        self,
        place: Place,
        handle: str,
        reason: str,
        query: str,
        inbox_id: str | None,
        *,
        depth: int,
        chain: tuple[str, ...],
        task: str | None,
    ) -> RunState:
        run_id = await self.storage.runs.start(
            agent=handle,
            route_reason=reason,
            platform=place.platform,
            channel=place.channel,
            thread=place.thread,
            inbox_id=inbox_id,
        )
        entries = await self.storage.transcript.history(
            place.platform, place.channel, place.thread, limit=HISTORY_LIMIT
        )
        messages = history_messages(self.team, handle, entries)
        if task is not None:
            sender = self.team.agent(chain[-2]).display_name if len(chain) > 1 else "A teammate"
            messages = _with_user_text(messages, f"{sender} handed this to you: {task}")
        elif not messages or messages[-1].role != "user":
            messages = _with_user_text(messages, query)
        return RunState(
            run_id=run_id,
            agent=handle,
            place=place,
            route_reason=reason,
            query=task or query,
            messages=tuple(messages),
            depth=depth,
            chain=chain,
            inbox_id=inbox_id,
        )

    async def _follow(
        self,
        state: RunState,
        post: Poster,
        agents: tuple[str, ...],
        run_ids: tuple[str, ...],
        handoff: Handoff | None = None,
    ) -> Outcome:
        """Drive runs until the chain ends: an answer, a pause, a failure or a cut loop."""
        while True:
            step = await self._drive(state, post, handoff)
            agents, run_ids = (*agents, state.agent), (*run_ids, state.run_id)
            if step.handoff is None:
                return Outcome(step.outcome, agents, run_ids)
            following = await self._hand_over(step.state, step.handoff, post)
            if following is None:
                return Outcome("escalated", agents, run_ids)
            state, handoff = following, None

    async def _hand_over(self, state: RunState, handoff: Handoff, post: Poster) -> RunState | None:
        """Announce a handoff and start the next agent's run, or cut a loop and escalate."""
        place = state.place
        frm = self.team.agent(state.agent).display_name
        to = self.team.agent(handoff.to).display_name
        notice = f"{frm} → {to}: {handoff.task}"
        await post(place, Reply(state.agent, notice, kind="handoff", run_id=state.run_id))
        await self.storage.transcript.append(
            place.platform, place.channel, place.thread, notice, agent=state.agent
        )
        await self.storage.threads.set_owner(
            place.platform, place.channel, place.thread, handoff.to
        )
        chain = (*state.chain, handoff.to)
        if state.depth + 1 > self.team.limits.handoff_depth:
            path = " → ".join(chain)
            await escalate(
                self.storage,
                post,
                self.team,
                state.agent,
                place,
                state.run_id,
                f"handoff loop cut after {state.depth + 1} handoffs ({path})",
            )
            return None
        return await self._start(
            place,
            handoff.to,
            f"handoff from {state.agent}",
            state.query,
            state.inbox_id,
            depth=state.depth + 1,
            chain=chain,
            task=handoff.task,
        )

    async def _drive(self, state: RunState, post: Poster, handoff: Handoff | None) -> _Step:
        token = current_run_id.set(state.run_id)
        started = time.perf_counter()
        try:
            step = await self._loop(state, post, handoff)
        except Exception as exc:  # the user gets a message and the run id, never a traceback
            log.exception("run failed")
            why = f"internal error ({type(exc).__name__}: {exc})"
            await self._fail(state, post, why)
            step = _Step("failed", state, error=why)
        finally:
            current_run_id.reset(token)
        s = step.state
        await self.storage.runs.finish(
            s.run_id,
            outcome=step.outcome,
            model=s.model,
            tokens_in=s.tokens_in,
            tokens_out=s.tokens_out,
            latency_ms=int((time.perf_counter() - started) * 1000),
            error=step.error,
        )
        log.info(
            "run %s: %s (%s)", step.outcome, s.agent, s.route_reason, extra={"run_id": s.run_id}
        )
        return step

    async def _loop(self, state: RunState, post: Poster, handoff: Handoff | None) -> _Step:
        agent = self.team.agent(state.agent)
        # Resuming mid-step: finish the tool calls of the last answer first.
        state, handoff, paused = await self._run_pending(state, post, handoff)
        if paused is not None:
            return paused
        if handoff is not None:
            return _Step("handoff", state, handoff)
        memories = await self.storage.memory.search(
            state.query, agent=state.agent, channel=state.place.channel, limit=MEMORY_LIMIT
        )
        system = system_prompt(self.team, state.agent, memories)
        tools = specs_for(agent)
        client = self.client_for(agent.model)
        while state.step < self.team.limits.tool_steps:
            try:
                completion = await client.complete(
                    Request(system=system, messages=state.messages, tools=tools)
                )
            except NoModelConfigured as exc:
                await post(
                    state.place,
                    Reply(
                        state.agent,
                        f"{agent.display_name} can't answer: no model is configured — {exc.hint}",
                        kind="notice",
                        run_id=state.run_id,
                    ),
                )
                return _Step("no_model", state, error=str(exc))
            except AllModelsFailed as exc:
                why = f"every model failed ({exc})"
                await self._fail(state, post, why)
                return _Step("failed", state, error=why)
            state = state.with_(
                step=state.step + 1,
                model=completion.model,
                tokens_in=state.tokens_in + completion.tokens_in,
                tokens_out=state.tokens_out + completion.tokens_out,
            )
            if not completion.tool_uses:
                await self._answer(state, post, completion.text)
                return _Step("ok", state)
            state = state.with_(
                messages=(*state.messages, ChatMessage("assistant", completion.blocks)),
                pending=tuple(completion.tool_uses),
                results=(),
            )
            state, handoff, paused = await self._run_pending(state, post, None)
            if paused is not None:
                return paused
            if handoff is not None:
                return _Step("handoff", state, handoff)
        why = f"stopped after {self.team.limits.tool_steps} steps without an answer"
        await self._fail(state, post, why)
        return _Step("failed", state, error=why)

    async def _run_pending(
        self, state: RunState, post: Poster, handoff: Handoff | None
    ) -> tuple[RunState, Handoff | None, _Step | None]:
        """Run the tool calls still pending; pause at one that needs approval."""
        agent = self.team.agent(state.agent)
        while state.pending:
            use = state.pending[0]
            if use.name in agent.approval and use.name in agent.tool_names():
                await self._ask_approval(state, use, post)
                return state, None, _Step("waiting", state)
            called = await self._call_tool(state, use, post)
            handoff = handoff or called.handoff
            state = state.with_(pending=state.pending[1:], results=(*state.results, called.result))
        if state.results:
            state = state.with_(
                messages=(*state.messages, ChatMessage("user", state.results)), results=()
            )
        return state, handoff, None

    async def _call_tool(self, state: RunState, use: ToolUse, post: Poster) -> _Called:
        ctx = ToolContext(self.team, state.agent, state.place, state.run_id, self.storage, post)
        outcome = await run_tool(ctx, use.name, use.input)
        log.info("tool %s → %s", use.name, "error" if outcome.is_error else "ok")
        return _Called(ToolResult(use.id, outcome.content, outcome.is_error), outcome.handoff)

    async def _ask_approval(self, state: RunState, use: ToolUse, post: Poster) -> None:
        agent = self.team.agent(state.agent)
        args = json.dumps(use.input, ensure_ascii=False)
        summary = f"{agent.display_name} wants to run `{use.name}` with {args}"
        record = await self.storage.approvals.create(
            kind="tool",
            agent=state.agent,
            summary=summary,
            run_id=state.run_id,
            platform=state.place.platform,
            channel=state.place.channel,
            thread=state.place.thread,
            state=state.to_json(),
        )
        await post(
            state.place,
            Reply(
                state.agent,
                f"{summary}. Waiting for approval ({record.id}).",
                kind="approval",
                run_id=state.run_id,
                approval_id=record.id,
            ),
        )

    async def _answer(self, state: RunState, post: Poster, text: str) -> None:
        place = state.place
        agent = self.team.agent(state.agent)
        text = text or f"{agent.display_name} has nothing to add."
        await post(place, Reply(state.agent, text, run_id=state.run_id))
        await self.storage.transcript.append(
            place.platform, place.channel, place.thread, text, agent=state.agent
        )
        await self.storage.threads.set_owner(
            place.platform, place.channel, place.thread, state.agent
        )

    async def _fail(self, state: RunState, post: Poster, why: str) -> None:
        """Tell the thread the run failed and ask a human, in one message."""
        name = self.team.agent(state.agent).display_name
        await escalate(
            self.storage,
            post,
            self.team,
            state.agent,
            state.place,
            state.run_id,
            why,
            headline=f"{name} could not finish: {why}",
        )


@dataclass(frozen=True)
class _Called:
    result: ToolResult
    handoff: Handoff | None


def _with_user_text(messages: list[ChatMessage], text: str) -> list[ChatMessage]:
    if messages and messages[-1].role == "user":
        last = messages[-1]
        return [*messages[:-1], ChatMessage("user", (*last.content, TextBlock(text)))]
    return [*messages, ChatMessage.user(text)]
