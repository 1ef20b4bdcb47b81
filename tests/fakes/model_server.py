"""A local stand-in for Anthropic's Messages API and OpenAI's Chat Completions.

The real SDK clients talk to it over HTTP: point ``ANTHROPIC_BASE_URL`` at
``server.anthropic_url`` and ``OPENAI_BASE_URL`` at ``server.openai_url`` (``server.env()``
gives all four variables), or pass those URLs as ``base_url``. Every request is recorded in
``server.requests``. Answers are scripted per model, first in first out::

    async with FakeModelServer() as server:
        server.script("claude-haiku-4-5", CallTool("recall", {"query": "deploys"}), Reply("Done."))
        server.fail_always("gpt-5-mini", 529)

For a test that drives a subprocess, run it on a thread of its own::

    with FakeModelServer.in_thread() as server:
        subprocess.run([...], env={**os.environ, **server.env()})

With nothing scripted a model answers ``"[<model>] <last user text>"``, or, when the request
forces a tool, calls it with the arguments ``server.router_rule`` builds from the request.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .local_server import LocalServer


@dataclass(frozen=True)
class Reply:
    """The model answers with this text."""

    text: str
    #: The answer stopped at its token limit (Anthropic `max_tokens`, OpenAI `length`).
    truncated: bool = False


@dataclass(frozen=True)
class CallTool:
    """The model calls a tool."""

    name: str
    input: dict[str, Any] = field(default_factory=dict)
    #: Chat Completions only: send this text as the arguments instead of ``input`` as JSON,
    #: to play a model that writes broken JSON.
    raw_arguments: str | None = None


@dataclass(frozen=True)
class Fail:
    """The API answers with an error status, in the provider's own error body."""

    status: int
    #: Sent as the ``retry-after`` header: seconds, or an HTTP date.
    retry_after: float | str | None = None
    message: str = "scripted failure"


@dataclass(frozen=True)
class CallTools:
    """The model calls several tools in one answer."""

    calls: tuple[CallTool, ...]


@dataclass(frozen=True)
class Hang:
    """The model never answers: the request waits until its client goes away (a process
    killed mid-call), and takes nothing else from the script."""


@dataclass(frozen=True)
class Delay:
    """The model answers ``answer`` after ``seconds``."""

    seconds: float
    answer: Reply | CallTool | CallTools


Scripted = Reply | CallTool | CallTools | Fail | Hang | Delay

