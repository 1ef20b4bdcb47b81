"""When a schedule fires: crontab lines and ``every:`` intervals as APScheduler triggers,
and the arithmetic of fire times that the scheduler and ``schedule list`` share.

Crontab lines mean what they mean in crontab, which is not quite what APScheduler 3 makes
of them (``CronTrigger.from_crontab``):

- days of the week count from Sunday: 0 and 7 are Sunday, 1 is Monday, so
  ``"0 9 * * 1-5"`` is Monday to Friday (APScheduler counts 0 as Monday and would read it
  as Tuesday to Saturday);
- when both day-of-month and day-of-week are restricted, a day matching *either* fires
  (``"0 9 1 * 1"``: the 1st of the month and every Monday), where APScheduler needs both.

Daylight saving time neither skips nor doubles a fire. A wall-clock time that a spring
change skips fires when the clock has jumped, shifted by the gap (02:30 becomes 03:30).
A wall-clock time that an autumn change repeats fires once, at its first occurrence,
when the hour field is fixed (``"30 2 * * *"``). When the hour field starts with ``*``
(``"0 * * * *"``, ``"*/15 * * * *"``) the job is periodic in real time and fires in both
occurrences, as cron does. ``every:`` intervals are real time and ignore the clock.
"""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger

from corral.agents.team_loader import parse_every, schedule_interval

MICROSECOND = timedelta(microseconds=1)
#: Where ``every:`` intervals start counting, in the schedule's time zone: ``every: 1h``
#: fires on the hour and ``every: 30m`` on the hour and half hour, in every process alike.
INTERVAL_ORIGIN = datetime(2000, 1, 1)

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_HELP = (
    "use 0–7 (0 and 7 are Sunday, 1 is Monday) or sun–sat, with ranges (1-5), lists "
    "(1,3,5) and steps (*/2)"
)
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")


def zone(name: str) -> tzinfo:
    """The IANA time zone ``name``; ValueError, fit for a user, when there is none."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone `{name}`: use an IANA name such as Europe/Berlin, "
            "America/New_York or UTC"
        ) from None


class CrontabTrigger(BaseTrigger):  # type: ignore[misc]  # APScheduler is untyped
    """A crontab line with crontab's meaning (see the module's docstring)."""

    def __init__(self, expression: str, parts: list[CronTrigger], fixed_hours: bool) -> None:
        self.expression = expression
        self._parts = parts
        self._fixed_hours = fixed_hours

    def get_next_fire_time(
        self, previous_fire_time: datetime | None, now: datetime
    ) -> datetime | None:
        """The first fire time after ``previous_fire_time``, or from ``now`` on."""
        start = now if previous_fire_time is None else _utc(previous_fire_time) + MICROSECOND
        while True:
            found: list[datetime] = [
                t for p in self._parts if (t := p.get_next_fire_time(None, start)) is not None
            ]
            if not found:
                return None
            # Compared in UTC: datetimes of one zone compare by wall clock, not by instant.
            moment = min(found, key=_utc)
            if previous_fire_time is not None and _utc(moment) <= _utc(previous_fire_time):
                # A skipped wall-clock time shifted onto one that exists: it fired already.
                start = _utc(moment) + MICROSECOND
            elif self._fixed_hours and _repeated(moment):
                start = _utc(moment) + MICROSECOND
            else:
                return moment

    def __str__(self) -> str:
        return f"crontab[{self.expression}]"


def cron_trigger(expression: str, timezone: tzinfo) -> CrontabTrigger:
    """The trigger of a five-field crontab line; ValueError, fit for a user, when the line
    is not valid."""
    fields = expression.split()
    if len(fields) != len(_FIELDS):
        raise ValueError(
            f"Wrong number of fields: got {len(fields)}, expected 5 "
            "(minute hour day-of-month month day-of-week)"
        )
    minute, hour, day, month, weekday = fields
    weekdays = _weekdays(weekday)
    common = {"minute": minute, "hour": hour, "month": month, "timezone": timezone}
    try:
        if day.startswith("*") or weekday.startswith("*"):
            parts = [CronTrigger(day=day, day_of_week=weekdays, **common)]
        else:
            # Both restricted: crontab fires on a day that matches either of them.
            parts = [
                CronTrigger(day=day, day_of_week="*", **common),
                CronTrigger(day="*", day_of_week=weekdays, **common),
            ]
    except ValueError as err:
        raise ValueError(_field_problem(fields, err)) from None
    return CrontabTrigger(expression, parts, fixed_hours=not hour.startswith("*"))


def interval_trigger(every: str, timezone: tzinfo) -> BaseTrigger:
    """The trigger of an ``every:`` interval such as ``30m`` (see :data:`INTERVAL_ORIGIN`)."""
    interval = parse_every(every)
    origin = INTERVAL_ORIGIN.replace(tzinfo=timezone)
    return IntervalTrigger(
        seconds=int(interval.total_seconds()), start_date=origin, timezone=timezone
    )


def trigger_for(*, cron: str | None, every: str | None, timezone: str) -> BaseTrigger:
    """The trigger of a schedule's timing; ValueError, fit for a user, when it is wrong."""
    where = zone(timezone)
    if cron is not None:
        return cron_trigger(cron, where)
    if every is not None:
        return interval_trigger(every, where)
    raise ValueError("a schedule needs a cron line or an interval")


