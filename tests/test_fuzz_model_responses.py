"""Model responses fuzzed: the fake model server answers the real Anthropic and OpenAI
SDKs with random bodies, JSON of the wrong shape and garbled valid answers, under any
status. A provider gives a completion or a :class:`ModelError` (which the fallback chain
retries, falls back on and escalates), never another exception; and a run whose every
model answers garbage is escalated in its thread without exception text."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fakes.model_server import FakeModelServer, Raw
from fuzz_strategies import json_values, mangled
from harness import RecordingAdapter, fake_models, make_core, make_team
from hypothesis import given
from hypothesis import strategies as st
from scenarios import inbox_settled

from corral.agents.llm.anthropic_provider import AnthropicProvider
from corral.agents.llm.openai_provider import OpenAIProvider
from corral.agents.llm.retry import RetryPolicy
from corral.agents.llm.types import ChatMessage, Completion, ModelError, Provider, Request, ToolSpec
from corral.bot.inbound import Inbound
from corral.bot.settings import Settings
from corral.storage.store import Storage

ANTHROPIC_OK: dict[str, Any] = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "fast-a",
    "content": [
        {"type": "text", "text": "hello"},
        {"type": "tool_use", "id": "tu_1", "name": "recall", "input": {"query": "x"}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 5},
}
OPENAI_OK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "fast-b",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "hello",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "recall", "arguments": '{"query": "x"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
}
REQUEST = Request(
    system="You help.",
    messages=(ChatMessage.user("hi"),),
    tools=(ToolSpec("recall", "Recall.", {"type": "object", "properties": {}}),),
)


@pytest.fixture
async def providers(model_server: FakeModelServer) -> AsyncIterator[dict[str, Provider]]:
    made: dict[str, Any] = {
        "fast-a": AnthropicProvider(api_key="k", base_url=model_server.anthropic_url, timeout=5),
        "fast-b": OpenAIProvider(api_key="k", base_url=model_server.openai_url, timeout=5),
    }
    yield made
    for provider in made.values():
        await provider.aclose()


def _bodies(valid: dict[str, Any]) -> st.SearchStrategy[bytes]:
    as_json = st.one_of(mangled(valid), json_values(10)).map(lambda v: json.dumps(v).encode())
    return st.one_of(
        as_json,
        st.binary(max_size=200),
        st.just(b"<html><body>502 Bad Gateway</body></html>"),
        as_json.map(lambda b: b[: len(b) // 2]),
    )


FOUND = {
    # Found by the fuzzer: each escaped the provider as a TypeError, an AttributeError, a
    # UnicodeDecodeError or a JSONDecodeError instead of a ModelError.
    "anthropic without content": (
        "fast-a",
        {k: v for k, v in ANTHROPIC_OK.items() if k != "content"},
    ),
    "anthropic without usage": ("fast-a", {k: v for k, v in ANTHROPIC_OK.items() if k != "usage"}),
    "openai as a number": ("fast-b", 0),
    "openai without choices' message": ("fast-b", {**OPENAI_OK, "choices": [{"index": 0}]}),
}


@pytest.mark.parametrize("name", list(FOUND))
async def test_an_answer_of_the_wrong_shape_is_a_model_error(
    providers: dict[str, Provider], model_server: FakeModelServer, name: str
) -> None:
    model, body = FOUND[name]
    model_server.script(model, Raw(json.dumps(body).encode()))
    with pytest.raises(ModelError) as caught:
        await providers[model].complete(model, REQUEST)
    assert caught.value.retryable and "well-formed" in caught.value.message


@pytest.mark.parametrize("body", [b"\x00" * 149, b"{}{", b"<html>502</html>"])
async def test_a_body_that_is_no_json_is_a_model_error(
    providers: dict[str, Provider], model_server: FakeModelServer, body: bytes
) -> None:
    for model, provider in providers.items():
        model_server.script(model, Raw(body))
        with pytest.raises(ModelError):
            await provider.complete(model, REQUEST)


@given(data=st.data())
async def test_fuzz_model_responses(
    providers: dict[str, Provider], model_server: FakeModelServer, data: st.DataObject
) -> None:
    model = data.draw(st.sampled_from(sorted(providers)))
    body = data.draw(_bodies(ANTHROPIC_OK if model == "fast-a" else OPENAI_OK))
    status = data.draw(st.sampled_from([200, 200, 200, 400, 404, 429, 500, 529]))
    model_server.script(model, Raw(body, status))
    try:
        completion = await providers[model].complete(model, REQUEST)
    except ModelError as error:
        assert "Traceback" not in str(error)
    else:
        assert isinstance(completion, Completion)


async def test_a_run_whose_every_model_answers_garbage_is_escalated_in_its_thread(
    storage: Storage, model_server: FakeModelServer
) -> None:
    team = make_team()
    models = fake_models(team, model_server, RetryPolicy(attempts=2, base_delay=0, max_delay=0))
    core = make_core(storage, models, team, Settings(_env_file=None))
    adapter = RecordingAdapter()
    workers = core.workers({"test": adapter})
    for model in ("fast-a", "fast-b", "smart-a", "smart-b"):
        model_server.script(model, *[Raw(b'{"content": "half')] * 4)
    workers.start()
    try:
        inbound = Inbound("test", "ev1", "C0OPS", "m1", "m1", "U1", "roo, status?", to_app=True)
        assert await core.gateway.submit(inbound) is not None
        await inbox_settled(storage)
    finally:
        await workers.stop()
        await models.aclose()
    assert adapter.posts, "the person is told"
    assert any("could not" in reply.text for _, reply in adapter.posts), adapter.posts
    for place, reply in adapter.posts:
        assert place.thread == "m1"
        assert "Traceback" not in reply.text and "JSONDecodeError" not in reply.text
