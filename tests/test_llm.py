"""The model layer through the real Anthropic and OpenAI SDKs, against the fake model server."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any, Protocol, TypeVar

import pytest
from fakes.model_server import CallTool, Fail, FakeModelServer, Reply

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.chain import FallbackChain
from corral.agents.llm.openai_provider import LOCAL_SERVER_API_KEY, OpenAIProvider
from corral.agents.llm.rate_headers import parse_duration, parse_rfc3339_reset, rate_info
from corral.agents.llm.registry import ModelRegistry, ProviderSettings
from corral.agents.llm.retry import RetryPolicy, parse_retry_after
from corral.agents.llm.types import (
    AllModelsFailed,
    ChatMessage,
    Completion,
    ModelError,
    NoModelConfigured,
    Provider,
    Request,
    TextBlock,
    ToolResult,
    ToolSpec,
)
from corral.agents.llm.usage import RateInfo, Usage

KEYS = {"ANTHROPIC_API_KEY": "test-key", "OPENAI_API_KEY": "test-key"}
LOOKUP = ToolSpec(
    "lookup",
    "Looks a word up.",
    {"type": "object", "properties": {"word": {"type": "string"}}, "required": ["word"]},
)
ROUTE = ToolSpec(
    "route",
    "Choose the agent for the message.",
    {
        "type": "object",
        "properties": {
            "agent": {"type": "string", "enum": ["roo", "beaver", "owl"]},
            "reason": {"type": "string"},
        },
        "required": ["agent", "reason"],
    },
)
TEAM = "The team:\n- roo: operations lead\n- beaver: writes and fixes code\n- owl: research"


class RecordingSleep:
    """Stands in for asyncio.sleep: remembers each delay instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


@pytest.fixture
async def server() -> AsyncIterator[FakeModelServer]:
    async with FakeModelServer() as running:
        yield running


@pytest.fixture
def sleep() -> RecordingSleep:
    return RecordingSleep()


@pytest.fixture(params=["anthropic", "openai"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def factories(server: FakeModelServer) -> dict[str, Callable[[], Provider]]:
    return {
        "anthropic": lambda: AnthropicProvider(api_key="test-key", base_url=server.anthropic_url),
        "openai": lambda: OpenAIProvider(api_key="test-key", base_url=server.openai_url),
    }


class Closable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=Closable)


class Closer:
    """Closes what a test opened, so that no connection outlives the test's event loop."""

    def __init__(self) -> None:
        self._opened: list[Closable] = []

    def __call__(self, opened: C) -> C:
        self._opened.append(opened)
        return opened

    async def aclose(self) -> None:
        for opened in reversed(self._opened):
            await opened.aclose()


@pytest.fixture
async def closer() -> AsyncIterator[Closer]:
    opened = Closer()
    yield opened
    await opened.aclose()


class MakeRegistry(Protocol):
    def __call__(
        self, models: dict[str, list[str]] | None = None, env: dict[str, str] | None = None
    ) -> ModelRegistry: ...


@pytest.fixture
def make_registry(server: FakeModelServer, sleep: RecordingSleep, closer: Closer) -> MakeRegistry:
    """Registries whose providers talk to the fake server; both providers configured."""

    def make(
        models: dict[str, list[str]] | None = None, env: dict[str, str] | None = None
    ) -> ModelRegistry:
        return closer(
            ModelRegistry(
                models or {},
                ProviderSettings.from_variables(KEYS if env is None else env),
                provider_factories=factories(server),
                sleep=sleep,
            )
        )

    return make


def ask(text: str, **fields: Any) -> Request:
    return Request(system="You are a test.", messages=(ChatMessage.user(text),), **fields)


# --- one provider, one call ------------------------------------------------------------


async def test_plain_answer(
    server: FakeModelServer, kind: str, make_registry: MakeRegistry
) -> None:
    client = make_registry().client_for(f"{kind}/m1")

    completion = await client.complete(ask("hello there"))

    assert completion.text == "[m1] hello there"
    assert completion.model == f"{kind}/m1"
    assert completion.tokens_in > 0
    assert completion.tokens_out > 0
    assert completion.stop_reason in ("end_turn", "stop")
    sent = server.requests[0]
    assert sent.headers["authorization"] == "Bearer test-key"
    if kind == "anthropic":
        assert sent.json["system"] == "You are a test."
        assert sent.json["messages"] == [
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
        ]
        assert sent.json["max_tokens"] == Request.max_tokens
        assert "tools" not in sent.json
    else:
        assert sent.json["messages"] == [
            {"role": "system", "content": "You are a test."},
            {"role": "user", "content": "hello there"},
        ]
        assert sent.json["max_completion_tokens"] == Request.max_tokens
        assert "tools" not in sent.json


async def test_tool_call_round_trip(
    server: FakeModelServer, kind: str, make_registry: MakeRegistry
) -> None:
    server.script("m1", CallTool("lookup", {"word": "corral"}), Reply("A pen for animals."))
    client = make_registry().client_for(f"{kind}/m1")
    question = ChatMessage.user("What is a corral?")

    first = await client.complete(Request("sys", (question,), tools=(LOOKUP,)))
    [call] = first.tool_uses
    assert (call.name, call.input) == ("lookup", {"word": "corral"})
    assert first.stop_reason in ("tool_use", "tool_calls")

    result = ChatMessage("user", (ToolResult(call.id, "an enclosure"),))
    thread = (question, ChatMessage("assistant", first.blocks), result)
    second = await client.complete(Request("sys", thread, tools=(LOOKUP,)))

    assert second.text == "A pen for animals."
    first_sent, second_sent = (r.json for r in server.requests)
    if kind == "anthropic":
        assert first_sent["tools"] == [
            {"name": "lookup", "description": "Looks a word up.", "input_schema": LOOKUP.parameters}
        ]
        assert second_sent["messages"][1] == {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": call.id, "name": "lookup", "input": {"word": "corral"}}
            ],
        }
        assert second_sent["messages"][2] == {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": call.id,
                    "content": "an enclosure",
                    "is_error": False,
                }
            ],
        }
    else:
        assert first_sent["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Looks a word up.",
                    "parameters": LOOKUP.parameters,
                },
            }
        ]
        assistant, tool = second_sent["messages"][2:]
        assert assistant["tool_calls"][0]["id"] == call.id
        assert json.loads(assistant["tool_calls"][0]["function"]["arguments"]) == {"word": "corral"}
        assert tool == {"role": "tool", "tool_call_id": call.id, "content": "an enclosure"}


