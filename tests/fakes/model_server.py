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

Every answer reports its usage (``Reply(text, usage=Usage(...))`` or ``server.cache(...)``
script it) and, for a model given limits, enforces them the way the providers do::

    server.limit("claude-haiku-4-5", requests_per_minute=50, output_tokens_per_minute=10_000)

A request that would exceed a limit within the sliding window gets a 429 with
``retry-after`` and the provider's rate-limit headers, which every answer carries too.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from corral.agents.llm.usage import Usage

from .local_server import LocalServer
from .sliding_window import Arrival, SlidingWindow


@dataclass(frozen=True)
class Reply:
    """The model answers with this text."""

    text: str
    #: The answer stopped at its token limit (Anthropic `max_tokens`, OpenAI `length`).
    truncated: bool = False
    #: The usage to report instead of the counted one (and :meth:`FakeModelServer.cache`).
    usage: Usage | None = None


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
    #: More response headers (the rate-limit headers, say); they win over the server's own.
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CallTools:
    """The model calls several tools in one answer."""

    calls: tuple[CallTool, ...]


@dataclass(frozen=True)
class Raw:
    """The API answers with exactly this body and status: a malformed or truncated
    answer, a proxy's HTML error page, JSON of the wrong shape."""

    body: bytes
    status: int = 200
    content_type: str = "application/json"


@dataclass(frozen=True)
class Hang:
    """The model never answers: the request waits until its client goes away (a process
    killed mid-call), and takes nothing else from the script."""


@dataclass(frozen=True)
class Delay:
    """The model answers ``answer`` after ``seconds``."""

    seconds: float
    answer: Reply | CallTool | CallTools


