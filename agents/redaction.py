"""The redactor: finds secrets in text and replaces each by ``[redacted: kind]``.

It knows three things, built once by the composition root: the exact values of the
secrets Corral itself holds (its settings' and environment's tokens, keys and passwords,
see :func:`held_secrets`), the common credential formats (:mod:`.secret_formats`) and the
team's own ``redact.patterns``. It runs on every path in and out: before a model call,
on tool results, on every post, before anything is stored, and in log lines.

Why not Yelp's ``detect-secrets`` (Apache-2.0, the best known Python detector): it is a
file scanner. Its ``scan_line`` on free text runs every plugin and, without a file's
context, flags almost every word as a "high entropy string" (ordinary words, commit
hashes and URLs alike); it measured about 4 ms a chat message here, some hundred times
this module; it reports values, not where they are, so replacing them is a second
search; its private-key plugin sees only the ``BEGIN`` line of a multi-line PEM block;
it reads its configuration from a process-wide singleton; and its last release (1.5.0)
is of May 2024. Its plugin regexes are the source of most of :mod:`.secret_formats`,
which compiles them, with the generic rules, into one pattern that scans a text once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

from corral.agents.secret_formats import SecretFormat, compile_formats

#: A held value shorter than this is no secret worth the false alarms (``PORT=3000``).
MIN_HELD_LENGTH = 8
#: Parts of a variable's name (between ``_``) that say its value is a secret: one of
#: these words, or a part ending with one (``APIKEY``, ``PGPASSWORD``), but not any part
#: that merely ends in "pass" (``BYPASS``).
_SECRET_PARTS = ("PASS", "PWD", "AUTH")
_SECRET_ENDINGS = (
    "KEY",
    "TOKEN",
    "TOKENS",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "CREDENTIALS",
)
_NAME_SEPARATOR = re.compile(r"[^A-Z0-9]+")
#: The kind of a team pattern's match.
TEAM_PATTERN = "company secret"

#: What redacts a text: :meth:`Redactor.redact`, as the seams and the audit take it.
Redact = Callable[[str], str]


def held_secrets(*sources: Mapping[str, str | None]) -> list[tuple[str, str]]:
    """The secrets among the variables of ``sources`` (a process's environment,
    ``.env``, the settings), as ``(name, value)``: the values of those named like
    secrets (``…_TOKEN``, ``…_API_KEY``, ``…PASSWORD…``) and the passwords inside URLs
    (``DATABASE_URL``), each at least :data:`MIN_HELD_LENGTH` long."""
    held: dict[str, str] = {}
    for variables in sources:
        for name, value in variables.items():
            if not value:
                continue
            if _secret_name(name):
                held.setdefault(value, name)
            elif "://" in value and (password := _url_password(value)):
                held.setdefault(password, f"{name} password")
    return [(name, value) for value, name in held.items() if len(value) >= MIN_HELD_LENGTH]


def _secret_name(name: str) -> bool:
    parts = _NAME_SEPARATOR.split(name.upper())
    return any(p in _SECRET_PARTS or p.endswith(_SECRET_ENDINGS) for p in parts)


def _url_password(url: str) -> str:
    try:
        return urlsplit(url).password or ""
    except ValueError:
        return ""


@dataclass(frozen=True)
class Redaction:
    """A text with its secrets replaced, and the kinds of secret found in it, each once
    in the order first found (empty: the text is as it was)."""

    text: str
    kinds: tuple[str, ...] = ()


class Redactor:
    """Replaces secrets in text by ``[redacted: kind]``.

    ``held`` are the secrets Corral holds, as ``(name, value)`` (the name is the kind
    shown: ``[redacted: SLACK_BOT_TOKEN]``; see :func:`held_secrets`); ``patterns`` the
    team's ``redact.patterns`` (validated by the team loader). The built-in formats are
    always on.
    """

    def __init__(self, held: Iterable[tuple[str, str]] = (), patterns: Sequence[str] = ()) -> None:
        self._formats = compile_formats()
        # Longest first: a secret that contains another is replaced whole.
        values = sorted(
            ((v, k) for k, v in held if len(v) >= MIN_HELD_LENGTH), key=lambda vk: -len(vk[0])
        )
        self._held_kind = dict(values)
        self._held = re.compile("|".join(re.escape(v) for v, _ in values)) if values else None
        self._patterns = [re.compile(p) for p in patterns]
        # A thread's history and the system prompt go out again with every step of a
        # run: each is scanned once. Bounded: an 8k-token prompt is 32 kB of text.
        self._cached = lru_cache(maxsize=256)(self._scan)

    def redact(self, text: str) -> str:
        """``text`` with every secret replaced by ``[redacted: kind]``."""
        return self.redaction(text).text

    def redaction(self, text: str) -> Redaction:
        """``text`` redacted, with the kinds of secret found (to tell the person)."""
        if not text:
            return Redaction(text)
        return self._cached(text)

    def _scan(self, text: str) -> Redaction:
        # Where two rules find the same secret, the longer match wins, then a named
        # format over a generic rule.
        spans = sorted(self._spans(text), key=lambda s: (s[0], -s[1], s[3]))
        if not spans:
            return Redaction(text)
        out: list[str] = []
        kinds: dict[str, None] = {}
        pos = 0
        for start, end, kind, _ in spans:
            if start < pos:
                # Inside a secret replaced already: it is gone with it.
                continue
            out.append(text[pos:start])
            out.append(f"[redacted: {kind}]")
            kinds[kind] = None
            pos = end
        out.append(text[pos:])
        return Redaction("".join(out), tuple(kinds))

    def _spans(self, text: str) -> Iterable[tuple[int, int, str, bool]]:
        if self._held is not None:
            for m in self._held.finditer(text):
                yield m.start(), m.end(), self._held_kind[m.group()], False
        for pattern in self._patterns:
            for m in pattern.finditer(text):
                if m.end() > m.start():
                    yield m.start(), m.end(), TEAM_PATTERN, False
        yield from self._format_spans(text)

    def _format_spans(self, text: str) -> Iterable[tuple[int, int, str, bool]]:
        found: dict[tuple[int, int], tuple[SecretFormat, re.Pattern[str]]] = {}
        lowered = text.lower()
        if len(lowered) != len(text):
            # A few letters lower-case to two characters (İ): keep the positions.
            lowered = text.translate(_ASCII_LOWER)
        for table, haystack in ((self._formats.exact, text), (self._formats.words, lowered)):
            for trigger, entries in table.items():
                at = haystack.find(trigger)
                while at != -1:
                    for order, fmt, pattern in entries:
                        found[(at - fmt.lead, order)] = (fmt, pattern)
                    at = haystack.find(trigger, at + 1)
        done = -1
        for (at, _), (fmt, pattern) in sorted(found.items()):
            if at <= done or at < 0:
                continue
            if not fmt.inside_words and at > 0 and text[at - 1].isalnum():
                continue
            m = pattern.match(text, at)
            if m is not None and self._kept(fmt, m):
                # The first format that holds at a place names it.
                done = at
                yield (*_value_span(m), fmt.kind, fmt.generic)
        for _, fmt, pattern in self._formats.everywhere:
            for m in pattern.finditer(text):
                yield (*_value_span(m), fmt.kind, fmt.generic)

    @staticmethod
    def _kept(fmt: SecretFormat, m: re.Match[str]) -> bool:
        start, end = _value_span(m)
        return fmt.check is None or fmt.check(m.string[start:end])


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _value_span(m: re.Match[str]) -> tuple[int, int]:
    """Where the secret is: the ``value`` group, if the format has one, or all of it."""
    return m.span("value") if "value" in m.re.groupindex else m.span()


#: The built-in formats alone: what redacts where the composition root has not said
#: more (a part built on its own, in a test or a tool), so that no path is left bare.
BUILTIN = Redactor()
