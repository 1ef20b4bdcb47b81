"""The fake model server enforces a provider's rate limits: a sliding window per model,
429s with ``retry-after`` and the rate-limit headers, through the real SDKs."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator

import anthropic
import openai
import pytest
from fakes.model_server import Fail, FakeModelServer, Reply
from fakes.sliding_window import SlidingWindow

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.types import ChatMessage, ModelError, Provider, Request
from corral.agents.llm.usage import Usage

#: A whole second, so that the clock's arithmetic stays exact.
START = float(math.floor(time.time()))


class Clock:
    """The server's clock, moved on by the test instead of waiting."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def server(clock: Clock) -> AsyncIterator[FakeModelServer]:
    async with FakeModelServer(clock=clock) as running:
        yield running


@pytest.fixture(params=["anthropic", "openai"])
async def provider(
    request: pytest.FixtureRequest, server: FakeModelServer
) -> AsyncIterator[Provider]:
    made: AnthropicProvider | OpenAIProvider
    if request.param == "anthropic":
        made = AnthropicProvider(api_key="k", base_url=server.anthropic_url)
    else:
        made = OpenAIProvider(api_key="k", base_url=server.openai_url)
    yield made
    await made.aclose()


def ask(text: str) -> Request:
    return Request("sys", (ChatMessage.user(text),))


async def refusal(provider: Provider, model: str = "m1") -> ModelError:
    """The error of a call that the server must refuse for its rate limit."""
    with pytest.raises(ModelError) as refused:
        await provider.complete(model, ask("one too many"))
    assert refused.value.status == 429
    return refused.value


async def test_refuses_exactly_at_the_limit_and_recovers_after_the_window(
    server: FakeModelServer, provider: Provider, clock: Clock
) -> None:
    server.limit("m1", requests_per_minute=3, window_s=10)
    for _ in range(3):  # at 0, 2 and 4 s
        await provider.complete("m1", ask("hi"))
        clock.now += 2

    first = await refusal(provider)  # at 6 s: the one of 0 s leaves at 10 s
    clock.now = START + 9.5
    second = await refusal(provider)
    clock.now = START + 10
    await provider.complete("m1", ask("back"))
    third = await refusal(provider)  # the one of 2 s leaves at 12 s

    assert [e.retry_after for e in (first, second, third)] == [4.0, 1.0, 2.0]
    assert first.rate.remaining == {"requests": 0}
    assert server.refused("m1") == 3
    assert server.count("m1") == 7
    assert server.max_in_window("m1", "requests") == 3
    assert [a.at - START for a in server.arrivals("m1")] == [0, 2, 4, 10]


async def test_the_429_is_the_providers_own(server: FakeModelServer, provider: Provider) -> None:
    server.limit("m1", requests_per_minute=1)
    await provider.complete("m1", ask("hi"))

    error = await refusal(provider)

    assert isinstance(error.__cause__, anthropic.RateLimitError | openai.RateLimitError)
    assert error.retryable
    assert error.message == ("This request would exceed the rate limit of m1: 1 requests per 60 s")


async def test_a_refused_request_takes_nothing_from_the_script(
    server: FakeModelServer, provider: Provider, clock: Clock
) -> None:
    server.limit("m1", requests_per_minute=1, window_s=5)
    server.script("m1", Reply("first"), Reply("second"))

    answers = [(await provider.complete("m1", ask("hi"))).text]
    await refusal(provider)
    clock.now += 5
    answers.append((await provider.complete("m1", ask("hi"))).text)

    assert answers == ["first", "second"]


async def test_output_tokens_count_at_arrival(
    server: FakeModelServer, provider: Provider, clock: Clock
) -> None:
    server.limit("m1", output_tokens_per_minute=100, tokens_per_minute=1000)
    server.script(
        "m1",
        Reply("long", usage=Usage(input=10, output=60)),
        Reply("long again", usage=Usage(input=10, output=60)),
    )

    await provider.complete("m1", ask("one"))
    clock.now += 30
    error = await refusal(provider)  # 60 + 60 output tokens > 100
    clock.now += 30
    again = await provider.complete("m1", ask("the first has left the window"))

    assert error.retry_after == 30.0
    assert "100 output tokens per 60 s" in error.message
    assert again.text == "long again"
    assert server.max_in_window("m1", "output_tokens") == 60
    assert server.max_in_window("m1", "tokens", window_s=61) == 140
    if isinstance(provider, AnthropicProvider):
        assert error.rate.remaining == {"output_tokens": 40, "tokens": 930}
    else:  # OpenAI reports requests and tokens only
        assert error.rate.remaining == {"tokens": 930}