Scripted = Reply | CallTool | CallTools | Fail | Hang | Delay | Raw

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
    has no ``agent`` enum. A tool with a ``difficulty`` field gets one too (simple, or
    complex for :data:`COMPLEX_WORDS` and long messages), with a reason.
    """
    tool = forced_tool(body)
    if tool is None:
        return {}
    schema = tool[1]["parameters"]
    rating = _difficulty(body) if "difficulty" in schema.get("properties", {}) else {}
    agent_property = schema.get("properties", {}).get("agent", {})
    agents: list[str] = agent_property.get("enum", [])
    if not agents:
        return rating
    return {**_pick_agent(body, agents, tool, agent_property), **rating}


#: Words that make the fake rate a message complex; so does a message over 25 words.
COMPLEX_WORDS = frozenset(
    [
        "plan",
        "design",
        "refactor",
        "debug",
        "architecture",
        "migrate",
        "investigate",
        "analyse",
        "analyze",
        "write",
    ]
)


def _difficulty(body: dict[str, Any]) -> dict[str, Any]:
    """How hard the fake says the last user message is, and why."""
    words = re.findall(r"[a-z0-9_-]+", last_user_text(body).lower())
    hard = sorted(COMPLEX_WORDS.intersection(words))
    if hard:
        return {"difficulty": "complex", "reason": f"'{hard[0]}' asks for real work"}
    if len(words) > 25:
        return {"difficulty": "complex", "reason": "a long message"}
    return {"difficulty": "simple", "reason": "a short routine message"}


def _pick_agent(
    body: dict[str, Any],
    agents: list[str],
    tool: tuple[str, dict[str, Any]],
    agent_property: dict[str, Any],
) -> dict[str, Any]:
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


@dataclass(frozen=True)
class _Turn:
    """What the server decided for one request at its arrival, to be played when it answers."""

    answer: Scripted
    usage: Usage = field(default_factory=Usage)
    #: The answer in the API's shape (Anthropic content blocks, an OpenAI message) and why
    #: it stopped; None for an answer that is not a model's answer.
    rendered: Any = None
    stop: str = ""
    #: The rate-limit headers of the model's limits, as they stood with this request.
    headers: dict[str, str] = field(default_factory=dict)
    #: Refused by the model's limits: the 429 is sent without the model's latency.
    refused: bool = False


class FakeModelServer(LocalServer):
    """Anthropic and OpenAI chat APIs on 127.0.0.1, on a free port, scripted per model.

    Use it as an async context manager in the test's event loop, or with
    :meth:`in_thread` from synchronous code. Scripting and inspection are thread-safe.
    ``clock`` gives seconds since the epoch: the limits' windows and the reset times of the
    rate-limit headers follow it, so a test can move time on instead of sleeping.
    """

    def __init__(
        self,
        router_rule: RouterRule = default_router_rule,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.router_rule = router_rule
        #: Seconds every answer waits before it is sent, to play a model's latency.
        self.latency = 0.0
        self._clock = clock
        self._lock = threading.Lock()
        self._scripts: defaultdict[str, deque[Scripted]] = defaultdict(deque)
        self._dead: dict[str, int] = {}
        self._requests: list[ReceivedRequest] = []
        self._counts: Counter[str] = Counter()
        self._refused: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peak_in_flight: Counter[str] = Counter()
        # Every model's admitted requests, limited or not, for max_in_window().
        self._windows: defaultdict[str, SlidingWindow] = defaultdict(lambda: SlidingWindow({}))
        self._cache: dict[str, tuple[int, int]] = {}
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

    def limit(
        self,
        model: str,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        window_s: float = 60.0,
    ) -> None:
        """Limit ``model`` as a provider does, over a sliding window of ``window_s`` seconds
        (a minute unless a test wants it shorter); no limit given: unlimited again.

        A request counts at its arrival: one request, its input tokens (cached ones too)
        and the output tokens of the answer it is about to get; ``tokens`` is both. One
        that would overfill any dimension gets a 429 and takes nothing from the script.
        """
        given = {
            "requests": requests_per_minute,
            "tokens": tokens_per_minute,
            "input_tokens": input_tokens_per_minute,
            "output_tokens": output_tokens_per_minute,
        }
        for dimension, value in given.items():
            if value is not None and value < 0:
                raise ValueError(f"{dimension}_per_minute must not be negative")
        limits = {d: value for d, value in given.items() if value is not None}
        with self._lock:
            window = SlidingWindow(limits, window_s)
            # What the model took before counts against its new limits.
            window.arrivals = self._windows[model].arrivals
            self._windows[model] = window

    def cache(self, model: str, *, read: int = 0, write: int = 0) -> None:
        """Report ``read`` tokens read from and ``write`` written to the prompt cache in
        every answer of ``model`` (a :class:`Reply` with ``usage`` still wins).

        They come on top of the prompt's counted tokens, which stay the uncached input.
        OpenAI reports no cache writes: there they are part of ``prompt_tokens``.
        """
        with self._lock:
            self._cache[model] = (read, write)

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

    def peak_in_flight(self, model: str) -> int:
        """The most requests for ``model`` the server was answering at one time."""
        with self._lock:
            return self._peak_in_flight[model]

    def refused(self, model: str) -> int:
        """How many requests to ``model`` its limits refused with a 429."""
        with self._lock:
            return self._refused[model]

    def arrivals(self, model: str) -> list[Arrival]:
        """The requests to ``model`` that its limits admitted: when, and what they counted."""
        with self._lock:
            return list(self._windows[model].arrivals)

    def max_in_window(
        self, model: str, dimension: str = "requests", window_s: float | None = None
    ) -> int:
        """The most of ``dimension`` (``requests``, ``tokens``, ``input_tokens``,
        ``output_tokens``) that ``model`` admitted within any ``window_s`` seconds (default:
        its limits' window, else a minute)."""
        with self._lock:
            return self._windows[model].max_in_window(dimension, window_s)

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
        return await self._serve(request, _AnthropicApi())

    async def _openai(self, request: web.Request) -> web.Response:
        return await self._serve(request, _OpenAIApi())

    async def _serve(self, request: web.Request, api: _Api) -> web.Response:
        body = await request.json()
        turn = self._take(request, body, api)
        model = str(body.get("model", ""))
        with self._lock:
            self._in_flight[model] += 1
            self._peak_in_flight[model] = max(self._peak_in_flight[model], self._in_flight[model])
        try:
            if self.latency and not turn.refused:
                await asyncio.sleep(self.latency)
            played = await self._play(request, turn.answer)
        finally:
            with self._lock:
                self._in_flight[model] -= 1
        if played is None:
            return web.Response(status=499)
        if isinstance(played, Raw):
            return web.Response(
                body=played.body,
                status=played.status,
                content_type=played.content_type,
                headers=turn.headers,
            )
        if isinstance(played, Fail):
            headers = {**turn.headers, **played.headers}
            if played.retry_after is not None:
                headers["retry-after"] = str(played.retry_after)
            return web.json_response(api.error(played), status=played.status, headers=headers)
        response = api.response(body, turn, f"{next(self._ids)}")
        return web.json_response(response, headers=turn.headers)

    def _take(self, request: web.Request, body: dict[str, Any], api: _Api) -> _Turn:
        """Record the request and decide its answer at its arrival: invalid, dead, refused
        by the model's limits, scripted or default."""
        model = str(body.get("model", ""))
        headers = {k.lower(): v for k, v in request.headers.items()}
        problem = api.problem(body)
        with self._lock:
            self._requests.append(ReceivedRequest(request.path, body, headers))
            self._counts[model] += 1
            if problem is not None:
                return _Turn(Fail(400, message=problem))
            if model in self._dead:
                return _Turn(Fail(self._dead[model], message=f"{model} is unavailable"))
            script = self._scripts[model]
            scripted = script[0] if script else None
            cache = self._cache.get(model)
        # The router rule is the test's code: it runs outside the lock, free to inspect.
        answer = scripted if scripted is not None else self._default(body)
        turn = self._render(body, answer, api, cache)
        with self._lock:
            now = self._clock()
            window = self._windows[model]
            refused = window.admit(now, _units(turn.usage))
            rate = api.rate_headers(window, now)
            if refused is not None:
                self._refused[model] += 1
                failure = Fail(
                    429,
                    retry_after=max(1, math.ceil(refused.wait_s)),
                    message=_refusal(model, window, refused.dimensions),
                )
                return _Turn(failure, headers=rate, refused=True)
            if scripted is not None:
                script.popleft()
        return replace(turn, headers=rate)

    def _default(self, body: dict[str, Any]) -> Scripted:
        tool = forced_tool(body)
        if tool is not None:
            return CallTool(tool[0], self.router_rule(body))
        model = str(body.get("model", ""))
        return Reply(f"[{model}] {last_user_text(body)[:200]}")

    def _render(
        self, body: dict[str, Any], answer: Scripted, api: _Api, cache: tuple[int, int] | None
    ) -> _Turn:
        """The answer in the API's shape, and the usage it reports."""
        given = answer.answer if isinstance(answer, Delay) else answer
        prompt = api.prompt_tokens(body)
        if isinstance(given, Fail | Hang | Raw):
            return _Turn(answer, Usage(input=prompt))
        rendered, stop = api.render(given, self._ids)
        if isinstance(given, Reply) and given.usage is not None:
            usage = given.usage
        else:
            read, write = cache or (0, 0)
            usage = Usage(prompt, _tokens(rendered), read, write)
        return _Turn(answer, usage, rendered, stop)


def _units(usage: Usage) -> dict[str, int]:
    """What one request counts against its model's limits, per dimension."""
    return {
        "requests": 1,
        "tokens": usage.input_total + usage.output,
        "input_tokens": usage.input_total,
        "output_tokens": usage.output,
    }


def _refusal(model: str, window: SlidingWindow, dimensions: tuple[str, ...]) -> str:
    limits = ", ".join(f"{window.limits[d]} {d.replace('_', ' ')}" for d in dimensions)
    return (
        f"This request would exceed the rate limit of {model}: {limits} per {window.window_s:g} s"
    )


class _Api(Protocol):
    """What differs between the two APIs the server speaks."""

    def problem(self, body: dict[str, Any]) -> str | None:
        """What the real API would reject in the request."""

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        """The request's input tokens as the server counts them."""

    def render(self, answer: Reply | CallTool | CallTools, ids: Iterator[int]) -> tuple[Any, str]:
        """The answer in the API's shape, and its stop reason."""

    def response(self, body: dict[str, Any], turn: _Turn, response_id: str) -> dict[str, Any]:
        """The response body of an answered turn."""

    def error(self, failure: Fail) -> dict[str, Any]:
        """The API's error body."""

    def rate_headers(self, window: SlidingWindow, now: float) -> dict[str, str]:
        """The API's rate-limit headers for the window's limits at ``now``."""


class _AnthropicApi:
    def problem(self, body: dict[str, Any]) -> str | None:
        return _anthropic_problem(body)

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        return _tokens(body.get("system"), body.get("messages"))

    def render(self, answer: Reply | CallTool | CallTools, ids: Iterator[int]) -> tuple[Any, str]:
        if isinstance(answer, Reply):
            text = [{"type": "text", "text": answer.text}]
            return text, "max_tokens" if answer.truncated else "end_turn"
        calls = [
            {"type": "tool_use", "id": f"toolu_fake{next(ids)}", "name": c.name, "input": c.input}
            for c in _calls(answer)
        ]
        return calls, "tool_use"

    def response(self, body: dict[str, Any], turn: _Turn, response_id: str) -> dict[str, Any]:
        return {
            "id": f"msg_fake{response_id}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", ""),
            "content": turn.rendered,
            "stop_reason": turn.stop,
            "stop_sequence": None,
            "usage": {
                "input_tokens": turn.usage.input,
                "output_tokens": turn.usage.output,
                "cache_read_input_tokens": turn.usage.cache_read,
                "cache_creation_input_tokens": turn.usage.cache_write,
            },
        }

    def error(self, failure: Fail) -> dict[str, Any]:
        kind = _ANTHROPIC_ERRORS.get(failure.status, "api_error")
        return {"type": "error", "error": {"type": kind, "message": failure.message}}

    def rate_headers(self, window: SlidingWindow, now: float) -> dict[str, str]:
        if not window.limits:
            return {}
        remaining, reset = window.remaining(now), window.reset_s(now)
        headers = {}
        for dimension, limit in window.limits.items():
            prefix = f"anthropic-ratelimit-{dimension.replace('_', '-')}"
            headers[f"{prefix}-limit"] = str(limit)
            headers[f"{prefix}-remaining"] = str(remaining[dimension])
            headers[f"{prefix}-reset"] = rfc3339(now + reset[dimension])
        return headers


