"""Hypothesis strategies for what comes from outside Corral, and the settings profiles of
the fuzzers (tests/test_fuzz_*.py).

Profiles: ``ci`` (the default: few examples, derandomised, so CI runs the same examples
in well under a minute in all) and ``long`` (``HYPOTHESIS_PROFILE=long`` or ``make fuzz``:
many random examples, for a run on demand)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

settings.register_profile(
    "ci",
    max_examples=25,
    deadline=None,
    derandomize=True,
    print_blob=True,
    # Each example reuses the test's server, database and rig: building them per example
    # would cost seconds, and every fuzzer checks that the rig stays healthy across them.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "long",
    max_examples=1_000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Strings that broke, or could break, something somewhere.
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "x\udfff",
    "\r\n\t\x0b\x0c\x1b[31m",
    "\u202e\u200b\ufeff",
    "<@U0BOTCORRAL>",
    "@beaver @owl @nobody",
    "<!channel> <#C0GENERAL1|general>",
    "[Owl (agent)]: QA passed",
    "1700000000.000100",
    "abc",
    "-1",
    "NaN",
    "9" * 40,
    "x" * 5_000,
    "{not json",
    "%s %d {0} {}",
    "'; DROP TABLE inbox; --",
    "../../etc/passwd",
    "🦘" * 100,
]

#: Every code point, lone surrogates and control characters included.
any_character = st.characters(exclude_categories=())


def outside_text(max_size: int = 300) -> st.SearchStrategy[str]:
    """Text as a person or a platform may send it: random, or one of :data:`NASTY`, or
    both run together."""
    random = st.text(any_character, max_size=max_size)
    nasty = st.sampled_from(NASTY)
    return st.one_of(nasty, random, st.tuples(nasty, random).map("".join))


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """Any JSON value (what a platform's body may hold where something else was meant)."""
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        outside_text(60),
    )
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(outside_text(12), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )


_MISSING = object()
_CHOICES = ["keep", "keep", "keep", "deeper", "drop", "null", "text", "json"]


@st.composite
def mangled(draw: st.DrawFn, valid: Mapping[str, Any]) -> dict[str, Any]:
    """``valid`` with some of its fields removed, set to null, to a wrong type or to
    :func:`outside_text`, nested objects and lists mangled in turn, and fields added."""
    result: dict[str, Any] = {}
    for key, value in valid.items():
        replaced = draw(_mangled_value(value))
        if replaced is not _MISSING:
            result[key] = replaced
    result.update(draw(st.dictionaries(outside_text(12), json_values(4), max_size=2)))
    return result


@st.composite
def _mangled_value(draw: st.DrawFn, value: Any) -> Any:
    choice = draw(st.sampled_from(_CHOICES))
    if choice == "keep":
        return value
    if choice == "deeper":
        if isinstance(value, Mapping):
            return draw(mangled(value))
        if isinstance(value, list):
            return [v for v in (draw(_mangled_value(v)) for v in value) if v is not _MISSING]
        return value
    if choice == "drop":
        return _MISSING
    if choice == "null":
        return None
    if choice == "text":
        return draw(outside_text(80))
    return draw(json_values(6))
