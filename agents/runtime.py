"""The agent runtime: one message's turn, from context assembly through the tool loop to
the reply, including handoffs between agents and pauses for a human's approval."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Any

from corral.agents.builtin_tools import escalate
from corral.agents.conversation import Place, Poster, Reply
from corral.agents.failures import plain_reason
from corral.agents.llm.types import (
    AllModelsFailed,
    ChatMessage,
    Completion,
    NoModelConfigured,
    Request,
    TextBlock,
    ToolResult,
    ToolUse,
)
from corral.agents.model_calls import PERSON, CallContext, CallRefused
from corral.agents.model_choice import Difficulty, choose_model
from corral.agents.prompt import MemoryBudget, history_messages, system_prompt, within_budget
from corral.agents.run_context import current_run_id, run_calls, run_notices
from corral.agents.run_gate import RunGate
from corral.agents.run_state import RunState
from corral.agents.seams import Seams
from corral.agents.speech import Speaker
from corral.agents.team import Team
from corral.agents.tool import Handoff, Tool, ToolContext, ToolOutcome, Toolset
from corral.agents.tool_calls import ToolCall
from corral.storage.approvals import ApprovalRecord
from corral.storage.memory import MemoryRecord
from corral.storage.runs import RunOutcome
from corral.storage.spend import CallRecord
from corral.storage.store import RunEnd, RunStart, Storage

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
    #: How urgent its model calls are: a person's message, or background work.
    priority: int = PERSON
    #: The model tier its run uses, when a schedule names one.
    tier: str = ""
    #: How hard the message is, when the router rated it (for ``model: auto``).
    difficulty: Difficulty | None = None


#: Records how a run ended (``Storage.end_run``, or a worker's own, which closes its work
#: item in the same write).
RunEnder = Callable[[RunEnd], Awaitable[None]]


@dataclass(frozen=True)
class Outcome:
    """How a chain of runs for one message ended: the last run's outcome and who ran."""

    outcome: RunOutcome
    agents: tuple[str, ...]
    run_ids: tuple[str, ...]


@dataclass(frozen=True)
class _Step:
    outcome: RunOutcome
    state: RunState
    handoff: Handoff | None = None
    error: str = ""
    #: What the agent answered, when the run ended with an answer.
    answer: str = ""


