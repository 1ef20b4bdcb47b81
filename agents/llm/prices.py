"""What model calls cost: the shipped price table (``prices.json``, dated data rather than
code) with the team's ``prices:`` laid over it, and the arithmetic of a call's cost.

Prices are US dollars per million tokens, per ``provider/model``. A call's cost is each
token count of its :class:`~agents.llm.usage.Usage` times its own price; a model the table
does not know has no price, and its cost is unknown (None), never guessed as zero.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.resources import files
from typing import Any, Protocol

from corral.agents.llm.usage import Usage

_DATA = "prices.json"
_PER = 1_000_000
# A dated snapshot id: Anthropic's `-20251001`, OpenAI's `-2024-08-06`.
_DATE_SUFFIX = re.compile(r"-(?:\d{8}|\d{4}-\d{2}-\d{2})$")


@dataclass(frozen=True)
class ModelPrice:
    """Dollars per million tokens of one model, for each kind of token of :class:`Usage`."""

    input: float
    output: float
    cache_read: float
    cache_write: float


class PriceLike(Protocol):
    """A price as ``team.yaml``'s ``prices:`` gives it: the cache prices may be left out."""

    @property
    def input(self) -> float: ...
    @property
    def output(self) -> float: ...
    @property
    def cache_read(self) -> float | None: ...
    @property
    def cache_write(self) -> float | None: ...


def base_model(target: str) -> str:
    """``target`` without a dated snapshot suffix (``…/claude-haiku-4-5-20251001`` →
    ``…/claude-haiku-4-5``); ``target`` itself when it has none."""
    return _DATE_SUFFIX.sub("", target)


class PriceTable:
    """Prices by ``provider/model``; see :meth:`builtin` for the shipped table."""

    def __init__(self, models: Mapping[str, ModelPrice], as_of: str) -> None:
        self._models = dict(models)
        #: The date the shipped prices were taken from the providers' price pages.
        self.as_of = as_of

    @classmethod
    def builtin(cls, overrides: Mapping[str, PriceLike] | None = None) -> PriceTable:
        """The shipped table with ``overrides`` (the team's ``prices:``) laid over it.

        An override that leaves out a cache price keeps the shipped one for that model,
        else pays the input price for it: cached tokens are then never counted as cheaper
        than they may be, so a budget errs on the safe side.
        """
        data: dict[str, Any] = json.loads(
            files("corral.agents.llm").joinpath(_DATA).read_text(encoding="utf-8")
        )
        models = {name: ModelPrice(**price) for name, price in data["models"].items()}
        for name, price in (overrides or {}).items():
            shipped = models.get(name)
            models[name] = ModelPrice(
                input=price.input,
                output=price.output,
                cache_read=_first(
                    price.cache_read, shipped.cache_read if shipped else None, price.input
                ),
                cache_write=_first(
                    price.cache_write, shipped.cache_write if shipped else None, price.input
                ),
            )
        return cls(models, str(data["as_of"]))

    def price(self, target: str) -> ModelPrice | None:
        """The price of ``provider/model``, or of its undated base model; None if unknown."""
        found = self._models.get(target)
        return found if found is not None else self._models.get(base_model(target))

    def cost(self, target: str, usage: Usage) -> float | None:
        """Dollars that ``usage`` of ``target`` cost; None when its price is unknown."""
        price = self.price(target)
        if price is None:
            return None
        return (
            usage.input * price.input
            + usage.output * price.output
            + usage.cache_read * price.cache_read
            + usage.cache_write * price.cache_write
        ) / _PER

    def worst_case(self, target: str, input_tokens: int, max_tokens: int) -> float | None:
        """The most a call of ``target`` may cost: its input at the dearer of the input and
        cache-write prices, and all of ``max_tokens`` at the output price; None if unknown."""
        price = self.price(target)
        if price is None:
            return None
        dearest_input = max(price.input, price.cache_write)
        return (input_tokens * dearest_input + max_tokens * price.output) / _PER


def _first(*values: float | None) -> float:
    return next(v for v in values if v is not None)