async def test_forced_tool_is_sent_and_answered_by_the_router_rule(
    server: FakeModelServer, kind: str, make_registry: MakeRegistry
) -> None:
    client = make_registry().client_for(f"{kind}/router")

    async def route(text: str) -> Completion:
        request = Request(TEAM, (ChatMessage.user(text),), tools=(ROUTE,), force_tool="route")
        return await client.complete(request)

    by_role = await route("The build fails, can someone fix the code?")
    by_name = await route("@owl what do we know about llamas?")
    neither = await route("Good morning!")

    assert by_role.tool_uses[0].input["agent"] == "beaver"
    assert by_name.tool_uses[0].input["agent"] == "owl"
    assert neither.tool_uses[0].input["agent"] == "roo"
    assert all(c.tool_uses[0].input["reason"] for c in (by_role, by_name, neither))
    tool_choice = server.requests[0].json["tool_choice"]
    if kind == "anthropic":
        assert tool_choice == {"type": "tool", "name": "route"}
    else:
        assert tool_choice == {"type": "function", "function": {"name": "route"}}


async def test_router_rule_is_pluggable(
    server: FakeModelServer, make_registry: MakeRegistry
) -> None:
    server.router_rule = lambda body: {"agent": "owl", "reason": "always owl"}
    client = make_registry().client_for("anthropic/router")

    completion = await client.complete(ask("fix the code", tools=(ROUTE,), force_tool="route"))

    assert completion.tool_uses[0].input == {"agent": "owl", "reason": "always owl"}


async def test_malformed_tool_arguments_are_kept_raw(
    server: FakeModelServer, make_registry: MakeRegistry
) -> None:
    server.script("local", CallTool("lookup", raw_arguments='{"word": "corr'))
    client = make_registry().client_for("openai/local")

    completion = await client.complete(ask("look it up", tools=(LOOKUP,)))

    assert completion.tool_uses[0].input == {"_raw": '{"word": "corr'}


# --- usage and rate-limit headers ------------------------------------------------------


def provider_for(kind: str, server: FakeModelServer, closer: Closer) -> Provider:
    """One provider of ``kind`` on the fake server, closed after the test."""
    if kind == "anthropic":
        return closer(AnthropicProvider(api_key="k", base_url=server.anthropic_url))
    return closer(OpenAIProvider(api_key="k", base_url=server.openai_url))


