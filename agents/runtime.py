"""The agent runtime: one message's turn, from context assembly through the tool loop to
the reply, including handoffs between agents and pauses for a human's approval."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from corral.agents.conversation import Place, Poster, Reply, ReplyKind
from corral.agents.llm.types import (
    AllModelsFailed,
    ChatMessage,
    ModelClient,
    NoModelConfigured,
    Request,
    TextBlock,
    ToolResult,
    ToolUse,
)
from corral.agents.prompt import MemoryBudget, history_messages, system_prompt, within_budget
from corral.agents.run_context import current_run_id
from corral.agents.run_state import RunState
from corral.agents.team import Team
from corral.agents.tools import Handoff, ToolContext, escalate, run_tool, specs_for
from corral.storage.memory import MemoryRecord
from corral.storage.store import RunEnd, RunStart, Storage
from corral.storage.transcript import Line

log = logging.getLogger("corral.runtime")

HISTORY_LIMIT = 40
#: How long "there are no memories" is believed before the store is asked again. Most
#: teams start with none, and a search that cannot match costs as much as one that does;
#: a memory added elsewhere meanwhile is recalled this much later.
NO_MEMORIES_RECHECK_S = 1.0
#: Stop reasons of an answer that hit its token limit (Anthropic's, OpenAI's).
TRUNCATED = frozenset({"max_tokens", "length"})


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
    """How a chain of runs for one message ended: the last run's outcome and who ran.

    ``inbox_done``: the turn's inbox message was marked done with the last run.
    """

    outcome: str
    agents: tuple[str, ...]
    run_ids: tuple[str, ...]
    inbox_done: bool = False


@dataclass(frozen=True)
class _Step:
    outcome: str
    state: RunState
    handoff: Handoff | None = None
    error: str = ""
    #: What the agent answered, when the run ended with an answer.
    answer: str = ""


class Runtime:
    """Runs agents. Receives everything it needs; reads no settings of its own."""

    def __init__(
        self,
        team: Team,
        client_for: Callable[[str], ModelClient],
        storage: Storage,
        memory_budget: MemoryBudget | None = None,
    ) -> None:
        self.team = team
        self.client_for = client_for
        self.storage = storage
        self.memory_budget = memory_budget or MemoryBudget()
        self._no_memories_until = 0.0
        self._additions = 0

    async def handle(self, turn: Turn, post: Poster) -> Outcome:
        """Run ``turn.agent`` on the message, following handoffs until one agent answers.

        The turn's inbox message (if any) is marked done in the transaction that records
        the last run, however that run ended."""
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
        return await self._follow(state, post, inbox_done=turn.inbox_id)

    async def waiting(self, approval_id: str) -> Place | None:
        """Where the run waiting for ``approval_id`` happens; None if nothing waits for it."""
        record = await self.storage.approvals.get(approval_id)
        if record is None or record.kind != "tool" or record.status != "pending":
            return None
        return Place(record.platform, record.channel, record.thread)

    async def resume(
        self, approval_id: str, approved: bool, by: str, post: Poster
    ) -> Outcome | None:
        """Decide ``approval_id`` and continue the run that waits for it.

        None when no run waits for it: an unknown id, an escalation, or already decided.
        Whether ``by`` may decide is the caller's check.
        """
        record = await self.storage.approvals.decide(
            approval_id, status="approved" if approved else "rejected", by=by, kind="tool"
        )
        if record is None:
            return None
        log.info("approval %s %s by %s", approval_id, record.status, by)
        state = RunState.from_json(dict(record.state))
        return await self._follow(state, post, _Decision(approved, by))

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
        task_id: int | None = None,
    ) -> RunState:
        start = RunStart(handle, reason, place.platform, place.channel, place.thread, inbox_id)
        run_id, entries = await self.storage.start_run(start, HISTORY_LIMIT)
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
            task_id=task_id,
        )

    async def _follow(
        self,
        state: RunState,
        post: Poster,
        decision: _Decision | None = None,
        *,
        inbox_done: str | None = None,
    ) -> Outcome:
        """Drive runs until the chain ends: an answer, a pause, a failure or a cut loop.
        ``inbox_done`` is marked done with the chain's last run."""
        agents: tuple[str, ...] = ()
        run_ids: tuple[str, ...] = ()
        while True:
            step = await self._drive(state, post, decision, inbox_done)
            agents, run_ids = (*agents, state.agent), (*run_ids, state.run_id)
            if step.handoff is None:
                await self._close_task(step)
                return Outcome(step.outcome, agents, run_ids, inbox_done is not None)
            state, decision = await self._hand_over(step.state, step.handoff, post), None

    async def _hand_over(self, state: RunState, handoff: Handoff, post: Poster) -> RunState:
        """Announce a handoff in the thread, record it as a task, and start the next
        agent's run on it. A task this agent had received is passed on with it."""
        place = state.place
        notice = f"{self._name(state.agent)} → {self._name(handoff.to)}: {handoff.task}"
        await self._say(state, post, notice, "handoff", owner=handoff.to)
        task = await self.storage.tasks.create(
            from_agent=state.agent,
            to_agent=handoff.to,
            task=handoff.task,
            platform=place.platform,
            channel=place.channel,
            thread=place.thread,
        )
        if state.task_id is not None:
            passed = f"Handed to {self._name(handoff.to)} as task #{task.id}: {handoff.task}"
            await self.storage.tasks.finish(state.task_id, outcome="handed_off", result=passed)
        return await self._start(
            place,
            handoff.to,
            f"handoff from {state.agent}",
            state.query,
            state.inbox_id,
            depth=state.depth + 1,
            chain=(*state.chain, handoff.to),
            task=handoff.task,
            task_id=task.id,
        )

    async def _close_task(self, step: _Step) -> None:
        """End the task the run worked on, if any: done with the agent's answer, or
        failed with why. A run that waits for an approval keeps its task open."""
        task_id = step.state.task_id
        if task_id is None or step.outcome == "waiting":
            return
        if step.outcome == "ok":
            await self.storage.tasks.finish(task_id, outcome="done", result=step.answer)
        else:
            why = step.error or step.outcome
            await self.storage.tasks.finish(task_id, outcome="failed", result=why)

    async def _handoff_step(self, state: RunState, handoff: Handoff, post: Poster) -> _Step:
        """A handoff ends the run, unless the message has caused too many already: then the
        chain stops here, the thread keeps its owner, and a human is asked."""
        limit = self.team.limits.handoff_depth
        if state.depth < limit:
            return _Step("handoff", state, handoff)
        path = " → ".join((*state.chain, handoff.to))
        why = (
            f"handoff loop stopped: this message was already handed off {state.depth} times "
            f"(the limit), and {state.agent} tried again ({path})"
        )
        await escalate(self.storage, post, self.team, state.agent, state.place, state.run_id, why)
        return _Step("escalated", state, error=why)

    async def _drive(
        self,
        state: RunState,
        post: Poster,
        decision: _Decision | None,
        inbox_done: str | None = None,
    ) -> _Step:
        """Run one agent's turn and record it, with its answer in the thread's history
        and, when the chain ends here, ``inbox_done`` marked done: in one transaction."""
        token = current_run_id.set(state.run_id)
        started = time.perf_counter()
        try:
            step = await self._loop(state, post, decision)
        except asyncio.CancelledError:
            # Shutting down mid-turn: the message goes back to the inbox, the run says so.
            # The message starts over from its first agent, so a handed-off task ends here.
            await self.storage.runs.finish(state.run_id, outcome="interrupted")
            if state.task_id is not None:
                why = "interrupted: Corral stopped mid-turn; the message is handled again"
                await self.storage.tasks.finish(state.task_id, outcome="failed", result=why)
            raise
        except Exception as exc:  # the user gets a message and the run id, never a traceback
            log.exception("run failed")
            why = f"internal error ({type(exc).__name__}: {exc})"
            await self._fail(state, post, why)
            step = _Step("failed", state, error=why)
        finally:
            current_run_id.reset(token)
        s = step.state
        place = s.place
        # The answer is in the thread's history with the run's end, or neither is: a
        # message taken up again after a crash in between is answered afresh.
        await self.storage.end_run(
            RunEnd(
                s.run_id,
                place.platform,
                place.channel,
                place.thread,
                outcome=step.outcome,
                model=s.model,
                tokens_in=s.tokens_in,
                tokens_out=s.tokens_out,
                latency_ms=int((time.perf_counter() - started) * 1000),
                error=step.error,
                lines=(Line(step.answer, agent=s.agent),) if step.answer else (),
                owner=s.agent if step.answer else None,
                inbox_done=inbox_done if step.handoff is None else None,
            )
        )
        log.info(
            "run %s: %s (%s)", step.outcome, s.agent, s.route_reason, extra={"run_id": s.run_id}
        )
        return step

    async def _loop(self, state: RunState, post: Poster, decision: _Decision | None) -> _Step:
        agent = self.team.agent(state.agent)
        # Resuming after a decision: finish the tool calls of the last answer first.
        state, handoff, paused = await self._run_pending(state, post, decision)
        if paused is not None:
            return paused
        if handoff is not None:
            return await self._handoff_step(state, handoff, post)
        budget = self.memory_budget
        memories = await self._recall(state, budget.candidates)
        system = system_prompt(self.team, state.agent, within_budget(memories, budget))
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
                text = completion.text
                if completion.stop_reason in TRUNCATED:
                    text += "\n\n_(This answer was cut off at the model's length limit.)_"
                answer = await self._answer(state, post, text)
                return _Step("ok", state, answer=answer)
            state = state.with_(
                messages=(*state.messages, ChatMessage("assistant", completion.blocks)),
                pending=tuple(completion.tool_uses),
                results=(),
            )
            state, handoff, paused = await self._run_pending(state, post, None)
            if paused is not None:
                return paused
            if handoff is not None:
                return await self._handoff_step(state, handoff, post)
        why = f"stopped after {self.team.limits.tool_steps} steps without an answer"
        await self._fail(state, post, why)
        return _Step("failed", state, error=why)

    async def _recall(self, state: RunState, limit: int) -> list[MemoryRecord]:
        """The memories the run may see that match its query, best first; no search while
        the store is known to be empty."""
        memory = self.storage.memory
        # Another process's additions are seen within NO_MEMORIES_RECHECK_S; this one's
        # (a tool, a slash command) at once.
        if time.monotonic() < self._no_memories_until and memory.additions == self._additions:
            return []
        if not await memory.list(limit=1):
            self._no_memories_until = time.monotonic() + NO_MEMORIES_RECHECK_S
            self._additions = memory.additions
            return []
        return await self.storage.memory.search(
            state.query, agent=state.agent, channel=state.place.channel, limit=limit
        )

    async def _run_pending(
        self, state: RunState, post: Poster, decision: _Decision | None
    ) -> tuple[RunState, Handoff | None, _Step | None]:
        """Run the tool calls of the last answer; pause at one that needs approval.

        ``decision`` is a human's answer on the first pending call. A handoff ends the
        agent's turn, and a rejection ends the answer: the calls after either are not run,
        and the model is told so.
        """
        handoff: Handoff | None = None
        if decision is not None and state.pending:
            use = state.pending[0]
            if decision.approved:
                called = await self._call_tool(state, use, post)
                handoff = called.handoff
                state = _done(state, called.result)
            else:
                refusal = (
                    f"A human ({decision.by}) rejected this call. Do not retry it; tell the "
                    "user what you would have done and what they can do instead."
                )
                state = _done(state, ToolResult(use.id, refusal, is_error=True))
                state = _skip_rest(state, "Not run: an earlier call of this answer was rejected.")
        needs_approval = self.team.agent(state.agent).approval_names()
        while state.pending:
            use = state.pending[0]
            if handoff is not None:
                state = _skip_rest(state, "Not run: you handed this work off, so your turn ended.")
                break
            if use.name in needs_approval:
                await self._ask_approval(state, use, post)
                return state, None, _Step("waiting", state)
            called = await self._call_tool(state, use, post)
            handoff = called.handoff
            state = _done(state, called.result)
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
        # The thread is this agent's while it waits: follow-ups come to it, not the router.
        place = state.place
        await self.storage.threads.set_owner(
            place.platform, place.channel, place.thread, state.agent
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

    async def _answer(self, state: RunState, post: Poster, text: str) -> str:
        """Post the agent's answer; returns what was posted, which goes into the thread's
        history (and the thread to the agent) when the run is recorded."""
        text = text or f"{self._name(state.agent)} has nothing to add."
        await post(state.place, Reply(state.agent, text, kind="answer", run_id=state.run_id))
        return text

    async def _say(
        self, state: RunState, post: Poster, text: str, kind: ReplyKind, *, owner: str
    ) -> None:
        """Post in the thread as the run's agent, keep it in the thread's history, and
        hand the thread to ``owner``."""
        place = state.place
        await post(place, Reply(state.agent, text, kind=kind, run_id=state.run_id))
        await self.storage.transcript.append(
            place.platform, place.channel, place.thread, text, agent=state.agent, owner=owner
        )

    def _name(self, handle: str) -> str:
        agent = self.team.agents.get(handle)
        return agent.display_name if agent else handle

    async def _fail(self, state: RunState, post: Poster, why: str) -> None:
        """Tell the thread the run failed and ask a human, in one message."""
        name = self._name(state.agent)
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
class _Decision:
    approved: bool
    by: str


def _done(state: RunState, result: ToolResult) -> RunState:
    """The first pending call has run; keep its result."""
    return state.with_(pending=state.pending[1:], results=(*state.results, result))


def _skip_rest(state: RunState, why: str) -> RunState:
    """Answer every pending call with ``why`` instead of running it."""
    skipped = tuple(ToolResult(u.id, why, is_error=True) for u in state.pending)
    return state.with_(pending=(), results=(*state.results, *skipped))


@dataclass(frozen=True)
class _Called:
    result: ToolResult
    handoff: Handoff | None


def _with_user_text(messages: list[ChatMessage], text: str) -> list[ChatMessage]:
    if messages and messages[-1].role == "user":
        last = messages[-1]
        return [*messages[:-1], ChatMessage("user", (*last.content, TextBlock(text)))]
    return [*messages, ChatMessage.user(text)]