class Runtime:
    """Runs agents. Receives everything it needs; reads no settings of its own.

    A run is a short sequence of steps through the three seams: the model call and the
    tool call (``seams``, composed in the composition root) and what the run says (a
    :class:`Speaker` over the platform's poster, one per turn)."""

    def __init__(
        self,
        team: Team,
        seams: Seams,
        storage: Storage,
        memory_budget: MemoryBudget | None = None,
        gate: RunGate | None = None,
    ) -> None:
        self.team = team
        self.seams = seams
        self.storage = storage
        self.memory_budget = memory_budget or MemoryBudget()
        #: How many runs of an agent may go at once (``limits.concurrent_runs``).
        self.gate = gate
        #: Each agent's tools, fixed at start from ``team.yaml``.
        self.toolsets: dict[str, Toolset] = seams.tools.toolsets(team)
        self._no_memories_until = 0.0
        self._additions = 0

    async def handle(
        self, turn: Turn, post: Poster, *, end_last: RunEnder | None = None
    ) -> Outcome:
        """Run ``turn.agent`` on the message, following handoffs until one agent answers.
        The turn's work item (if any) is the caller's to close: ``end_last``, when given,
        records how the last run ended instead of the storage, so that the caller can
        close its item in the same write."""
        state = await self._start(
            turn.place,
            turn.agent,
            turn.route_reason,
            turn.text,
            turn.inbox_id,
            depth=0,
            chain=(turn.agent,),
            task=None,
            priority=turn.priority,
            tier=turn.tier,
            difficulty=turn.difficulty,
        )
        return await self._follow(state, self._speaker(post), end_last=end_last)

    async def waiting(self, approval_id: str) -> Place | None:
        """Where the run waiting for ``approval_id`` happens; None if nothing waits for it."""
        record = await self.storage.approvals.get(approval_id)
        if record is None or record.kind != "tool" or record.status != "pending":
            return None
        return Place(record.platform, record.channel, record.thread)

    async def resume(
        self,
        decided: ApprovalRecord,
        post: Poster,
        *,
        inbox_id: str | None = None,
        end_last: RunEnder | None = None,
    ) -> Outcome:
        """Continue the run that waited for the approval ``decided`` (decided already:
        ``approved`` or else rejected, by ``decided_by``), on the account of the work
        item ``inbox_id``. Run again after a crash, it starts from the same pause.
        ``end_last`` as for :meth:`handle`."""
        log.info("approval %s %s by %s", decided.id, decided.status, decided.decided_by)
        state = RunState.from_json(dict(decided.state))
        if inbox_id is not None:
            state = replace(state, inbox_id=inbox_id)
        decision = _Decision(decided.status == "approved", decided.decided_by)
        return await self._follow(state, self._speaker(post), decision, end_last)

    def _speaker(self, post: Poster) -> Speaker:
        return Speaker(self.storage.transcript, post, self.seams.redact)

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
        priority: int = PERSON,
        tier: str = "",
        difficulty: Difficulty | None = None,
    ) -> RunState:
        start = RunStart(handle, reason, place.platform, place.channel, place.thread, inbox_id)
        run_id, entries = await self.storage.start_run(start, HISTORY_LIMIT)
        ctx = CallContext(handle, place, run_id, "classify", "", priority=priority)
        why = reason if difficulty is not None else ""
        choice = await choose_model(
            self.team,
            self.seams.model_call,
            ctx,
            task or query,
            tier=tier,
            difficulty=difficulty,
            why=why,
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
            task_id=task_id,
            priority=priority,
            model_spec=choice.spec,
            model_choice=choice.why,
        )

    async def _follow(
        self,
        state: RunState,
        speaker: Speaker,
        decision: _Decision | None = None,
        end_last: RunEnder | None = None,
    ) -> Outcome:
        """Drive runs until the chain ends: an answer, a pause, a failure or a cut loop."""
        agents: tuple[str, ...] = ()
        run_ids: tuple[str, ...] = ()
        while True:
            step = await self._drive(state, speaker, decision, end_last)
            agents, run_ids = (*agents, state.agent), (*run_ids, state.run_id)
            if step.handoff is None:
                await self._close_task(step)
                return Outcome(step.outcome, agents, run_ids)
            state, decision = await self._hand_over(step.state, step.handoff, speaker), None

    async def _hand_over(self, state: RunState, handoff: Handoff, speaker: Speaker) -> RunState:
        """Announce a handoff in the thread, record it as a task, and start the next
        agent's run on it. A task this agent had received is passed on with it."""
        place = state.place
        notice = f"{self._name(state.agent)} → {self._name(handoff.to)}: {handoff.task}"
        await speaker.say(
            place, Reply(state.agent, notice, kind="handoff", run_id=state.run_id), owner=handoff.to
        )
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
            priority=state.priority,
            tier=handoff.tier,
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

    async def _drive(
        self,
        state: RunState,
        speaker: Speaker,
        decision: _Decision | None,
        end_last: RunEnder | None,
    ) -> _Step:
        """Run one agent's turn and record how it ended: through ``end_last`` when this
        run ends the chain and leaves nothing else to record (no task to close)."""
        token = current_run_id.set(state.run_id)
        calls: list[tuple[str, CallRecord]] = []
        deferred = run_calls.set(calls)
        started = time.perf_counter()
        gate = self.gate.run(state.agent, state.run_id) if self.gate else nullcontext()
        try:
            async with gate:
                step = await self._loop(state, speaker, decision)
        except asyncio.CancelledError:
            # Shutting down mid-turn: the message goes back to the inbox, the run says so.
            # The message starts over from its first agent, so a handed-off task ends here.
            await self.storage.runs.finish(state.run_id, outcome="interrupted")
            await self.storage.spend.record(calls)
            if state.task_id is not None:
                why = "interrupted: Corral stopped mid-turn; the message is handled again"
                await self.storage.tasks.finish(state.task_id, outcome="failed", result=why)
            raise
        except Exception:  # the person gets a plain reason and the run id; the log the rest
            log.exception("run failed")
            why = "internal error"
            await self._fail(state, speaker, why)
            step = _Step("failed", state, error=why)
        finally:
            current_run_id.reset(token)
            run_calls.reset(deferred)
        s = step.state
        place = s.place
        last = step.handoff is None and (s.task_id is None or step.outcome == "waiting")
        end = end_last if end_last is not None and last else self.storage.end_run
        await end(
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
                cost_usd=s.cost_usd,
                cache_read=s.cache_read,
                cache_write=s.cache_write,
                model_choice=s.model_choice,
                calls=tuple(calls),
            )
        )
        log.info(
            "run %s: %s (%s)", step.outcome, s.agent, s.route_reason, extra={"run_id": s.run_id}
        )
        return step

    async def _loop(self, state: RunState, speaker: Speaker, decision: _Decision | None) -> _Step:
        """The turn: finish the tool calls a decision was waited for, then think and act
        until the agent answers, hands off, waits for a human or runs out of steps."""
        state, ended = await self._act(state, speaker, decision)
        if ended is not None:
            return ended
        system = await self._system(state)
        while state.step < self.team.limits.tool_steps:
            thought = await self._think(state, speaker, system)
            if isinstance(thought, _Step):
                return thought
            state, completion = thought
            if not completion.tool_uses:
                return await self._answer(state, speaker, completion)
            state = replace(
                state,
                messages=(*state.messages, ChatMessage("assistant", completion.blocks)),
                pending=tuple(completion.tool_uses),
                results=(),
            )
            state, ended = await self._act(state, speaker, None)
            if ended is not None:
                return ended
        steps = self.team.limits.tool_steps
        why = f"stopped after {steps} step{'' if steps == 1 else 's'} without an answer"
        await self._fail(state, speaker, why)
        return _Step("failed", state, error=why)

    async def _system(self, state: RunState) -> str:
        """The agent's system prompt with the memories its query recalls."""
        budget = self.memory_budget
        memories = await self._recall(state, budget.candidates)
        return system_prompt(self.team, state.agent, within_budget(memories, budget))

    async def _think(
        self, state: RunState, speaker: Speaker, system: str
    ) -> tuple[RunState, Completion] | _Step:
        """One model call through the model-call seam, counted in the run; a model that
        cannot answer ends the turn (said in the thread)."""
        agent = self.team.agent(state.agent)
        spec = state.model_spec or agent.model
        ctx = CallContext(
            state.agent, state.place, state.run_id, "answer", spec, priority=state.priority
        )
        request = Request(system, state.messages, self.toolsets[state.agent].specs())
        notices: list[str] = []
        said = run_notices.set(notices)
        try:
            completion = await self.seams.model_call(ctx, request)
        except NoModelConfigured as exc:
            text = f"{agent.display_name} can't answer: no model is configured — {exc.hint}"
            await speaker.say(
                state.place, Reply(state.agent, text, kind="notice", run_id=state.run_id)
            )
            return _Step("no_model", state, error=str(exc))
        except CallRefused as exc:
            await self._refused(state, speaker, exc)
            return _Step(exc.outcome, state, error=exc.notice)
        except AllModelsFailed as exc:
            log.warning("every model failed: %s", exc)
            why = plain_reason(exc)
            await self._fail(state, speaker, why)
            return _Step("failed", state, error=why)
        finally:
            run_notices.reset(said)
        for text in notices:
            notice = Reply(state.agent, text, kind="notice", run_id=state.run_id)
            await speaker.say(state.place, notice)
        return _counted(state, completion), completion

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

    async def _act(
        self, state: RunState, speaker: Speaker, decision: _Decision | None
    ) -> tuple[RunState, _Step | None]:
        """Run the tool calls of the last answer through the tool-call seam; the turn
        ends at a call that waits for approval, and at a handoff.

        ``decision`` is a human's answer on the first pending call. A handoff ends the
        agent's turn, and a rejection ends the answer: the calls after either are not run,
        and the model is told so.
        """
        handoff: Handoff | None = None
        approved_by = ""
        if decision is not None and state.pending:
            if decision.approved:
                approved_by = decision.by
            else:
                refusal = (
                    f"A human ({decision.by}) rejected this call. Do not retry it; tell the "
                    "user what you would have done and what they can do instead."
                )
                state = _done(state, ToolResult(state.pending[0].id, refusal, is_error=True))
                state = _skip_rest(state, "Not run: an earlier call of this answer was rejected.")
        while state.pending:
            use = state.pending[0]
            if handoff is not None:
                state = _skip_rest(state, "Not run: you handed this work off, so your turn ended.")
                break
            outcome = await self._call_tool(state, speaker, use, approved_by)
            approved_by = ""
            if outcome.waits_for_approval:
                await self._ask_approval(state, speaker, use)
                return state, _Step("waiting", state)
            handoff = outcome.handoff
            state = _done(state, ToolResult(use.id, outcome.content, outcome.is_error))
        if state.results:
            state = replace(
                state, messages=(*state.messages, ChatMessage("user", state.results)), results=()
            )
        if handoff is not None:
            return state, await self._handoff_step(state, speaker, handoff)
        return state, None

    async def _call_tool(
        self, state: RunState, speaker: Speaker, use: ToolUse, approved_by: str
    ) -> ToolOutcome:
        toolset = self.toolsets[state.agent]
        # A tool the agent does not have still goes through the seam, as a call that can
        # only fail: an agent reaching past its grants is audited like any other call.
        tool = toolset.get(use.name) or _not_granted(use.name, toolset)
        ctx = ToolContext(
            self.team, state.agent, state.place, state.run_id, self.storage, speaker, toolset
        )
        outcome = await self.seams.tool_call(ctx, ToolCall(tool, use.input, approved_by))
        log.info("tool %s → %s", use.name, "error" if outcome.is_error else "ok")
        return outcome

    async def _handoff_step(self, state: RunState, speaker: Speaker, handoff: Handoff) -> _Step:
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
        await escalate(
            self.storage, speaker, self.team, state.agent, state.place, state.run_id, why
        )
        return _Step("escalated", state, error=why)

    async def _ask_approval(self, state: RunState, speaker: Speaker, use: ToolUse) -> None:
        agent = self.team.agent(state.agent)
        args = json.dumps(use.input, ensure_ascii=False)
        summary = f"{agent.display_name} wants to run `{use.name}` with {args}"
        place = state.place
        record = await self.storage.approvals.create(
            kind="tool",
            agent=state.agent,
            summary=summary,
            run_id=state.run_id,
            platform=place.platform,
            channel=place.channel,
            thread=place.thread,
            state=state.to_json(),
        )
        # The thread is this agent's while it waits: follow-ups come to it, not the router.
        await speaker.say(
            place,
            Reply(
                state.agent,
                f"{summary}. Waiting for approval ({record.id}).",
                kind="approval",
                run_id=state.run_id,
                approval_id=record.id,
            ),
            owner=state.agent,
        )

    async def _answer(self, state: RunState, speaker: Speaker, completion: Completion) -> _Step:
        """Post the agent's answer; the thread is the agent's from now on."""
        text = completion.text
        if completion.stop_reason in TRUNCATED:
            text += "\n\n_(This answer was cut off at the model's length limit.)_"
        text = text or f"{self._name(state.agent)} has nothing to add."
        reply = Reply(state.agent, text, kind="answer", run_id=state.run_id)
        await speaker.say(state.place, reply, owner=state.agent)
        return _Step("ok", state, answer=text)

    async def _refused(self, state: RunState, speaker: Speaker, refused: CallRefused) -> None:
        """Tell the thread why the call was not made; ask the approvers when the refusal
        asks for a decision (a budget: once a day, with a button to raise it)."""
        place = state.place
        ask = refused.ask
        if ask is None:
            reply = Reply(state.agent, refused.notice, kind="notice", run_id=state.run_id)
            await speaker.say(place, reply)
            return
        record = await self.storage.approvals.create(
            kind=ask.kind,
            agent=state.agent,
            summary=ask.summary,
            run_id=state.run_id,
            platform=place.platform,
            channel=place.channel,
            thread=place.thread,
            state=dict(ask.payload),
        )
        who = self.team.approver_mentions() or "an approver"
        text = (
            f"{refused.notice} {ask.summary} {who}: approve to raise it, reject to keep it "
            f"stopped ({record.id})."
        )
        reply = Reply(
            state.agent, text, kind="approval", run_id=state.run_id, approval_id=record.id
        )
        await speaker.say(place, reply)

    def _name(self, handle: str) -> str:
        agent = self.team.agents.get(handle)
        return agent.display_name if agent else handle

    async def _fail(self, state: RunState, speaker: Speaker, why: str) -> None:
        """Tell the thread the run failed and ask a human, in one message."""
        name = self._name(state.agent)
        await escalate(
            self.storage,
            speaker,
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


def _not_granted(name: str, toolset: Toolset) -> Tool:
    """A stand-in for a tool ``name`` the agent was not given: calling it tells the model
    which tools it has."""
    have = ", ".join(sorted(toolset.tools)) or "none"

    async def refuse(ctx: ToolContext, args: Mapping[str, Any]) -> ToolOutcome:
        return ToolOutcome(f"You do not have the tool `{name}`; your tools are: {have}.", True)

    return Tool(name, "", {}, refuse)


def _counted(state: RunState, completion: Completion) -> RunState:
    """The run with one more model call counted: its tokens and cost."""
    usage = completion.usage
    cost = completion.cost_usd
    return replace(
        state,
        step=state.step + 1,
        model=completion.model,
        tokens_in=state.tokens_in + completion.tokens_in,
        tokens_out=state.tokens_out + completion.tokens_out,
        cache_read=state.cache_read + usage.cache_read,
        cache_write=state.cache_write + usage.cache_write,
        cost_usd=None if state.cost_usd is None or cost is None else state.cost_usd + cost,
    )


def _done(state: RunState, result: ToolResult) -> RunState:
    """The first pending call has run; keep its result."""
    return replace(state, pending=state.pending[1:], results=(*state.results, result))


def _skip_rest(state: RunState, why: str) -> RunState:
    """Answer every pending call with ``why`` instead of running it."""
    skipped = tuple(ToolResult(u.id, why, is_error=True) for u in state.pending)
    return replace(state, pending=(), results=(*state.results, *skipped))


def _with_user_text(messages: list[ChatMessage], text: str) -> list[ChatMessage]:
    if messages and messages[-1].role == "user":
        last = messages[-1]
        return [*messages[:-1], ChatMessage("user", (*last.content, TextBlock(text)))]
    return [*messages, ChatMessage.user(text)]