#: Builds a forced tool's arguments from the request body (either API's shape).
RouterRule = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the server received it; header names are lower-case."""

    path: str
    json: dict[str, Any]
    headers: dict[str, str]

    @property
    def model(self) -> str:
        return str(self.json.get("model", ""))


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the latest user message that has any, in either API's shape."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") != "user":
            continue
        text = _text_of(message.get("content"))
        if text:
            return text
    return ""


def system_text(body: dict[str, Any]) -> str:
    """The system prompt: Anthropic's ``system`` field or OpenAI's system messages."""
    parts = [_text_of(body.get("system"))]
    parts += [
        _text_of(m.get("content")) for m in body.get("messages", []) if m.get("role") == "system"
    ]
    return "\n".join(p for p in parts if p)


def forced_tool(body: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """``(name, definition)`` of the tool the request forces, if it forces one.

    The definition is normalised to ``{"description": …, "parameters": <JSON schema>}``.
    """
    choice = body.get("tool_choice")
    if not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":  # Anthropic
        name = str(choice.get("name"))
    elif choice.get("type") == "function":  # OpenAI
        name = str(choice.get("function", {}).get("name"))
    else:
        return None
    definition = _tool_definitions(body).get(name)
    return None if definition is None else (name, definition)


def _tool_definitions(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    definitions = {}
    for tool in body.get("tools", []):
        spec = tool.get("function", tool)  # OpenAI nests the definition under "function"
        definitions[spec.get("name")] = {
            "description": spec.get("description", ""),
            "parameters": spec.get("input_schema", spec.get("parameters", {})),
        }
    return definitions


#: Words too common to tell one agent's role from another's.
_COMMON_WORDS = (
    "about after also answers asks from general have into just like more only other over "
    "questions some such than that their them then there these they this what when which with "
    "work works your"
)


def default_router_rule(body: dict[str, Any]) -> dict[str, Any]:
    """Picks from the forced tool's ``agent`` enum by what the last user message says.

    The first agent named in the message wins; else the first whose role words (the words
    next to its name in the system prompt or the tool's descriptions) appear in it; else
    the first agent listed. Returns ``{"agent": …, "reason": …}``, or ``{}`` when the tool
    has no ``agent`` enum.
    """
    tool = forced_tool(body)
    if tool is None:
        return {}
    schema = tool[1]["parameters"]
    agent_property = schema.get("properties", {}).get("agent", {})
    agents: list[str] = agent_property.get("enum", [])
    if not agents:
        return {}
    said = set(re.findall(r"[a-z0-9_-]+", last_user_text(body).lower()))
    for agent in agents:
        if agent.lower() in said:
            return {"agent": agent, "reason": f"the message names {agent}"}
    context = "\n".join(
        [system_text(body), tool[1]["description"], agent_property.get("description", "")]
    )
    names = {a.lower() for a in agents}
    for agent in agents:
        for word in _role_words(agent, context) - names:
            if word in said:
                return {"agent": agent, "reason": f"'{word}' in the message fits {agent}'s role"}
    return {"agent": agents[0], "reason": "no agent fits the message better; first listed"}


def _role_words(agent: str, context: str) -> set[str]:
    lines = [line for line in context.splitlines() if agent.lower() in line.lower()]
    words = set(re.findall(r"[a-z]{4,}", "\n".join(lines).lower()))
    return words.difference(_COMMON_WORDS.split())


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""


class FakeModelServer(LocalServer):
    """Anthropic and OpenAI chat APIs on 127.0.0.1, on a free port, scripted per model.

    Use it as an async context manager in the test's event loop, or with
    :meth:`in_thread` from synchronous code. Scripting and inspection are thread-safe.
    """

    def __init__(self, router_rule: RouterRule = default_router_rule) -> None:
        super().__init__()
        self.router_rule = router_rule
        #: Seconds every answer waits before it is sent, to play a model's latency.
        self.latency = 0.0
        self._lock = threading.Lock()
        self._scripts: defaultdict[str, deque[Scripted]] = defaultdict(deque)
        self._dead: dict[str, int] = {}
        self._requests: list[ReceivedRequest] = []
        self._counts: Counter[str] = Counter()
        self._ids = iter(range(1, 1_000_000))
        self._hanging = 0

    @property
    def anthropic_url(self) -> str:
        """Base URL for the Anthropic SDK (it adds ``/v1/messages``)."""
        return self.url

    @property
    def openai_url(self) -> str:
        """Base URL for the OpenAI SDK (it adds ``/chat/completions``)."""
        return f"{self.url}/v1"

    def env(self, providers: Iterable[str] = ("anthropic", "openai")) -> dict[str, str]:
        """Environment variables that point the SDKs of ``providers`` at this server."""
        variables = {
            "anthropic": {"ANTHROPIC_BASE_URL": self.anthropic_url, "ANTHROPIC_API_KEY": "fake"},
            "openai": {"OPENAI_BASE_URL": self.openai_url, "OPENAI_API_KEY": "fake"},
        }
        return {k: v for p in providers for k, v in variables[p].items()}

    def script(self, model: str, *responses: Scripted) -> None:
        """Queue answers for ``model``; each request takes the next one."""
        with self._lock:
            self._scripts[model].extend(responses)

    def fail_always(self, model: str, status: int = 500) -> None:
        """Make every request to ``model`` fail with ``status``."""
        with self._lock:
            self._dead[model] = status

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[ReceivedRequest]:
        """The requests that named ``model``."""
        return [r for r in self.requests if r.model == model]

    def count(self, model: str) -> int:
        """How many requests named ``model``, failed ones included."""
        with self._lock:
            return self._counts[model]

    @property
    def hanging(self) -> int:
        """How many requests wait on a scripted :class:`Hang` now."""
        with self._lock:
            return self._hanging

    async def _play(self, request: web.Request, answer: Scripted) -> Scripted | None:
        """Play a :class:`Hang` (None: the client went away) or a :class:`Delay`."""
        if isinstance(answer, Delay):
            await asyncio.sleep(answer.seconds)
            return answer.answer
        if not isinstance(answer, Hang):
            return answer
        with self._lock:
            self._hanging += 1
        try:
            while request.transport is not None and not request.transport.is_closing():
                await asyncio.sleep(0.02)
        finally:
            with self._lock:
                self._hanging -= 1
        return None

    def _add_routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/v1/chat/completions", self._openai)

    async def _anthropic(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.latency:
            await asyncio.sleep(self.latency)
        played = await self._play(request, self._answer(request, body, _anthropic_problem(body)))
        if played is None:
            return web.Response(status=499)
        answer = played
        model = body.get("model", "")
        if isinstance(answer, Fail):
            error = {"type": _ANTHROPIC_ERRORS.get(answer.status, "api_error")}
            return _error({"type": "error", "error": {**error, "message": answer.message}}, answer)
        if isinstance(answer, Reply):
            content: list[dict[str, Any]] = [{"type": "text", "text": answer.text}]
            stop_reason = "max_tokens" if answer.truncated else "end_turn"
        else:
            content = [
                {
                    "type": "tool_use",
                    "id": f"toolu_fake{next(self._ids)}",
                    "name": call.name,
                    "input": call.input,
                }
                for call in _calls(answer)
            ]
            stop_reason = "tool_use"
        return web.json_response(
            {
                "id": f"msg_fake{next(self._ids)}",
                "type": "message",
                "role": "assistant",
                "model": model,
                "content": content,
                "stop_reason": stop_reason,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": _tokens(body.get("system"), body.get("messages")),
                    "output_tokens": _tokens(content),
                },
            }
        )

    async def _openai(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.latency:
            await asyncio.sleep(self.latency)
        played = await self._play(request, self._answer(request, body, _openai_problem(body)))
        if played is None:
            return web.Response(status=499)
        answer = played
        model = body.get("model", "")
        if isinstance(answer, Fail):
            error = {"type": _OPENAI_ERRORS.get(answer.status, "server_error"), "param": None}
            return _error({"error": {**error, "message": answer.message, "code": None}}, answer)
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(answer, Reply):
            message["content"] = answer.text
            finish_reason = "length" if answer.truncated else "stop"
        else:
            message["tool_calls"] = [
                {
                    "id": f"call_fake{next(self._ids)}",
                    "type": "function",
                    "function": {
                        "name": call.name,
                        "arguments": call.raw_arguments or json.dumps(call.input),
                    },
                }
                for call in _calls(answer)
            ]
            finish_reason = "tool_calls"
        prompt_tokens, completion_tokens = _tokens(body.get("messages")), _tokens(message)
        return web.json_response(
            {
                "id": f"chatcmpl-fake{next(self._ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": finish_reason,
                        "logprobs": None,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )

    def _answer(self, request: web.Request, body: dict[str, Any], problem: str | None) -> Scripted:
        """Record the request, then pick its answer: invalid, dead, scripted or default."""
        model = str(body.get("model", ""))
        headers = {k.lower(): v for k, v in request.headers.items()}
        with self._lock:
            self._requests.append(ReceivedRequest(request.path, body, headers))
            self._counts[model] += 1
            if problem is not None:
                return Fail(400, message=problem)
            if model in self._dead:
                return Fail(self._dead[model], message=f"{model} is unavailable")
            if self._scripts[model]:
                return self._scripts[model].popleft()
        tool = forced_tool(body)
        if tool is not None:
            return CallTool(tool[0], self.router_rule(body))
        return Reply(f"[{model}] {last_user_text(body)[:200]}")


_ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
_OPENAI_ERRORS = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    429: "rate_limit_exceeded",
}


def _error(body: dict[str, Any], failure: Fail) -> web.Response:
    headers = {} if failure.retry_after is None else {"retry-after": str(failure.retry_after)}
    return web.json_response(body, status=failure.status, headers=headers)


def _calls(answer: CallTool | CallTools) -> tuple[CallTool, ...]:
    return answer.calls if isinstance(answer, CallTools) else (answer,)


def _tokens(*parts: Any) -> int:
    # A rough, deterministic count: enough for tests of usage and budgets.
    return max(1, len(json.dumps(parts).split()))


def _anthropic_problem(body: dict[str, Any]) -> str | None:
    """What the real API would reject in the request, in the parts Corral uses."""
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    if not body.get("messages"):
        return "messages: at least one message is required"
    previous_ids: set[str] = set()
    for message in body["messages"]:
        blocks = message["content"] if isinstance(message["content"], list) else []
        for block in blocks:
            if block.get("type") == "tool_result" and block.get("tool_use_id") not in previous_ids:
                return f"tool_result {block.get('tool_use_id')} has no tool_use just before it"
        previous_ids = {b["id"] for b in blocks if b.get("type") == "tool_use"}
    return _forced_tool_problem(body)


def _openai_problem(body: dict[str, Any]) -> str | None:
    """What the real API would reject in the request, in the parts Corral uses."""
    if not body.get("messages"):
        return "messages: at least one message is required"
    call_ids: set[str] = set()
    for message in body["messages"]:
        if message["role"] == "tool":
            if message.get("tool_call_id") not in call_ids:
                return f"tool message {message.get('tool_call_id')} answers no preceding tool_calls"
        else:
            call_ids = {c["id"] for c in message.get("tool_calls") or []}
    return _forced_tool_problem(body)


def _forced_tool_problem(body: dict[str, Any]) -> str | None:
    choice = body.get("tool_choice")
    names_a_tool = isinstance(choice, dict) and choice.get("type") in ("tool", "function")
    if names_a_tool and forced_tool(body) is None:
        return "tool_choice names a tool that is not in tools"
    return None
