"""OpenAI Chat Completions (and compatible servers: Ollama, vLLM, …) as a Provider."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from corral.agents.llm.rate_headers import rate_info
from corral.agents.llm.retry import is_retryable_status, parse_retry_after
from corral.agents.llm.types import (
    MALFORMED_ANSWER,
    ChatMessage,
    Completion,
    ModelError,
    Request,
    TextBlock,
    ToolResult,
    ToolSpec,
    ToolUse,
    malformed_answer,
)
from corral.agents.llm.usage import RateInfo, Usage

if TYPE_CHECKING:
    from openai import AsyncOpenAI
    from openai.types import CompletionUsage
    from openai.types.chat import (
        ChatCompletion,
        ChatCompletionFunctionToolParam,
        ChatCompletionMessageFunctionToolCallParam,
        ChatCompletionMessageParam,
    )

#: Local servers ignore the key, but the SDK refuses to start without one.
LOCAL_SERVER_API_KEY = "not-needed"


class OpenAIProvider:
    """Calls ``chat.completions.create`` on one shared ``AsyncOpenAI`` client.

    ``api_key`` and ``base_url`` are ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` as the
    composition root read them; None leaves the SDK's default (for a key: none at all).
    """

    name = "openai"

    def __init__(
        self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 120.0
    ) -> None:
        # Imported here: the SDK is slow to import and `corral --help` must stay quick.
        from openai import AsyncOpenAI

        if not api_key and base_url:
            api_key = LOCAL_SERVER_API_KEY
        # max_retries=0: retries belong to the fallback chain, which can also switch model.
        self._client: AsyncOpenAI = AsyncOpenAI(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self._client.close()

    async def complete(self, model: str, request: Request) -> Completion:
        """One ``chat.completions.create`` call; SDK errors become :class:`ModelError`.

        The completion and the error carry the usage and the rate-limit headers.
        """
        import openai

        try:
            # The raw response, for its rate-limit headers; parse() gives the ChatCompletion.
            raw = await self._client.chat.completions.with_raw_response.create(
                model=model,
                max_completion_tokens=request.max_tokens,
                messages=_messages(request),
                tools=[_tool(t) for t in request.tools] or openai.omit,
                tool_choice=(
                    {"type": "function", "function": {"name": request.force_tool}}
                    if request.force_tool
                    else openai.omit
                ),
            )
            response = raw.parse()
            return _completion(model, response, rate_info(raw.headers))
        except openai.APIStatusError as exc:
            raise ModelError(
                f"openai/{model}",
                _error_message(exc.body) or exc.message,
                status=exc.status_code,
                retryable=is_retryable_status(exc.status_code),
                retry_after=parse_retry_after(exc.response.headers),
                rate=rate_info(exc.response.headers),
            ) from exc
        except openai.APIConnectionError as exc:
            raise ModelError(f"openai/{model}", exc.message, retryable=True) from exc
        except openai.OpenAIError as exc:
            raise ModelError(f"openai/{model}", str(exc)) from exc
        except MALFORMED_ANSWER as exc:
            raise malformed_answer(f"openai/{model}") from exc


def _messages(request: Request) -> list[ChatCompletionMessageParam]:
    messages: list[ChatCompletionMessageParam] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.role == "assistant":
            messages.append(_assistant(message))
        else:
            messages.extend(_user(message))
    return messages


def _assistant(message: ChatMessage) -> ChatCompletionMessageParam:
    text = "\n\n".join(b.text for b in message.content if isinstance(b, TextBlock))
    calls: list[ChatCompletionMessageFunctionToolCallParam] = [
        {
            "id": b.id,
            "type": "function",
            "function": {"name": b.name, "arguments": json.dumps(b.input)},
        }
        for b in message.content
        if isinstance(b, ToolUse)
    ]
    if calls:
        return {"role": "assistant", "content": text or None, "tool_calls": calls}
    return {"role": "assistant", "content": text}


def _user(message: ChatMessage) -> list[ChatCompletionMessageParam]:
    # Chat Completions wants each tool result as its own `tool` message, straight after the
    # assistant turn that asked for it, so results go before any text of the same turn.
    messages: list[ChatCompletionMessageParam] = [
        {
            "role": "tool",
            "tool_call_id": b.tool_use_id,
            "content": f"error: {b.content}" if b.is_error else b.content,
        }
        for b in message.content
        if isinstance(b, ToolResult)
    ]
    text = "\n\n".join(b.text for b in message.content if isinstance(b, TextBlock))
    if text:
        messages.append({"role": "user", "content": text})
    return messages


def _tool(tool: ToolSpec) -> ChatCompletionFunctionToolParam:
    return {
        "type": "function",
        "function": {
            "name": tool.name,
            "description": tool.description,
            "parameters": tool.parameters,
        },
    }


def _completion(model: str, response: ChatCompletion, rate: RateInfo) -> Completion:
    if not response.choices:
        raise ModelError(f"openai/{model}", "the response has no choices")
    choice = response.choices[0]
    blocks: list[TextBlock | ToolUse] = []
    if choice.message.content:
        blocks.append(TextBlock(choice.message.content))
    for call in choice.message.tool_calls or []:
        if call.type == "function":
            blocks.append(ToolUse(call.id, call.function.name, _arguments(call.function.arguments)))
    usage = _usage(response.usage)
    return Completion(
        blocks=tuple(blocks),
        model=f"openai/{model}",
        tokens_in=usage.input_total,
        tokens_out=usage.output,
        stop_reason=choice.finish_reason or "",
        usage=usage,
        rate=rate,
    )


def _usage(usage: CompletionUsage | None) -> Usage:
    """Usage with the cached prompt tokens apart: ``prompt_tokens`` counts them too."""
    if usage is None:
        return Usage()
    details = usage.prompt_tokens_details
    cached = (details.cached_tokens if details else None) or 0
    # A compatible server may report more cached tokens than prompt tokens; never go below 0.
    cached = min(cached, usage.prompt_tokens)
    return Usage(
        input=usage.prompt_tokens - cached,
        output=usage.completion_tokens,
        cache_read=cached,
    )


def _arguments(raw: str) -> dict[str, Any]:
    """Tool arguments as a dict; text that is not a JSON object is kept under ``_raw``.

    Models, local ones especially, sometimes emit broken JSON: the tool loop can then tell
    the model what went wrong instead of the whole run failing.
    """
    if not raw.strip():
        return {}
    try:
        parsed = json.loads(raw)
    except json.JSONDecodeError:
        return {"_raw": raw}
    return parsed if isinstance(parsed, dict) else {"_raw": raw}


def _error_message(body: object) -> str | None:
    # The SDK hands over the body's `error` object; its `message` is the readable part.
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return None
