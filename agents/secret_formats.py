"""The credential formats the redactor knows, each a regular expression and a kind.

The provider formats follow the public detectors of Yelp's ``detect-secrets`` (its
``plugins/*.py``, Apache-2.0) and GitHub's secret-scanning list, widened where providers
have added prefixes since (``sk-proj-``, ``github_pat_``, Azure's ``Q~`` secrets). The
generic rules — ``NAME=value`` lines and random-looking strings right after words like
token/secret/password — catch what no prefix marks: the UUID-style token that a
prefix-only redactor let through.

Speed: every format but one starts with a fixed *trigger* (``AKIA``, ``xox``, ``://``,
a word like ``token``), found with ``str.find`` (words in the lower-cased text), which
is several times faster than any one regular expression of them all; only where a
trigger is found is the format's full pattern tried, anchored there.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class SecretFormat:
    """One credential format: its ``kind`` (shown as ``[redacted: kind]``), the fixed
    strings (``triggers``) one of which it starts with, its ``pattern`` from there on,
    and, for the generic rules, a ``check`` of the value found. A pattern with a
    ``value`` group redacts only that group (``password: [redacted: password]``).
    ``lead`` characters of the secret come before its trigger; ``any_case`` triggers are
    words found in any case; a format without triggers is searched for everywhere."""

    kind: str
    triggers: tuple[str, ...]
    pattern: str
    check: Callable[[str], bool] | None = None
    lead: int = 0
    any_case: bool = False
    #: The secret may start inside a word (``://`` after its scheme).
    inside_words: bool = False

    @property
    def generic(self) -> bool:
        """A rule about words and randomness, not a provider's format: where both find
        the same secret, the provider's name is the kind shown."""
        return self.check is not None


def entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    counts = Counter(text)
    size = len(text)
    return -sum(n / size * math.log2(n / size) for n in counts.values())


def looks_random(value: str) -> bool:
    """A token rather than a word, a path or a number: sixteen characters or more, of
    letters and digits mixed (or of both cases, when longer), and varied enough (a UUID
    has about 3.6 bits a character; words and paths have fewer, or no digits)."""
    if len(value) < 16 or "/" in value.strip("/="):
        return False
    letters = any(c.isalpha() for c in value)
    digits = any(c.isdigit() for c in value)
    cases = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return letters and (digits or (cases and len(value) >= 24)) and entropy(value) >= 3.0


def secret_value(value: str) -> bool:
    """The value of a ``…KEY=…``/``…TOKEN: …`` line is a secret, not a setting: eight
    characters or more, with a digit or both cases, and not a reference to one
    (``${VAR}``, ``$VAR``, ``<…>``, ``***``)."""
    if _is_reference(value) or len(value) < 8:
        return False
    digits = any(c.isdigit() for c in value)
    cases = any(c.islower() for c in value) and any(c.isupper() for c in value)
    return (digits and not value.isdigit()) or cases


def password_value(value: str) -> bool:
    """A password can be anything of four characters or more, but not a reference."""
    return len(value) >= 4 and not _is_reference(value)


def _is_reference(value: str) -> bool:
    return value.startswith(("$", "<", "*", "%", "{", "[")) or value.lower() in _PLACEHOLDERS


_PLACEHOLDERS = {"none", "null", "true", "false", "required", "optional", "redacted", "hidden"}


#: What may follow a secret's name word before ``=``/``:`` (``DB_PASSWORD_FILE``).
_NAME_TAIL = r"(?:[_.-][A-Za-z0-9]+)*"
_ASSIGN = r"""["']?[ \t]*[:=][ \t]*"""
# No backslash: in a logged repr, ``\n`` ends a line's value.
_VALUE = r"""["'`]?(?P<value>[^\s"'`,;\\]+)"""
#: Between a word like token and the token: ``token f81d…``, ``token: …``, ``token is …``.
_NEAR_GAP = r"""s?(?![A-Za-z0-9])[ \t]*(?:[:=]|is\b|was\b)?[ \t]*["'`]?"""
_RANDOM = r"(?P<value>[A-Za-z0-9][A-Za-z0-9_+/=.-]{15,})"

_PASSWORD_WORDS = ("passphrase", "password", "passwd", "pass", "pwd")
_SECRET_WORDS = (
    *("secret", "token", "apikey", "api_key", "api-key", "key", "credentials"),
    *("credential", "auth"),
)
_NEAR_WORDS = (
    *("tokens", "token", "secret", "password", "passwd", "bearer", "credential"),
    *("authorization", "auth", "api key", "access key", "private key"),
)


def _words(words: tuple[str, ...]) -> str:
    return "(?i:" + "|".join(re.escape(w) for w in words) + ")"


