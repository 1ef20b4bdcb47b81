"""Short, readable ids for rows people quote: ``r-7f3a9c2b1d``."""

from __future__ import annotations

import secrets


def new_id(prefix: str) -> str:
    """``prefix``, a dash and 10 random hex characters (40 bits)."""
    return f"{prefix}-{secrets.token_hex(5)}"
