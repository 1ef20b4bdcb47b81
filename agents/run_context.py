"""The id of the run in progress, so every log line about a run can carry it."""

from __future__ import annotations

import logging
from contextvars import ContextVar

current_run_id: ContextVar[str] = ContextVar("corral_run_id", default="")


class RunIdFilter(logging.Filter):
    """Adds ``run_id`` to every record (empty outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_id", ""):
            record.run_id = current_run_id.get()
        return True