class _OpenAIApi:
    def problem(self, body: dict[str, Any]) -> str | None:
        return _openai_problem(body)

    def prompt_tokens(self, body: dict[str, Any]) -> int:
        return _tokens(body.get("messages"))

    def render(self, answer: Reply | CallTool | CallTools, ids: Iterator[int]) -> tuple[Any, str]:
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if isinstance(answer, Reply):
            message["content"] = answer.text
            return message, "length" if answer.truncated else "stop"
        message["tool_calls"] = [
            {
                "id": f"call_fake{next(ids)}",
                "type": "function",
                "function": {"name": c.name, "arguments": c.raw_arguments or json.dumps(c.input)},
            }
            for c in _calls(answer)
        ]
        return message, "tool_calls"

    def response(self, body: dict[str, Any], turn: _Turn, response_id: str) -> dict[str, Any]:
        usage = turn.usage
        # OpenAI counts cached tokens inside prompt_tokens and reports no cache writes.
        prompt_tokens = usage.input_total
        return {
            "id": f"chatcmpl-fake{response_id}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", ""),
            "choices": [
                {
                    "index": 0,
                    "message": turn.rendered,
                    "finish_reason": turn.stop,
                    "logprobs": None,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": usage.output,
                "total_tokens": prompt_tokens + usage.output,
                "prompt_tokens_details": {"cached_tokens": usage.cache_read},
            },
        }

    def error(self, failure: Fail) -> dict[str, Any]:
        kind = _OPENAI_ERRORS.get(failure.status, "server_error")
        return {"error": {"type": kind, "param": None, "message": failure.message, "code": None}}

    def rate_headers(self, window: SlidingWindow, now: float) -> dict[str, str]:
        if not window.limits:
            return {}
        remaining, reset = window.remaining(now), window.reset_s(now)
        headers = {}
        # OpenAI reports requests and tokens only; input and output limits go unreported.
        for dimension in ("requests", "tokens"):
            if dimension in window.limits:
                headers[f"x-ratelimit-limit-{dimension}"] = str(window.limits[dimension])
                headers[f"x-ratelimit-remaining-{dimension}"] = str(remaining[dimension])
                headers[f"x-ratelimit-reset-{dimension}"] = go_duration(reset[dimension])
        return headers


def rfc3339(epoch_s: float) -> str:
    """An RFC 3339 UTC time as Anthropic sends it, rounded up to the millisecond."""
    when = datetime.fromtimestamp(math.ceil(epoch_s * 1000) / 1000, UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def go_duration(seconds: float) -> str:
    """A duration as Go prints it and OpenAI sends it (``"20ms"``, ``"6m0s"``,
    ``"1h2m3.5s"``), rounded up to the millisecond."""
    ms = math.ceil(max(seconds, 0.0) * 1000)
    if ms < 1000:
        return f"{ms}ms" if ms else "0s"
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    whole, fraction = divmod(ms, 1000)
    text = f"{whole}.{fraction:03d}".rstrip("0").rstrip(".") + "s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


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
