"""Content a run may not trust, and how a run knows it has read some.

Untrusted content is anything that came neither from the team's configuration nor from
the person who asked, nor was the agent's own words: a message in the thread from another
person or another agent, a memory, and a tool result that carries outside content
(:data:`~corral.agents.tool.ToolOutput`). It reaches the model quoted as data; and once a
run has read some, an agent with ``untrusted`` in ``approval:`` waits for a human before
each call of a tool whose effects reach outside the thread
(:meth:`~corral.agents.tool.Toolset.needs_approval`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from corral.agents.prompt import quote_attribute, quote_text
from corral.agents.tool import Tool, ToolOutcome
from corral.storage.transcript import TranscriptEntry


def quoted_result(tool: Tool, outcome: ToolOutcome) -> ToolOutcome:
    """``outcome`` as the model should see it, marked untrusted when it carries outside
    content: a ``data`` result quoted in a ``<tool_result>`` element, a ``quoted`` one as
    the tool quoted it, a ``status`` one as it is. What it asks of the runtime (a handoff,
    a wait for approval) is kept."""
    if tool.output == "status" or outcome.waits_for_approval:
        return outcome
    content = outcome.content
    if tool.output == "data":
        name = quote_attribute(tool.name)
        content = f'<tool_result tool="{name}">\n{quote_text(content)}\n</tool_result>'
    return replace(outcome, content=content, untrusted=True)


def thread_is_untrusted(entries: Sequence[TranscriptEntry], handle: str) -> bool:
    """Whether the thread ``entries`` (oldest first, ending with what the run answers)
    hold a message from someone other than the asker and ``handle`` itself: another
    agent, or a person other than the one who wrote the newest person's message.

    People are told apart by the name the transcript keeps for them."""
    people = [e.user for e in entries if not e.agent]
    asker = people[-1] if people else None
    return any(
        (e.agent and e.agent != handle) or (not e.agent and e.user != asker) for e in entries
    )
