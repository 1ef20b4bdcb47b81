"""Why a run failed, in words a person can read in the thread: no exception text, no
provider's raw message (which may quote a URL with a key in it). The details go to the
log, with the run id."""

from __future__ import annotations

from corral.agents.llm.types import AllModelsFailed, ModelError


def plain_reason(exc: AllModelsFailed) -> str:
    """ "every model failed (anthropic/claude-haiku-4-5: rate limited; …)"."""
    tried = "; ".join(f"{e.model}: {_what_happened(e)}" for e in exc.errors)
    return f"every model failed ({tried})" if tried else "every model failed"


def _what_happened(error: ModelError) -> str:
    status = error.status
    if status is None:
        return "could not be reached"
    if status in (401, 403):
        return "the API key was refused"
    if status == 404:
        return "the model was not found"
    if status == 429:
        return "rate limited"
    if status >= 500:
        return f"the provider had an error ({status})"
    return f"the request was refused ({status})"
