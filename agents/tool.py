"""Tools as objects: what a tool is (name, description, schema, what it does, its policy),
the registry that says which tools exist, and the toolset each agent gets at start.

Built-in tools (:mod:`corral.agents.builtin_tools`) and tools known only at connect time
(an MCP server's) are the same type; the team loader checks ``tools:`` against a registry,
not against a table of its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from corral.agents.conversation import Place
from corral.agents.llm.types import ToolSpec

if TYPE_CHECKING:
    from corral.agents.speech import Speaker
    from corral.agents.team import AgentConfig, Team
    from corral.storage.store import Storage

#: What a call changes beyond the run: nothing, the run's own thread, or the world outside
#: it (another channel, a schedule, a company system).
SideEffect = Literal["none", "thread", "outside"]

#: The word in ``approval:`` that makes tools with side effects outside the thread wait
#: for a human once the run has read untrusted content.
UNTRUSTED = "untrusted"

#: What a call's result carries: ``status``, Corral's own account of what the call did;
#: ``quoted``, content from outside the team's configuration that the tool has quoted
#: itself (``recall``: memories and tasks); ``data``, anything else from outside (an MCP
#: server's or a company function's answer), quoted by the tool-call seam.
ToolOutput = Literal["status", "quoted", "data"]


@dataclass(frozen=True)
class Handoff:
    """A request from one agent to pass the work to another."""

    to: str
    task: str
    #: The model tier the next agent should use for it ("" : its own model).
    tier: str = ""


@dataclass(frozen=True)
class ToolOutcome:
    """What a tool call gave back to the model, and what it asks the runtime to do:
    hand the work over, or wait for a human's approval before the call runs."""

    content: str
    is_error: bool = False
    handoff: Handoff | None = None
    waits_for_approval: bool = False
    #: The result carries content the run may not trust (:mod:`corral.agents.untrusted`).
    untrusted: bool = False


class ToolError(Exception):
    """A tool call the model can correct: the message goes back to it as the result."""


@dataclass(frozen=True)
class ToolContext:
    """Everything a tool call may touch, for one agent's run in one thread."""

    team: Team
    handle: str
    place: Place
    run_id: str
    storage: Storage
    #: Posts (and records) what the tool says, under the agent's persona.
    speaker: Speaker
    toolset: Toolset
    #: The run has read content it may not trust (:mod:`corral.agents.untrusted`).
    untrusted: bool = False


Invoke = Callable[[ToolContext, Mapping[str, Any]], Awaitable[ToolOutcome]]


@dataclass(frozen=True)
class Tool:
    """One tool as the model sees it (name, description, JSON schema) and what it does."""

    name: str
    description: str
    schema: Mapping[str, Any]
    invoke: Invoke
    side_effect: SideEffect = "none"
    output: ToolOutput = "data"

    def spec(self) -> ToolSpec:
        """The tool as it is offered to a model."""
        return ToolSpec(self.name, self.description, dict(self.schema))


@dataclass(frozen=True)
class Toolset:
    """The tools one agent may call, which of them wait for a human each time, and
    whether its tools with side effects outside the thread wait once the run has read
    untrusted content (``untrusted`` in ``approval:``)."""

    tools: Mapping[str, Tool]
    approval: frozenset[str] = frozenset()
    after_untrusted: bool = False

    def specs(self) -> tuple[ToolSpec, ...]:
        """What the model is offered, in a stable order."""
        return tuple(self.tools[name].spec() for name in sorted(self.tools))

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, if this agent has it."""
        return self.tools.get(name)

    def needs_approval(self, name: str, *, untrusted: bool = False) -> bool:
        """Whether a call of ``name`` waits for a human's approval: always, or (for a tool
        with side effects outside the thread) in a run that has read ``untrusted`` content."""
        if name in self.approval:
            return True
        tool = self.tools.get(name)
        return (
            untrusted
            and self.after_untrusted
            and tool is not None
            and tool.side_effect == "outside"
        )


@dataclass(frozen=True)
class ToolRegistry:
    """Every tool that exists, by name, and the shorthands ``tools:`` may use for several
    (``memory`` for ``remember`` and ``recall``). One place says which tools exist."""

    tools: Mapping[str, Tool]
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def names(self) -> tuple[str, ...]:
        """What a ``tools:`` entry may say: the shorthands, then the tools."""
        return (*self.aliases, *self.tools)

    def expand(self, entries: Iterable[str]) -> frozenset[str]:
        """The tool names ``entries`` stand for, shorthands expanded."""
        names: set[str] = set()
        for entry in entries:
            names.update(self.aliases.get(entry, (entry,)))
        return frozenset(names)

    def with_tools(self, *tools: Tool) -> ToolRegistry:
        """This registry and ``tools`` (a later tool of the same name replaces one)."""
        return ToolRegistry({**self.tools, **{t.name: t for t in tools}}, self.aliases)

    def toolset(self, agent: AgentConfig) -> Toolset:
        """The tools ``agent`` lists, with its ``approval:`` policy. Names the registry
        does not know are left out (the loader has refused them already)."""
        names = self.expand(agent.tools)
        tools = {name: self.tools[name] for name in names if name in self.tools}
        approval = self.expand(agent.approval) & frozenset(tools)
        return Toolset(tools, approval, UNTRUSTED in agent.approval)

    def toolsets(self, team: Team) -> dict[str, Toolset]:
        """Every agent's toolset, by handle."""
        return {handle: self.toolset(agent) for handle, agent in team.agents.items()}