async def test_usage_counts_cached_tokens_apart(
    server: FakeModelServer, kind: str, closer: Closer
) -> None:
    provider = provider_for(kind, server, closer)
    scripted = Usage(
        input=120, output=30, cache_read=900, cache_write=0 if kind == "openai" else 50
    )
    server.script("m1", Reply("from the cache", usage=scripted))

    completion = await provider.complete("m1", ask("hi"))

    assert completion.usage == scripted
    assert completion.tokens_in == scripted.input_total == 120 + 900 + completion.usage.cache_write
    assert completion.tokens_out == 30


async def test_cache_writes_are_input_to_openai(server: FakeModelServer, closer: Closer) -> None:
    # Chat Completions has no cache-write count: written tokens come back as plain input.
    provider = closer(OpenAIProvider(api_key="k", base_url=server.openai_url))
    server.script("m1", Reply("ok", usage=Usage(input=10, output=2, cache_read=5, cache_write=7)))

    completion = await provider.complete("m1", ask("hi"))

    assert completion.usage == Usage(input=17, output=2, cache_read=5)
    assert completion.tokens_in == 22


async def test_cache_default_of_a_model_adds_to_the_counted_prompt(
    server: FakeModelServer, closer: Closer
) -> None:
    anthropic = closer(AnthropicProvider(api_key="k", base_url=server.anthropic_url))
    openai = closer(OpenAIProvider(api_key="k", base_url=server.openai_url))
    plain = await anthropic.complete("m1", ask("hello"))
    server.cache("m1", read=400, write=60)
    server.cache("m2", read=400)

    cached = await anthropic.complete("m1", ask("hello"))
    cached_openai = await openai.complete("m2", ask("hello"))

    assert plain.usage.cache_read == plain.usage.cache_write == 0
    assert cached.usage == Usage(plain.usage.input, plain.usage.output, 400, 60)
    assert cached.tokens_in == plain.tokens_in + 460
    assert cached_openai.usage.cache_read == 400
    assert cached_openai.usage.input > 0 and cached_openai.usage.cache_write == 0


async def test_rate_headers_are_read_on_success(
    server: FakeModelServer, kind: str, closer: Closer
) -> None:
    provider = provider_for(kind, server, closer)
    server.limit("m1", requests_per_minute=5, tokens_per_minute=10_000)
    server.script("m1", Reply("one", usage=Usage(input=100, output=20)))

    completion = await provider.complete("m1", ask("hi"))

    rate = completion.rate
    assert rate.limit == {"requests": 5, "tokens": 10_000}
    assert rate.remaining == {"requests": 4, "tokens": 10_000 - 120}
    assert set(rate.reset_s) == {"requests", "tokens"}
    # The window is a minute and this request just filled it: it empties a minute on.
    assert all(59 <= seconds <= 60.01 for seconds in rate.reset_s.values())


async def test_anthropic_reports_its_input_and_output_limits_too(
    server: FakeModelServer, closer: Closer
) -> None:
    provider = closer(AnthropicProvider(api_key="k", base_url=server.anthropic_url))
    server.limit("m1", input_tokens_per_minute=1000, output_tokens_per_minute=100)
    server.script("m1", Reply("one", usage=Usage(input=300, output=40, cache_read=200)))

    completion = await provider.complete("m1", ask("hi"))

    # Input limits count cached tokens too, as the providers' do.
    assert completion.rate.limit == {"input_tokens": 1000, "output_tokens": 100}
    assert completion.rate.remaining == {"input_tokens": 500, "output_tokens": 60}


async def test_rate_headers_are_read_on_a_429(
    server: FakeModelServer, kind: str, closer: Closer
) -> None:
    provider = provider_for(kind, server, closer)
    server.limit("m1", requests_per_minute=1)
    await provider.complete("m1", ask("first"))

    with pytest.raises(ModelError) as refused:
        await provider.complete("m1", ask("second"))

    error = refused.value
    assert (error.status, error.retryable) == (429, True)
    assert error.retry_after == 60.0
    assert error.rate.limit == {"requests": 1}
    assert error.rate.remaining == {"requests": 0}
    assert 59 <= error.rate.reset_s["requests"] <= 60.01
    assert "rate limit" in error.message


