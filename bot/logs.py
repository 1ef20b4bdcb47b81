"""Log set-up: readable lines or JSON (``CORRAL_LOG_FORMAT=json``), each with its run id."""

from __future__ import annotations

import json
import logging
import sys
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
            data["exc"] = self.formatException(record.exc_info)
        # Libraries log the URLs they call, passwords and all.
        return masked(json.dumps(data, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """``time level logger [run] message``."""

    def format(self, record: logging.LogRecord) -> str:
        run_id = getattr(record, "run_id", "")
        record.run = f" [{run_id}]" if run_id else ""
        # Libraries log the URLs they call, passwords and all.
        return masked(super().format(record))


def configure(fmt: str = "text", level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send Corral's logs (and its libraries') to ``stream`` in the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RunIdFilter())
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