def split_timing(text: str) -> tuple[str | None, str | None]:
    """``(cron, every)`` from what a person or an agent wrote: a crontab line, or an
    interval with or without ``every`` (``every 30m``, ``30m``). Both are validated, the
    interval against :data:`~agents.team_loader.MIN_SCHEDULE_INTERVAL` too."""
    words = text.split()
    if words and words[0].lower() == "every":
        words = words[1:]
        if len(words) != 1:
            raise ValueError("write `every` and one interval, e.g. `every 30m` or `every 1h30m`")
    if len(words) == 1:
        schedule_interval(words[0])
        return None, words[0]
    line = " ".join(words)
    cron_trigger(line, UTC)
    return line, None


def first_after(trigger: BaseTrigger, moment: datetime) -> datetime | None:
    """The first fire time strictly after ``moment``, in UTC; None when there is none."""
    found = trigger.get_next_fire_time(None, _utc(moment) + MICROSECOND)
    return _utc(found) if found is not None else None


def last_until(trigger: BaseTrigger, moment: datetime, after: datetime) -> datetime | None:
    """The last fire time in ``(after, moment]``, in UTC; None when there is none.

    Triggers only count forwards, so this looks back over a window that doubles until it
    holds a fire time, then walks forward to the last one: a few steps however long ago.
    """
    moment, after = _utc(moment), _utc(after)
    window = timedelta(seconds=1)
    while True:
        start = max(after, moment - window)
        found = first_after(trigger, start)
        if found is not None and found <= moment:
            while (following := first_after(trigger, found)) is not None and following <= moment:
                found = following
            return found
        if start == after:
            return None
        window *= 2


def count_between(trigger: BaseTrigger, first: datetime, last: datetime, cap: int) -> int:
    """How many fire times lie in ``[first, last]`` (``first`` being one), up to ``cap``."""
    count, moment, last = 1, _utc(first), _utc(last)
    while count < cap:
        following = first_after(trigger, moment)
        if following is None or following > last:
            break
        count, moment = count + 1, following
    return count


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def _repeated(moment: datetime) -> bool:
    """True for the second occurrence of a wall-clock time that the clock goes through
    twice (the hour after an autumn change)."""
    return moment.fold == 1 and moment.replace(fold=0).utcoffset() != moment.utcoffset()


def _weekdays(field: str) -> str:
    """A crontab day-of-week field in APScheduler's terms: the days by name, which both
    read alike."""
    if field == "*":
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        days |= _weekday_item(item, field)
    return ",".join(_WEEKDAYS[day] for day in sorted(days))


def _weekday_item(item: str, field: str) -> set[int]:
    body, slash, step_text = item.partition("/")
    if slash and not (step_text.isdigit() and int(step_text) > 0):
        raise ValueError(f"day-of-week `{field}`: the step `/{step_text}` must be a number above 0")
    step = int(step_text) if slash else 1
    if body == "*":
        first, last = 0, 7
    elif "-" in body:
        low, _, high = body.partition("-")
        first, last = _weekday(low, field), _weekday(high, field)
        if high.lower() == "sun" and first > 0:
            last = 7  # "sat-sun" reads as Saturday to Sunday, not backwards
        if first > last:
            raise ValueError(
                f"day-of-week `{field}`: the range `{body}` runs backwards; write it as two "
                "ranges, e.g. 5-7,0-1"
            )
    else:
        first = _weekday(body, field)
        # As in cron, "1/2" means from Monday on, every second day.
        last = 7 if slash else first
    return {day % 7 for day in range(first, last + 1, step)}


def _weekday(text: str, field: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text.lower() in _WEEKDAYS:
        return _WEEKDAYS.index(text.lower())
    raise ValueError(f"day-of-week `{field}` is not valid: {_WEEKDAY_HELP}")


_KEYWORDS = ("minute", "hour", "day", "month")


def _field_problem(fields: list[str], err: ValueError) -> str:
    """APScheduler's complaint, naming the field it is about (its message does not)."""
    for name, keyword, value in zip(_FIELDS, _KEYWORDS, fields, strict=False):
        try:
            CronTrigger(**{keyword: value}, timezone=UTC)
        except ValueError as own:
            return f"{name} `{value}`: {own}"
    return str(err)
