"""Provider-neutral values of a model conversation.

The runtime speaks only these; each provider module translates them to and from its SDK.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from corral.agents.llm.usage import RateInfo, Usage


@dataclass(frozen=True)
class TextBlock:
    text: str


@dataclass(frozen=True)
class ToolUse:
    """The model asks to call a tool."""

    id: str
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class ToolResult:
    """What a tool call gave back, sent to the model on the next step."""

    tool_use_id: str
    content: str
    is_error: bool = False


Block = TextBlock | ToolUse | ToolResult


@dataclass(frozen=True)
class ChatMessage:
    role: Literal["user", "assistant"]
    content: tuple[Block, ...]

    @staticmethod
    def user(text: str) -> ChatMessage:
        return ChatMessage("user", (TextBlock(text),))

    @staticmethod
    def assistant(text: str) -> ChatMessage:
        return ChatMessage("assistant", (TextBlock(text),))


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the model sees it: name, description, JSON schema of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class Request:
    system: str
    messages: tuple[ChatMessage, ...]
    tools: tuple[ToolSpec, ...] = ()
    #: When set, the model must call this tool (used by the router for a structured choice).
    force_tool: str | None = None
    max_tokens: int = 4096


@dataclass(frozen=True)
class Completion:
    blocks: tuple[TextBlock | ToolUse, ...]
    #: "provider/model" that produced it.
    model: str
    tokens_in: int = 0
    tokens_out: int = 0
    stop_reason: str = ""
    #: Tokens by kind, cached ones included (``tokens_in`` is ``usage.input_total``).
    usage: Usage = field(default_factory=Usage)
    #: The provider's rate-limit headers on the response.
    rate: RateInfo = field(default_factory=RateInfo)
    #: What the call cost in US dollars, once the cost wrapper priced it; None: unknown.
    cost_usd: float | None = None

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.blocks if isinstance(b, TextBlock)).strip()

    @property
    def tool_uses(self) -> list[ToolUse]:
        return [b for b in self.blocks if isinstance(b, ToolUse)]


@dataclass
class ModelError(Exception):
    """A provider call failed. ``retryable`` errors (429, 5xx, connection) are retried."""

    model: str
    message: str
    status: int | None = None
    retryable: bool = False
    retry_after: float | None = None
    #: The provider's rate-limit headers on the error response.
    rate: RateInfo = field(default_factory=RateInfo)
    #: Not sent: the model is cooling down after an error (for every process), and is
    #: tried again after ``retry_after``.
    cooling: bool = False

    def __str__(self) -> str:
        status = f" ({self.status})" if self.status else ""
        return f"{self.model}{status}: {self.message}"


#: What reading an answer of the wrong shape raises: the SDKs build their objects from the
#: JSON without checking it, so a missing field is an AttributeError or a TypeError only
#: when it is read; bad UTF-8 and broken JSON are ValueErrors.
MALFORMED_ANSWER = (ValueError, TypeError, AttributeError, KeyError, IndexError)


def malformed_answer(model: str) -> ModelError:
    """The error for an answer that is no well-formed response (a proxy's error page, a
    truncated body, JSON of another shape): retried, then another model is tried."""
    return ModelError(model, "the answer was not a well-formed response", retryable=True)


@dataclass
class AllModelsFailed(Exception):
    """Every model of a fallback chain failed; ``errors`` says how, in order."""

    errors: list[ModelError] = field(default_factory=list)

    def __str__(self) -> str:
        return "; ".join(str(e) for e in self.errors) or "no model was tried"


@dataclass
class NoModelConfigured(Exception):
    """No provider of the chain has credentials; ``hint`` says what to set."""

    spec: str
    hint: str

    def __str__(self) -> str:
        return f"no model is configured for `{self.spec}`: {self.hint}"


class Provider(Protocol):
    """One provider's SDK client (Anthropic, OpenAI or an OpenAI-compatible server)."""

    name: str

    async def complete(self, model: str, request: Request) -> Completion:
        """One model call; raises :class:`ModelError`."""
        ...


#: One call of one model (a provider's ``model``) with a request: how a chain tries each
#: model, through the model-call seam's wrappers.
Attempt = Callable[[Provider, str, Request], Awaitable[Completion]]


class ModelClient(Protocol):
    """What the runtime calls: a tier or model, with retries and fallbacks inside."""

    async def complete(self, request: Request, attempt: Attempt | None = None) -> Completion:
        """Each model tried through ``attempt`` (by default: the provider directly).
        Raises :class:`AllModelsFailed` or :class:`NoModelConfigured`."""
        ...
