"""What belongs to the run in progress: its id, so every log line about a run can carry
it, what the seams want said in its thread, and the spend they leave for its end."""

from __future__ import annotations

import logging
from contextvars import ContextVar

from corral.storage.spend import CallRecord

current_run_id: ContextVar[str] = ContextVar("corral_run_id", default="")


class RunIdFilter(logging.Filter):
    """Adds ``run_id`` to every record (empty outside a run)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "run_id", ""):
            record.run_id = current_run_id.get()
        return True


#: What the seams want said in the thread of the run in progress (a budget's warning):
#: the runtime says them after the model call that raised them. None outside a call.
run_notices: ContextVar[list[str] | None] = ContextVar("corral_run_notices", default=None)


def notify(text: str) -> None:
    """Have ``text`` said in the thread of the run in progress, or logged when there is
    none (the router's call)."""
    notices = run_notices.get()
    if notices is None:
        logging.getLogger("corral.runtime").warning("%s", text)
    else:
        notices.append(text)


#: The model calls of the run in progress whose spend is written with the run's end
#: (agents without a budget): ``(day, call)``. None outside a run: written at once.
run_calls: ContextVar[list[tuple[str, CallRecord]] | None] = ContextVar(
    "corral_run_calls", default=None
)