async def test_a_scripted_failure_carries_its_headers(
    server: FakeModelServer, kind: str, closer: Closer
) -> None:
    provider = provider_for(kind, server, closer)
    headers = {
        "anthropic-ratelimit-output-tokens-remaining": "0",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "1m30s",
    }
    server.script("m1", Fail(429, retry_after=90, headers=headers))

    with pytest.raises(ModelError) as refused:
        await provider.complete("m1", ask("hi"))

    assert refused.value.retry_after == 90.0
    assert refused.value.rate == RateInfo(
        remaining={"output_tokens": 0, "requests": 0}, reset_s={"requests": 90.0}
    )


async def test_no_limits_no_rate_headers(
    server: FakeModelServer, kind: str, closer: Closer
) -> None:
    provider = provider_for(kind, server, closer)

    completion = await provider.complete("m1", ask("hi"))

    assert not completion.rate


def test_rate_info_reads_anthropic_headers() -> None:
    now = datetime(2026, 12, 6, 0, 0, 0, tzinfo=UTC)
    headers = {
        "Anthropic-RateLimit-Requests-Limit": "50",
        "anthropic-ratelimit-requests-remaining": "49",
        "anthropic-ratelimit-requests-reset": "2026-12-06T00:00:01Z",
        "anthropic-ratelimit-tokens-remaining": "90000",
        "anthropic-ratelimit-input-tokens-limit": "50000",
        "anthropic-ratelimit-input-tokens-reset": "2026-12-06T01:00:00.250+01:00",
        "anthropic-ratelimit-output-tokens-limit": "10000",
        "anthropic-ratelimit-output-tokens-reset": "2026-12-05T23:59:00Z",  # passed: 0
        "anthropic-ratelimit-output-tokens-remaining": "lots",  # unreadable: left out
        "request-id": "req_1",
    }

    info = rate_info(headers, now=lambda: now)

    assert info == RateInfo(
        limit={"requests": 50, "input_tokens": 50000, "output_tokens": 10000},
        remaining={"requests": 49, "tokens": 90000},
        reset_s={"requests": 1.0, "input_tokens": 0.25, "output_tokens": 0.0},
    )


def test_rate_info_reads_openai_headers() -> None:
    headers = {
        "x-ratelimit-limit-requests": "500",
        "x-ratelimit-remaining-requests": "499",
        "x-ratelimit-reset-requests": "120ms",
        "x-ratelimit-limit-tokens": "200000",
        "x-ratelimit-remaining-tokens": "-3",  # nonsense: left out
        "x-ratelimit-reset-tokens": "6m0s",
    }

    assert rate_info(headers) == RateInfo(
        limit={"requests": 500, "tokens": 200000},
        remaining={"requests": 499},
        reset_s={"requests": 0.12, "tokens": 360.0},
    )
    assert not rate_info({"retry-after": "3", "x-ratelimit-reset-tokens": "soon"})


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0s", 0.0),
        ("0.5s", 0.5),
        (".5s", 0.5),
        ("1m", 60.0),
        ("250us", 0.00025),
        ("250µs", 0.00025),
        ("100ns", 1e-7),
        ("2", 2.0),  # a bare number: seconds, as some compatible servers send
        (" 3s ", 3.0),
        ("", None),
        ("s", None),
        ("1x", None),
        ("1s2", None),
        ("-1s", None),
        ("1 s", None),
        ("1h 2m", None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    parsed = parse_duration(text)
    if seconds is None:
        assert parsed is None
    else:
        assert parsed == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-12-06T00:00:30Z", 30.0),
        ("2026-12-06t00:00:30z", 30.0),
        ("2026-12-06T00:00:00.5Z", 0.5),
        ("2026-12-06T01:00:30+01:00", 30.0),
        ("2026-12-05T19:00:30-05:00", 30.0),
        ("2026-12-06T00:00:30", 30.0),  # no offset: read as UTC
        ("2026-12-05T23:00:00Z", 0.0),  # in the past: nothing to wait
        ("tomorrow", None),
        ("", None),
        ("2026-13-01T00:00:00Z", None),
    ],
)
def test_parse_rfc3339_reset(text: str, seconds: float | None) -> None:
    now = datetime(2026, 12, 6, 0, 0, 0, tzinfo=UTC)
    assert parse_rfc3339_reset(text, lambda: now) == seconds


# --- retries and fallbacks -------------------------------------------------------------


