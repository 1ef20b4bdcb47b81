"""URLs as they may be shown or logged: with their secrets masked.

Every message or log line that names a URL (a database's, Redis's, a provider's base
URL, a platform's API) writes it through :func:`shown_url`, so that a password in it
never reaches a terminal or a server's logs.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

#: Query parameters whose values are secrets (``?password=…``, ``?api_key=…``).
_SECRET_PARAMS = ("password", "passwd", "secret", "token", "key", "auth", "signature")

#: The schemes SQLAlchemy reads (``postgresql+asyncpg``: the part before the ``+``).
_DATABASES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql"}


def shown_url(url: str) -> str:
    """``url`` with its password, and the values of secret-looking query parameters,
    replaced by ``***``: ``postgresql+asyncpg://corral:***@host/db``.

    A URL SQLAlchemy can read is rendered by SQLAlchemy (``hide_password``); any other
    by :mod:`urllib.parse`. Something that is no URL at all is shown only up to its
    first ``@``, which is where a password would end.
    """
    scheme = url.partition(":")[0].partition("+")[0].lower()
    try:
        return _db_url(url) if scheme in _DATABASES else _any_url(url)
    except ValueError:
        return url if "@" not in url else f"{MASK}@{url.rsplit('@', 1)[1]}"


#: The password of a URL inside any text: ``scheme://user:PASSWORD@``.
_PASSWORD_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@]*):[^\s@/]+@")


def masked(text: str) -> str:
    """``text`` with the password of every URL in it masked: for what libraries write
    in their log lines, whose URLs Corral does not format itself."""
    return _PASSWORD_RE.sub(rf"\g<head>:{MASK}@", text)


def scrubbed(text: str, url: str) -> str:
    """``text`` (an error's message, say) with the secrets of ``url`` masked wherever it
    repeats them: the whole URL, or its password alone."""
    text = masked(text.replace(url, shown_url(url)))
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if not password:
        return text
    # Alone, not inside a word: a password "b" leaves "database" as it is.
    alone = rf"(?<![A-Za-z0-9]){re.escape(password)}(?![A-Za-z0-9])"
    return re.sub(alone, MASK, text)


def _db_url(url: str) -> str:
    # Imported here: SQLAlchemy is not cheap to load, and most URLs are not a database's.
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise ValueError(str(exc)) from None
    if parsed.query:
        parsed = parsed.set(query={k: _param(k, v) for k, v in parsed.query.items()})
    # SQLAlchemy escapes the mask in a query's values; it reads better as it is.
    return parsed.render_as_string(hide_password=True).replace("%2A%2A%2A", MASK)


def _param(name: str, value: str | tuple[str, ...]) -> str | tuple[str, ...]:
    if not any(secret in name.lower() for secret in _SECRET_PARAMS):
        return value
    return MASK if isinstance(value, str) else tuple(MASK for _ in value)


def _any_url(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, _param(k, v)) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