async def test_input_tokens_count_cached_ones_too(
    server: FakeModelServer, provider: Provider
) -> None:
    server.limit("m1", input_tokens_per_minute=1000)
    server.script(
        "m1",
        Reply("cached", usage=Usage(input=100, cache_read=800)),
        Reply("over", usage=Usage(input=50, cache_read=100)),
    )

    await provider.complete("m1", ask("one"))
    await refusal(provider)

    assert server.max_in_window("m1", "input_tokens") == 900


async def test_a_request_larger_than_the_limit_never_fits(
    server: FakeModelServer, provider: Provider
) -> None:
    server.limit("m1", tokens_per_minute=100, window_s=20)
    server.script("m1", Reply("huge", usage=Usage(input=500, output=1)))

    error = await refusal(provider)

    assert error.retry_after == 20.0
    assert server.arrivals("m1") == []


async def test_a_burst_is_cut_at_the_limit(server: FakeModelServer, provider: Provider) -> None:
    server.limit("m1", requests_per_minute=5)

    results = await asyncio.gather(
        *(provider.complete("m1", ask(f"burst {n}")) for n in range(20)), return_exceptions=True
    )

    refused = [r for r in results if isinstance(r, ModelError)]
    assert len(refused) == 15 and {e.status for e in refused} == {429}
    assert server.refused("m1") == 15
    assert server.max_in_window("m1") == 5
    answered = [r for r in results if not isinstance(r, BaseException)]
    assert sorted(c.rate.remaining["requests"] for c in answered) == [0, 1, 2, 3, 4]


async def test_scripted_failures_count_as_requests(
    server: FakeModelServer, provider: Provider
) -> None:
    server.limit("m1", requests_per_minute=2)
    server.script("m1", Fail(500))

    with pytest.raises(ModelError) as failed:
        await provider.complete("m1", ask("fails"))
    await provider.complete("m1", ask("answered"))
    await refusal(provider)

    assert failed.value.status == 500
    assert failed.value.rate.remaining == {"requests": 1}


async def test_limits_can_be_lifted_and_changed(
    server: FakeModelServer, provider: Provider
) -> None:
    server.limit("m1", requests_per_minute=1)
    await provider.complete("m1", ask("one"))
    await refusal(provider)

    server.limit("m1")
    lifted = await provider.complete("m1", ask("two"))
    server.limit("m1", requests_per_minute=3)  # the two admitted so far count against it
    third = await provider.complete("m1", ask("three"))

    assert not lifted.rate
    assert third.rate.remaining == {"requests": 0}
    await refusal(provider)
    with pytest.raises(ValueError, match="tokens_per_minute must not be negative"):
        server.limit("m1", tokens_per_minute=-1)


async def test_models_are_limited_apart(server: FakeModelServer, provider: Provider) -> None:
    server.limit("m1", requests_per_minute=1)
    await provider.complete("m1", ask("one"))

    await refusal(provider, "m1")
    other = await provider.complete("m2", ask("another model"))

    assert other.text == "[m2] another model"
    assert server.refused("m2") == 0


async def test_the_window_slides_in_real_time() -> None:
    # The default clock: a short window keeps this test under two seconds.
    async with FakeModelServer() as server:
        provider = OpenAIProvider(api_key="k", base_url=server.openai_url)
        try:
            server.limit("m1", requests_per_minute=2, window_s=1)
            await provider.complete("m1", ask("one"))
            await provider.complete("m1", ask("two"))
            error = await refusal(provider)
            assert error.retry_after == 1.0  # whole seconds, rounded up, as providers send
            assert error.rate.reset_s["requests"] <= 1.0
            await asyncio.sleep(error.rate.reset_s["requests"])
            await provider.complete("m1", ask("three"))
        finally:
            await provider.aclose()
    assert server.max_in_window("m1") == 2
    assert server.refused("m1") == 1


def test_sliding_window_arithmetic() -> None:
    window = SlidingWindow({"requests": 3}, window_s=60)
    for at in (0, 10, 20):
        assert window.admit(at, {"requests": 1, "tokens": 5}) is None

    refused = window.admit(59.5, {"requests": 1})
    assert refused is not None
    assert (refused.dimensions, refused.wait_s) == (("requests",), 0.5)
    assert window.remaining(59.5) == {"requests": 0}
    assert window.reset_s(59.5) == {"requests": 20.5}
    assert window.admit(60, {"requests": 1}) is None  # the one of 0 s has left
    assert window.admit(65, {"requests": 1}) is not None
    assert window.admit(70, {"requests": 1}) is None
    assert window.used(200) == {} and window.reset_s(200) == {"requests": 0.0}
    # Admitted at 0, 10, 20, 60 and 70: any 60 s held at most 3.
    assert window.max_in_window("requests") == 3
    assert window.max_in_window("requests", window_s=61) == 4
    assert window.max_in_window("tokens", window_s=1000) == 15
    with pytest.raises(ValueError):
        SlidingWindow({}, window_s=0)