async def test_rate_limit_waits_as_told_then_succeeds(
    server: FakeModelServer, sleep: RecordingSleep, kind: str, make_registry: MakeRegistry
) -> None:
    server.script("m1", Fail(429, retry_after=2), Reply("finally"))
    client = make_registry().client_for(f"{kind}/m1")

    completion = await client.complete(ask("hi"))

    assert completion.text == "finally"
    assert sleep.delays == [2.0]
    assert server.count("m1") == 2


async def test_retry_after_as_http_date(
    server: FakeModelServer, sleep: RecordingSleep, make_registry: MakeRegistry
) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=8), usegmt=True)
    server.script("m1", Fail(503, retry_after=when), Reply("ok"))

    await make_registry().client_for("openai/m1").complete(ask("hi"))

    [delay] = sleep.delays
    assert 6 < delay <= 8


async def test_server_errors_are_retried_with_backoff(
    server: FakeModelServer, sleep: RecordingSleep, kind: str, make_registry: MakeRegistry
) -> None:
    server.script("m1", Fail(500), Fail(503), Reply("up again"))
    client = make_registry().client_for(f"{kind}/m1")

    completion = await client.complete(ask("hi"))

    assert completion.text == "up again"
    assert server.count("m1") == 3
    first, second = sleep.delays
    assert 0.5 <= first <= 0.55
    assert second == pytest.approx(1.05, abs=0.05)  # 1 s backoff plus up to 10% jitter


async def test_busy_first_model_falls_back_to_the_second_at_once(
    server: FakeModelServer,
    sleep: RecordingSleep,
    caplog: pytest.LogCaptureFixture,
    make_registry: MakeRegistry,
) -> None:
    server.fail_always("big", 529)
    models = {"fast": ["anthropic/big", "openai/small"]}
    client = make_registry(models).client_for("fast")

    with caplog.at_level(logging.WARNING, logger="corral.models"):
        completion = await client.complete(ask("anyone there?"))

    # A model that says it is busy is not waited for while the next one may answer.
    assert completion.model == "openai/small"
    assert completion.text == "[small] anyone there?"
    assert server.count("big") == 1
    assert sleep.delays == []
    assert [r.json["messages"] for r in server.requests_for("small")] == [
        [
            {"role": "system", "content": "You are a test."},
            {"role": "user", "content": "anyone there?"},
        ]
    ]
    assert "anthropic/big failed (status 529, attempt 1/3), to be tried again" in caplog.text


async def test_all_models_dead(
    server: FakeModelServer, sleep: RecordingSleep, make_registry: MakeRegistry
) -> None:
    server.fail_always("big", 500)
    server.fail_always("small", 502)
    client = make_registry({"fast": ["anthropic/big", "openai/small"]}).client_for("fast")

    with pytest.raises(AllModelsFailed) as failed:
        await client.complete(ask("hi"))

    # Rounds over the whole chain, waiting only between rounds.
    attempts = RetryPolicy().attempts
    assert (server.count("big"), server.count("small")) == (attempts, attempts)
    assert len(sleep.delays) == attempts - 1
    assert [(e.model, e.status) for e in failed.value.errors] == [
        ("anthropic/big", 500),
        ("openai/small", 502),
    ]
    assert "anthropic/big (500)" in str(failed.value)
    assert "openai/small (502)" in str(failed.value)


async def test_bad_request_is_not_retried(
    server: FakeModelServer, sleep: RecordingSleep, kind: str, make_registry: MakeRegistry
) -> None:
    server.script("m1", Fail(400, message="max_tokens is too large"))
    client = make_registry().client_for(f"{kind}/m1")

    with pytest.raises(AllModelsFailed) as failed:
        await client.complete(ask("hi"))

    [error] = failed.value.errors
    assert (error.status, error.retryable) == (400, False)
    assert error.message == "max_tokens is too large"
    assert server.count("m1") == 1
    assert sleep.delays == []


async def test_connection_refused_is_retryable(
    sleep: RecordingSleep, closer: Closer, kind: str
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}"
    provider = closer(
        AnthropicProvider(api_key="k", base_url=url)
        if kind == "anthropic"
        else OpenAIProvider(api_key="k", base_url=f"{url}/v1")
    )
    chain = FallbackChain([(provider, "m1")], RetryPolicy(attempts=2), "m1", sleep)

    with pytest.raises(AllModelsFailed) as failed:
        await chain.complete(ask("hi"))

    [error] = failed.value.errors
    assert (error.status, error.retryable) == (None, True)
    assert len(sleep.delays) == 1


