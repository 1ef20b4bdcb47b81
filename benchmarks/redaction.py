"""What redaction costs: the redactor on a typical chat message and on an 8k-token
prompt, against no redaction at all, in one run.

Redaction runs on every message stored, every model request (system prompt, history,
memories, tool results), every post and every log line, so it must cost little on
ordinary text. Each text is made unique per call (a counter in front), so the redactor's
cache of texts seen does not hide the scan; the cached case (a thread's history sent
again at a run's next step) is printed on its own line. The team is the corpus's (one
held secret, one ``redact.patterns`` entry), as in the tests.

Run it from the repository root::

    .venv/bin/python benchmarks/redaction.py
    .venv/bin/python benchmarks/redaction.py --runs 2000
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from data.secrets_corpus import HELD_NAME, HELD_VALUE, SECRETS, TEAM_PATTERN

from corral.agents.llm.types import ChatMessage, Request
from corral.agents.redaction import Redactor
from corral.agents.redaction_seams import redact_request

MESSAGE = (
    "Hey @beaver, the deploy of v2.14.3 failed on commit 3f9a1c2e8b7d6a5f4e3d2c1b0a9f8e7d, "
    "see https://ci.example.com/jobs/4512 — can you look at the migration before the "
    "standup? The error says the key for sort order is missing. Thanks!"
)
PROSE = (
    "We reviewed the release plan with the team on Tuesday; the migration adds an index "
    "to the orders table, and the author checked the rollback. Token usage was 12,345 "
    "for the run, cost $0.42. See https://github.com/acme/app/pull/1234 and commit "
    "a1b2c3d. def handler(event, context):\n    return {'status': 200, 'body': event}\n"
)
#: About 8,000 tokens at four characters a token.
PROMPT = (PROSE * (32_000 // len(PROSE) + 1))[:32_000]


def per_call_us(make: Callable[[], Callable[[str], object]], texts: list[str]) -> float:
    """The median over five rounds of the time per call, in µs, of the function ``make``
    gives (a new one each round: a redactor's cache starts empty) on ``texts``."""
    rounds = []
    for _ in range(5):
        fn = make()
        start = time.perf_counter()
        for text in texts:
            fn(text)
        rounds.append((time.perf_counter() - start) / len(texts) * 1e6)
    return statistics.median(rounds)


def nothing(text: str) -> str:
    """No redaction: the baseline."""
    return text


def redactor() -> Redactor:
    """The corpus team's redactor, new."""
    return Redactor([(HELD_NAME, HELD_VALUE)], [TEAM_PATTERN])


def through_the_wrapper() -> Callable[[str], object]:
    """A request of one user message ``text`` redacted as the model-call wrapper does."""
    redact = redactor().redact
    return lambda text: redact_request(
        Request("You run operations.", (ChatMessage.user(text),)), redact
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000, help="messages per round")
    args = parser.parse_args()
    messages = [f"{n} {MESSAGE}" for n in range(args.runs)]
    secrets = [f"{n} {MESSAGE} {SECRETS[n % len(SECRETS)].message}" for n in range(args.runs)]
    prompts = [f"{n} {PROMPT}" for n in range(max(args.runs // 20, 20))]
    warm = redactor()
    warm.redact(PROMPT)
    figures = [
        ("typical message, no redaction", per_call_us(lambda: nothing, messages)),
        ("typical message, redacted", per_call_us(lambda: redactor().redact, messages)),
        ("message with a secret, redacted", per_call_us(lambda: redactor().redact, secrets)),
        ("8k-token prompt, no redaction", per_call_us(lambda: nothing, prompts)),
        ("8k-token prompt, redacted", per_call_us(lambda: redactor().redact, prompts)),
        ("8k-token prompt, seen before (cached)", per_call_us(lambda: warm.redact, [PROMPT] * 100)),
        ("8k-token request, model-call wrapper", per_call_us(through_the_wrapper, prompts)),
    ]
    width = max(len(name) for name, _ in figures)
    print(f"redaction: median of 5 rounds ({args.runs} messages, {len(prompts)} prompts a round)")
    for name, us in figures:
        print(f"  {name:<{width}}  {us:10.2f} µs")


if __name__ == "__main__":
    main()
