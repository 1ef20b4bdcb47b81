"""The price table: shipped as dated data, overridable by the team, exact arithmetic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib.resources import files

import pytest

from corral.agents.llm.prices import ModelPrice, PriceTable, base_model
from corral.agents.llm.usage import Usage

HAIKU = "anthropic/claude-haiku-4-5"


@dataclass(frozen=True)
class Override:
    input: float
    output: float
    cache_read: float | None = None
    cache_write: float | None = None


def test_the_shipped_table_is_dated_and_prices_the_sample_teams_models() -> None:
    table = PriceTable.builtin()
    assert table.as_of.count("-") == 2
    for model in (HAIKU, "openai/gpt-5-mini", "anthropic/claude-sonnet-4-5", "openai/gpt-5"):
        assert table.price(model) is not None, model
    assert table.price(HAIKU) == ModelPrice(1.0, 5.0, 0.1, 1.25)


def test_every_shipped_price_is_complete_and_not_negative() -> None:
    data = json.loads(files("corral.agents.llm").joinpath("prices.json").read_text())
    assert data["source"]
    for name, price in data["models"].items():
        assert set(price) == {"input", "output", "cache_read", "cache_write"}, name
        assert all(value >= 0 for value in price.values()), name
        # OpenAI does not charge for cache writes: a written token costs the input price.
        if name.startswith("openai/"):
            assert price["cache_write"] == price["input"], name


def test_cost_counts_every_kind_of_token_at_its_own_price() -> None:
    table = PriceTable.builtin()
    usage = Usage(input=1200, output=350, cache_read=40_000, cache_write=2_000)
    expected = (1200 * 1.0 + 350 * 5.0 + 40_000 * 0.1 + 2_000 * 1.25) / 1_000_000
    assert table.cost(HAIKU, usage) == expected
    assert table.cost(HAIKU, Usage()) == 0.0
    # A million output tokens cost the output price, to the cent.
    assert table.cost("openai/gpt-5", Usage(output=1_000_000)) == 10.0


def test_a_dated_model_id_costs_what_its_base_model_costs() -> None:
    table = PriceTable.builtin()
    usage = Usage(input=10, output=20, cache_read=30)
    assert table.cost(f"{HAIKU}-20251001", usage) == table.cost(HAIKU, usage)
    assert table.price("openai/gpt-4o-2024-08-06") == table.price("openai/gpt-4o")
    # A snapshot priced differently from its base keeps its own price.
    assert table.price("openai/gpt-4o-2024-05-13") != table.price("openai/gpt-4o")
    assert base_model("openai/gpt-4.1-mini") == "openai/gpt-4.1-mini"


def test_an_unknown_model_has_no_price_and_an_unknown_cost() -> None:
    table = PriceTable.builtin()
    assert table.price("openai/llama3.1:8b") is None
    assert table.cost("openai/llama3.1:8b", Usage(input=5)) is None
    assert table.worst_case("openai/llama3.1:8b", 100, 4096) is None


def test_overrides_win_and_price_new_models() -> None:
    table = PriceTable.builtin(
        {HAIKU: Override(0.5, 2.5, 0.05, 0.6), "openai/llama3.1:8b": Override(0.0, 0.0)}
    )
    assert table.price(HAIKU) == ModelPrice(0.5, 2.5, 0.05, 0.6)
    assert table.cost("openai/llama3.1:8b", Usage(input=10, output=10)) == 0.0
    # Other models keep the shipped prices.
    assert table.price("openai/gpt-5") == PriceTable.builtin().price("openai/gpt-5")


def test_an_override_without_cache_prices_keeps_the_shipped_ones_else_the_input_price() -> None:
    table = PriceTable.builtin({HAIKU: Override(2.0, 8.0), "openai/local": Override(0.3, 0.9)})
    assert table.price(HAIKU) == ModelPrice(2.0, 8.0, 0.1, 1.25)
    assert table.price("openai/local") == ModelPrice(0.3, 0.9, 0.3, 0.3)


@pytest.mark.parametrize(
    ("model", "dearest_input", "output"),
    [(HAIKU, 1.25, 5.0), ("openai/gpt-5-mini", 0.25, 2.0)],
)
def test_worst_case_takes_the_dearest_input_and_every_output_token(
    model: str, dearest_input: float, output: float
) -> None:
    table = PriceTable.builtin()
    assert table.worst_case(model, 8_000, 4096) == (8_000 * dearest_input + 4096 * output) / 1e6
    # No call of that size can cost more.
    for usage in (Usage(input=8_000, output=4096), Usage(cache_write=8_000, output=4096)):
        cost = table.cost(model, usage)
        assert cost is not None
        assert cost <= (table.worst_case(model, 8_000, 4096) or 0)
