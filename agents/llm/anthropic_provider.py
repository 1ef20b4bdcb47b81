"""Anthropic's Messages API behind the :class:`~agents.llm.types.Provider` interface."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corral.agents.llm.rate_headers import rate_info
from corral.agents.llm.retry import is_retryable_status, parse_retry_after
from corral.agents.llm.types import (
    MALFORMED_ANSWER,
    Block,
    ChatMessage,
    Completion,
    ModelError,
    Request,
    TextBlock,
    ToolResult,
    ToolUse,
    malformed_answer,
)
from corral.agents.llm.usage import RateInfo, Usage

if TYPE_CHECKING:
    from anthropic import AsyncAnthropic
    from anthropic.types import (
        Message,
        MessageParam,
        TextBlockParam,
        ToolParam,
        ToolResultBlockParam,
        ToolUseBlockParam,
    )


class AnthropicProvider:
    """Calls ``messages.create`` on one shared ``AsyncAnthropic`` client.

    ``api_key`` and ``base_url`` are ``ANTHROPIC_API_KEY`` and ``ANTHROPIC_BASE_URL`` as
    the composition root read them; None leaves the SDK's default.
    """

    name = "anthropic"

    def __init__(
        self, *, api_key: str | None = None, base_url: str | None = None, timeout: float = 120.0
    ) -> None:
        # Imported here: the SDK takes seconds to import and `corral --help` must not wait.
        from anthropic import AsyncAnthropic

        # max_retries=0: retries belong to the fallback chain, which can also switch model.
        self._client: AsyncAnthropic = AsyncAnthropic(
            api_key=api_key, base_url=base_url, timeout=timeout, max_retries=0
        )

    async def aclose(self) -> None:
        """Close the client's connection pool."""
        await self._client.close()

    async def complete(self, model: str, request: Request) -> Completion:
        """One ``messages.create`` call; SDK errors become :class:`ModelError`.

        The completion and the error carry the usage and the rate-limit headers.
        """
        import anthropic

        try:
            # The raw response, for its rate-limit headers; parse() gives the Message.
            raw = await self._client.messages.with_raw_response.create(
                model=model,
                max_tokens=request.max_tokens,
                system=request.system or anthropic.omit,
                messages=[_message(m) for m in request.messages],
                tools=[_tool(t.name, t.description, t.parameters) for t in request.tools]
                or anthropic.omit,
                tool_choice=(
                    {"type": "tool", "name": request.force_tool}
                    if request.force_tool
                    else anthropic.omit
                ),
            )
            message = await raw.parse()
            return _completion(model, message, rate_info(raw.headers))
        except anthropic.APIStatusError as exc:
            raise ModelError(
                f"anthropic/{model}",
                exc.api_message or exc.message,
                status=exc.status_code,
                retryable=is_retryable_status(exc.status_code),
                retry_after=parse_retry_after(exc.response.headers),
                rate=rate_info(exc.response.headers),
            ) from exc
        except anthropic.APIConnectionError as exc:
            raise ModelError(f"anthropic/{model}", exc.message, retryable=True) from exc
        except anthropic.AnthropicError as exc:
            raise ModelError(f"anthropic/{model}", str(exc)) from exc
        except MALFORMED_ANSWER as exc:
            raise malformed_answer(f"anthropic/{model}") from exc


def _message(message: ChatMessage) -> MessageParam:
    content = [_block(b) for b in message.content]
    if message.role == "assistant":
        return {"role": "assistant", "content": content}
    return {"role": "user", "content": content}


def _block(block: Block) -> TextBlockParam | ToolUseBlockParam | ToolResultBlockParam:
    match block:
        case TextBlock(text=text):
            return {"type": "text", "text": text}
        case ToolUse(id=id_, name=name, input=input_):
            return {"type": "tool_use", "id": id_, "name": name, "input": input_}
        case ToolResult(tool_use_id=tool_use_id, content=content, is_error=is_error):
            return {
                "type": "tool_result",
                "tool_use_id": tool_use_id,
                "content": content,
                "is_error": is_error,
            }


def _tool(name: str, description: str, parameters: dict[str, Any]) -> ToolParam:
    return {"name": name, "description": description, "input_schema": parameters}


def _completion(model: str, message: Message, rate: RateInfo) -> Completion:
    blocks: list[TextBlock | ToolUse] = []
    for block in message.content:
        if block.type == "text":
            blocks.append(TextBlock(block.text))
        elif block.type == "tool_use":
            blocks.append(ToolUse(block.id, block.name, dict(block.input)))
    usage = Usage(
        input=message.usage.input_tokens,
        output=message.usage.output_tokens,
        cache_read=message.usage.cache_read_input_tokens or 0,
        cache_write=message.usage.cache_creation_input_tokens or 0,
    )
    return Completion(
        blocks=tuple(blocks),
        model=f"anthropic/{model}",
        tokens_in=usage.input_total,
        tokens_out=usage.output,
        stop_reason=message.stop_reason or "",
        usage=usage,
        rate=rate,
    )