#: The formats in the order they are tried where a trigger is found: a provider's format
#: before the generic rules, so that a Stripe key in a ``KEY=value`` line is called a
#: Stripe key.
FORMATS: tuple[SecretFormat, ...] = (
    SecretFormat(
        "private key",
        ("-----BEGIN",),
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"[\s\S]*?(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    ),
    SecretFormat(
        "AWS access key",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        r"(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])",
    ),
    SecretFormat(
        "AWS secret key",
        ("aws_", "aws-", "awssecret"),
        r"(?i:aws[_-]?secret[_-]?(?:access[_-]?)?key)"
        + _ASSIGN
        + r"""["']?(?P<value>[A-Za-z0-9/+=]{40})""",
        any_case=True,
    ),
    SecretFormat("Google API key", ("AIza",), r"AIza[0-9A-Za-z_-]{35}"),
    SecretFormat("Google OAuth token", ("ya29.",), r"ya29\.[0-9A-Za-z_-]{20,}"),
    SecretFormat(
        "Azure storage key",
        ("AccountKey=", "SharedAccessKey="),
        r"(?:AccountKey|SharedAccessKey)=(?P<value>[A-Za-z0-9+/=]{40,})",
        inside_words=True,
    ),
    SecretFormat(
        "Azure client secret",
        ("Q~",),
        r"[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}",
        lead=4,
    ),
    SecretFormat(
        "Azure SAS signature",
        ("sig=",),
        r"sig=(?P<value>[A-Za-z0-9%+/=]{30,})",
        inside_words=True,
    ),
    SecretFormat(
        "Slack webhook",
        ("https://hooks.slack.com/",),
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
    ),
    SecretFormat(
        "Slack token",
        ("xox", "xapp-"),
        r"xox[abposr]-[A-Za-z0-9-]{10,}|xapp-\d-[A-Za-z0-9-]{10,}",
    ),
    SecretFormat(
        "GitHub token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}",
    ),
    SecretFormat(
        "GitLab token",
        ("glpat-", "gldt-", "glrt-", "glptt-"),
        r"gl(?:pat|dt|rt|ptt)-[A-Za-z0-9_-]{20,}",
    ),
    SecretFormat("Anthropic key", ("sk-ant-",), r"sk-ant-[a-z]+\d*-[A-Za-z0-9_-]{20,}"),
    SecretFormat(
        "OpenAI key",
        ("sk-",),
        r"sk-(?:proj|svcacct|admin)-[A-Za-z0-9_-]{20,}"
        r"|sk-[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}"
        r"|sk-[A-Za-z0-9]{48}(?![A-Za-z0-9])",
    ),
    SecretFormat(
        "Stripe key",
        ("sk_", "rk_", "pk_", "whsec_"),
        r"[srp]k_(?:live|test)_[A-Za-z0-9]{20,}|whsec_[A-Za-z0-9]{24,}",
    ),
    SecretFormat("SendGrid key", ("SG.",), r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
    SecretFormat("Twilio key", ("SK",), r"SK[0-9a-f]{32}(?![A-Za-z0-9])"),
    SecretFormat("Mailgun key", ("key-",), r"key-[0-9a-f]{32}(?![A-Za-z0-9])"),
    SecretFormat("npm token", ("npm_",), r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    SecretFormat("PyPI token", ("pypi-",), r"pypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{50,}"),
    SecretFormat("Hugging Face token", ("hf_",), r"hf_[A-Za-z]{34}(?![A-Za-z0-9])"),
    SecretFormat(
        "DigitalOcean token",
        ("doo_v1_", "dop_v1_", "dor_v1_"),
        r"do[opr]_v1_[a-f0-9]{64}(?![A-Za-z0-9])",
    ),
    SecretFormat(
        "Shopify token",
        ("shpat_", "shpca_", "shppa_", "shpss_"),
        r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}(?![A-Za-z0-9])",
    ),
    # Its first part is a user id in base64: no fixed prefix, so it is searched for.
    SecretFormat(
        "Discord token",
        (),
        r"(?<![A-Za-z0-9_-])[MNO][A-Za-z0-9_-]{23,25}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}"
        r"(?![A-Za-z0-9])",
    ),
    SecretFormat(
        "JWT", ("eyJ",), r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}"
    ),
    SecretFormat(
        "password in URL",
        ("://",),
        r"://[^\s:/@]*:(?P<value>[^\s@/]+)@",
        inside_words=True,
    ),
    SecretFormat(
        "password",
        _PASSWORD_WORDS,
        _words(_PASSWORD_WORDS) + _NAME_TAIL + _ASSIGN + _VALUE,
        password_value,
        any_case=True,
    ),
    SecretFormat(
        "secret",
        _SECRET_WORDS,
        _words(_SECRET_WORDS) + _NAME_TAIL + _ASSIGN + _VALUE,
        secret_value,
        any_case=True,
    ),
    SecretFormat(
        "token",
        _NEAR_WORDS,
        _words(_NEAR_WORDS) + _NEAR_GAP + _RANDOM,
        looks_random,
        any_case=True,
    ),
)


@dataclass(frozen=True)
class Compiled:
    """The formats ready to scan with: by trigger, the formats that start with it, in
    the order of :data:`FORMATS` (``exact`` found as they are, ``words`` in the
    lower-cased text), each with its pattern; and the formats searched for everywhere."""

    exact: dict[str, list[tuple[int, SecretFormat, re.Pattern[str]]]]
    words: dict[str, list[tuple[int, SecretFormat, re.Pattern[str]]]]
    everywhere: list[tuple[int, SecretFormat, re.Pattern[str]]]


def compile_formats(formats: tuple[SecretFormat, ...] = FORMATS) -> Compiled:
    """``formats`` compiled for :class:`~corral.agents.redaction.Redactor`."""
    compiled = Compiled({}, {}, [])
    for order, fmt in enumerate(formats):
        entry = (order, fmt, re.compile(fmt.pattern))
        if not fmt.triggers:
            compiled.everywhere.append(entry)
        table = compiled.words if fmt.any_case else compiled.exact
        for trigger in fmt.triggers:
            table.setdefault(trigger, []).append(entry)
    return compiled