def test_retry_policy_delays() -> None:
    steady = RetryPolicy(base_delay=1.0, max_delay=5.0, rand=lambda: 1.0)
    rate_limited = ModelError("a/b", "slow down", 429, True, retry_after=3.0)
    server_error = ModelError("a/b", "oops", 500, True)

    assert steady.delay(1, rate_limited) == 3.0
    assert steady.delay(1, ModelError("a/b", "wait", 429, True, retry_after=60)) == 5.0
    assert [steady.delay(n, server_error) for n in (1, 2, 3, 4)] == [1.1, 2.2, 4.4, 5.5]
    assert RetryPolicy(base_delay=1.0, rand=lambda: 0.0).delay(2, server_error) == 2.0


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)
    in_a_minute = format_datetime(now + timedelta(seconds=60), usegmt=True)

    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after-ms": "1500", "retry-after": "7"}) == 1.5
    assert parse_retry_after({"retry-after": in_a_minute}, now=lambda: now) == 60.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# --- the registry ----------------------------------------------------------------------


async def test_no_provider_configured_says_what_to_set(
    server: FakeModelServer, make_registry: MakeRegistry
) -> None:
    models = {"fast": ["anthropic/big", "openai/small"], "smart": ["anthropic/big"]}
    models_registry = make_registry(models, env={})

    with pytest.raises(NoModelConfigured) as both:
        await models_registry.client_for("fast").complete(ask("hi"))
    with pytest.raises(NoModelConfigured) as one:
        await models_registry.client_for("smart").complete(ask("hi"))

    assert both.value.hint == (
        "set ANTHROPIC_API_KEY or OPENAI_API_KEY (or OPENAI_BASE_URL for a local server) "
        "in .env or the environment"
    )
    assert one.value.hint == "set ANTHROPIC_API_KEY in .env or the environment"
    assert "`fast`" in str(both.value)
    assert server.requests == []
    assert models_registry.configured_providers() == []
    assert models_registry.status_line() == (
        "No model provider configured: set ANTHROPIC_API_KEY or OPENAI_API_KEY "
        "(or OPENAI_BASE_URL for a local server) in .env or the environment."
    )


async def test_unconfigured_providers_are_left_out_of_the_chain(
    server: FakeModelServer, make_registry: MakeRegistry
) -> None:
    models = {"fast": ["anthropic/big", "openai/small"]}
    models_registry = make_registry(models, env={"OPENAI_API_KEY": "k"})

    completion = await models_registry.client_for("fast").complete(ask("hi"))

    assert completion.model == "openai/small"
    assert server.count("big") == 0
    assert models_registry.configured_providers() == ["openai"]
    assert models_registry.describe("fast") == [
        "anthropic/big (not configured: set ANTHROPIC_API_KEY in .env or the environment)",
        "openai/small",
    ]


def test_registry_resolves_tiers_and_literal_models() -> None:
    models_registry = ModelRegistry(
        {"fast": ["anthropic/claude-haiku-4-5", "openai/gpt-5-mini"]},
        ProviderSettings.from_variables(KEYS),
    )

    assert models_registry.resolve("fast") == [
        ("anthropic", "claude-haiku-4-5"),
        ("openai", "gpt-5-mini"),
    ]
    assert models_registry.resolve("openai/llama3.2:3b") == [("openai", "llama3.2:3b")]
    assert models_registry.resolve("openai/meta-llama/Llama-3.1-8B") == [
        ("openai", "meta-llama/Llama-3.1-8B")
    ]
    assert models_registry.describe("fast") == ["anthropic/claude-haiku-4-5", "openai/gpt-5-mini"]
    assert models_registry.status_line() == "Model providers: anthropic, openai."


def test_registry_rejects_unknown_specs() -> None:
    models_registry = ModelRegistry(
        {"fast": ["google/gemini"]}, ProviderSettings.from_variables(KEYS)
    )

    with pytest.raises(ValueError, match=r"unknown model provider `google` in `google/gemini`"):
        models_registry.client_for("fast")
    with pytest.raises(ValueError, match=r"unknown model provider `mistral`"):
        models_registry.client_for("mistral/large")
    with pytest.raises(ValueError, match=r"`quick` is neither a model tier \(tiers: fast\)"):
        models_registry.client_for("quick")
    with pytest.raises(ValueError, match=r"`openai/` names no model"):
        models_registry.client_for("openai/")


