"""What one model call used, and what the provider said of its rate limits: the values the
limits, budgets and costs of a run are settled with (DESIGN.md, "The run and its seams")."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Usage:
    """Tokens of one call, each counted once.

    ``input`` is the input that was neither read from nor written to the prompt cache
    (Anthropic's ``input_tokens``; OpenAI's ``prompt_tokens`` less its cached tokens),
    ``cache_read`` what was read from the cache and ``cache_write`` what was written to it
    (Anthropic only), so the cost of a call is each count times its own price.
    """

    input: int = 0
    output: int = 0
    cache_read: int = 0
    cache_write: int = 0

    @property
    def input_total(self) -> int:
        """Every input token, cached or not: what the providers' input limits count."""
        return self.input + self.cache_read + self.cache_write

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.cache_read + other.cache_read,
            self.cache_write + other.cache_write,
        )


#: The dimensions a provider limits, as its headers name them: ``requests``, ``tokens``
#: (input and output together), ``input_tokens`` and ``output_tokens``.
DIMENSIONS = ("requests", "tokens", "input_tokens", "output_tokens")


@dataclass(frozen=True)
class RateInfo:
    """What a response's rate-limit headers said, per dimension (a key of
    :data:`DIMENSIONS`); a dimension the provider did not report is absent."""

    #: The provider's limit, in units per its window.
    limit: dict[str, int] = field(default_factory=dict)
    #: Units left in the window now.
    remaining: dict[str, int] = field(default_factory=dict)
    #: Seconds from the response until the dimension is fully replenished.
    reset_s: dict[str, float] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.limit or self.remaining or self.reset_s)
