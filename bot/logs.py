"""Log set-up: readable lines or JSON (``CORRAL_LOG_FORMAT=json``), each with its run id,
and every line redacted (:func:`redact_logs`): a failed INSERT's message carries the
statement's parameters, a person's text among them."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from corral.agents.run_context import RunIdFilter
from corral.storage.urls import masked

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "run_id"}


class JsonFormatter(logging.Formatter):
    """One JSON object a line, with the run id and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        run_id = getattr(record, "run_id", "")
        if run_id:
            data["run_id"] = run_id
        data.update({k: v for k, v in vars(record).items() if k not in _STANDARD})
        if record.exc_info:
            data["exc"] = record.exc_text or self.formatException(record.exc_info)
        # Libraries log the URLs they call, passwords and all.
        return masked(json.dumps(data, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time level logger [run] message``."""

    def format(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", "")
        record.run = f" [{run_id}]" if run_id else ""
        # Libraries log the URLs they call, passwords and all.
        return masked(super().format(record))


class RedactingFilter(logging.Filter):
    """Redacts a record before any handler writes it: the message with its arguments,
    the exception's text and stack, and text given as ``extra=``."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact
        self._exceptions = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record`` in place; every record is kept."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it as it would
            return True
        record.msg = self.redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exceptions.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for name, value in vars(record).items():
            if name not in _STANDARD and isinstance(value, str):
                setattr(record, name, self.redact(value))
        return True


def redact_logs(redact: Callable[[str], str]) -> None:
    """Redact every line the root logger's handlers write with ``redact`` (replacing the
    redaction installed before, if any)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(redact))


def configure(fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send Corral's logs (and its libraries') to ``stream`` in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunIdFilter())
    # The built-in formats from the first line on; the composition root adds the
    # secrets it holds and the team's patterns (redact_logs).
    handler.addFilter(RedactingFilter(_builtin_redact))
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            TextFormatter("%(asctime)s %(levelname)s %(name)s%(run)s %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The HTTP clients log every request at INFO; that is noise next to a run's lines.
    for noisy in ("httpx", "httpcore", "aiosqlite", "asyncio", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _builtin_redact(text: str) -> str:
    # Imported when first used: the CLI configures logging before every command.
    from corral.agents.redaction import BUILTIN

    return BUILTIN.redact(text)