async def test_providers_are_created_once_and_shared(
    server: FakeModelServer, sleep: RecordingSleep, closer: Closer
) -> None:
    created: list[str] = []

    def anthropic() -> Provider:
        created.append("anthropic")
        return AnthropicProvider(api_key="k", base_url=server.anthropic_url)

    models_registry = closer(
        ModelRegistry(
            {"fast": ["anthropic/a"], "smart": ["anthropic/b"]},
            ProviderSettings.from_variables(KEYS),
            provider_factories={"anthropic": anthropic},
            sleep=sleep,
        )
    )
    for spec in ("fast", "smart", "fast"):
        await models_registry.client_for(spec).complete(ask("hi"))

    assert created == ["anthropic"]


async def test_the_default_providers_connect_as_the_settings_say(
    server: FakeModelServer, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What the process environment says is the composition root's business, not theirs.
    for name in ("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.setenv(name, "http://127.0.0.1:9/wrong")
    settings = ProviderSettings.from_variables(server.env())
    models_registry = closer(
        ModelRegistry({"fast": ["anthropic/a"], "local": ["openai/b"]}, settings)
    )

    assert (await models_registry.client_for("fast").complete(ask("hi"))).text == "[a] hi"
    assert (await models_registry.client_for("local").complete(ask("hi"))).text == "[b] hi"
    assert [r.headers["authorization"] for r in server.requests] == ["Bearer fake"] * 2


async def test_local_openai_server_needs_no_key(
    server: FakeModelServer, closer: Closer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    settings = ProviderSettings(openai_base_url=server.openai_url)
    models_registry = closer(ModelRegistry({"local": ["openai/llama3.2"]}, settings))

    completion = await models_registry.client_for("local").complete(ask("hi"))

    assert completion.text == "[llama3.2] hi"
    assert server.requests[0].headers["authorization"] == f"Bearer {LOCAL_SERVER_API_KEY}"
    assert models_registry.status_line() == f"Model providers: openai at {server.openai_url}."


# --- the fake server itself -------------------------------------------------------------


def test_server_in_a_thread_serves_a_subprocess() -> None:
    program = (
        "import asyncio\n"
        "import os\n"
        "from corral.agents.llm.registry import ModelRegistry, ProviderSettings\n"
        "from corral.agents.llm.types import ChatMessage, Request\n"
        "settings = ProviderSettings.from_variables(os.environ)\n"
        "client = ModelRegistry({'fast': ['openai/m1']}, settings).client_for('fast')\n"
        "request = Request('', (ChatMessage.user('ping'),))\n"
        "print(asyncio.run(client.complete(request)).text)\n"
    )
    with FakeModelServer.in_thread() as server:
        server.script("m1", Reply("scripted from the test"))
        done = subprocess.run(
            [sys.executable, "-c", program],
            env={**os.environ, **server.env(["openai"])},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    assert done.stdout.strip() == "scripted from the test"
    assert server.requests[0].json["messages"] == [{"role": "user", "content": "ping"}]


async def test_server_rejects_a_tool_result_without_its_call(
    server: FakeModelServer, closer: Closer, kind: str
) -> None:
    orphan = ChatMessage("user", (ToolResult("call_missing", "42"), TextBlock("and?")))
    provider = provider_for(kind, server, closer)

    with pytest.raises(ModelError) as rejected:
        await provider.complete("m1", Request("sys", (orphan,)))

    assert rejected.value.status == 400
    assert "call_missing" in rejected.value.message


async def test_warm_up_creates_the_configured_providers_off_the_loop() -> None:
    import threading

    made: list[str] = []

    def factory(name: str) -> Callable[[], Provider]:
        def make() -> Provider:
            made.append(f"{name}:{threading.current_thread() is threading.main_thread()}")
            return AnthropicProvider(api_key="k", base_url="http://127.0.0.1:9")

        return make

    registry = ModelRegistry(
        {"fast": ["anthropic/a", "openai/b"]},
        ProviderSettings(anthropic_api_key="k"),
        provider_factories={"anthropic": factory("anthropic"), "openai": factory("openai")},
    )
    await registry.warm_up()
    await registry.warm_up()
    registry.client_for("fast")
    assert made == ["anthropic:False"]  # once, off the main thread; openai is not configured
    await registry.aclose()
