"""A run in progress as a serialisable value, so a run paused for approval can be stored
and resumed later, in another process (and by a later version of Corral)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from corral.agents.conversation import Place
from corral.agents.llm.types import Block, ChatMessage, TextBlock, ToolResult, ToolUse

#: The format :meth:`RunState.to_json` writes. Runs paused by an earlier Corral are read
#: by :meth:`RunState.from_json` for as long as their format is listed in its comments:
#: 1 is the first stamped format; unstamped states (before 1) have no ``task_id``; 2
#: adds the run's cost, cached tokens, priority and model choice (absent before: none);
#: 3 adds whether the run has read untrusted content (not known before: assumed so).
FORMAT = 3


class UnknownRunFormat(ValueError):
    """A paused run written by a newer Corral than this one."""


@dataclass(frozen=True)
class RunState:
    """Where one agent's turn stands between two model calls."""

    run_id: str
    agent: str
    place: Place
    route_reason: str
    #: The text the turn answers (used for memory recall).
    query: str
    messages: tuple[ChatMessage, ...]
    step: int = 0
    #: Handoffs already made for the message that started the chain.
    depth: int = 0
    #: Handles of the agents in the handoff chain so far, this one last.
    chain: tuple[str, ...] = ()
    inbox_id: str | None = None
    tokens_in: int = 0
    tokens_out: int = 0
    model: str = ""
    #: Tool calls of the last model answer still to run, and results of those already run.
    pending: tuple[ToolUse, ...] = ()
    results: tuple[ToolResult, ...] = field(default=())
    #: The task record this run works on, when another agent handed the work over.
    task_id: int | None = None
    #: Tokens read from and written to the prompt cache, over the run's model calls.
    cache_read: int = 0
    cache_write: int = 0
    #: What the run's model calls cost in US dollars; None once one had no known price.
    cost_usd: float | None = 0.0
    #: How urgent its model calls are (``model_calls.PERSON`` or ``BACKGROUND``).
    priority: int = 0
    #: The model spec the run calls (a tier or provider/model), when it is not the
    #: agent's own ``model:`` (``auto`` picked a tier, a fire or a handoff named one).
    model_spec: str = ""
    #: Why that spec: "auto: complex — …", empty when the agent's own model is used.
    model_choice: str = ""
    #: The run has read content it may not trust (:mod:`corral.agents.untrusted`).
    untrusted: bool = False

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (stored with the approval it waits for)."""
        return {
            "format": FORMAT,
            "run_id": self.run_id,
            "agent": self.agent,
            "place": [
                self.place.platform,
                self.place.channel,
                self.place.thread,
                self.place.channel_name,
            ],
            "route_reason": self.route_reason,
            "query": self.query,
            "messages": [
                {"role": m.role, "content": [_block_to_json(b) for b in m.content]}
                for m in self.messages
            ],
            "step": self.step,
            "depth": self.depth,
            "chain": list(self.chain),
            "inbox_id": self.inbox_id,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "model": self.model,
            "pending": [_block_to_json(u) for u in self.pending],
            "results": [_block_to_json(r) for r in self.results],
            "task_id": self.task_id,
            "cache_read": self.cache_read,
            "cache_write": self.cache_write,
            "cost_usd": self.cost_usd,
            "priority": self.priority,
            "model_spec": self.model_spec,
            "model_choice": self.model_choice,
            "untrusted": self.untrusted,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> RunState:
        """The inverse of :meth:`to_json`, for this format and every earlier one."""
        version = data.get("format", 0)
        if not isinstance(version, int) or version > FORMAT:
            raise UnknownRunFormat(
                f"this run was paused by a newer Corral (format {version}; this one reads up "
                f"to {FORMAT}): decide it with that version"
            )
        pending = tuple(_block_from_json(b) for b in data["pending"])
        results = tuple(_block_from_json(b) for b in data["results"])
        return RunState(
            run_id=data["run_id"],
            agent=data["agent"],
            place=Place(*data["place"]),
            route_reason=data["route_reason"],
            query=data["query"],
            messages=tuple(
                ChatMessage(m["role"], tuple(_block_from_json(b) for b in m["content"]))
                for m in data["messages"]
            ),
            step=data["step"],
            depth=data["depth"],
            chain=tuple(data["chain"]),
            inbox_id=data["inbox_id"],
            tokens_in=data["tokens_in"],
            tokens_out=data["tokens_out"],
            model=data["model"],
            pending=tuple(u for u in pending if isinstance(u, ToolUse)),
            results=tuple(r for r in results if isinstance(r, ToolResult)),
            # Format 0 (unstamped) runs may be older than tasks, and have none.
            task_id=data.get("task_id"),
            # Format 1 and earlier kept no cost: what was spent before the pause is not
            # known, so neither is the run's.
            cache_read=data.get("cache_read", 0),
            cache_write=data.get("cache_write", 0),
            cost_usd=data.get("cost_usd") if version >= 2 else None,
            priority=data.get("priority", 0),
            model_spec=data.get("model_spec", ""),
            model_choice=data.get("model_choice", ""),
            untrusted=data.get("untrusted", version < 3),
        )


def _block_to_json(block: Block) -> dict[str, Any]:
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUse):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }


def _block_from_json(data: dict[str, Any]) -> Block:
    kind = data["type"]
    if kind == "text":
        return TextBlock(data["text"])
    if kind == "tool_use":
        return ToolUse(data["id"], data["name"], dict(data["input"]))
    return ToolResult(data["tool_use_id"], data["content"], bool(data["is_error"]))
