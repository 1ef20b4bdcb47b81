"""Fire times: crontab's meaning (weekdays from Sunday, day-of-month OR day-of-week),
intervals, daylight saving time in Europe/Berlin, and which due slots run or are missed."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.base import BaseTrigger

from corral.agents.cron import (
    count_between,
    cron_trigger,
    first_after,
    interval_trigger,
    last_until,
    split_timing,
)
from corral.agents.team_loader import TeamFileError, load_team
from corral.bot.scheduling.plan import Span, plan_slots

BERLIN = ZoneInfo("Europe/Berlin")
#: Monday 2 March 2026, 00:00 UTC.
MONDAY = datetime(2026, 3, 2, tzinfo=UTC)


def fire_times(trigger: BaseTrigger, start: datetime, end: datetime) -> list[datetime]:
    """Every fire time in (start, end], as the scheduler walks them."""
    found, moment = [], start
    while (moment := first_after(trigger, moment)) is not None and moment <= end:
        found.append(moment)
    return found


def weekdays(expression: str) -> list[str]:
    """The days of the first week of March 2026 on which ``expression`` fires."""
    week = fire_times(cron_trigger(expression, UTC), MONDAY, MONDAY + timedelta(days=7))
    return [f"{t:%a}" for t in week]


@pytest.mark.parametrize(
    ("expression", "days"),
    [
        ("0 9 * * 1-5", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * mon-fri", ["Mon", "Tue", "Wed", "Thu", "Fri"]),
        ("0 9 * * 0", ["Sun"]),
        ("0 9 * * 7", ["Sun"]),
        ("0 9 * * 1,3,5", ["Mon", "Wed", "Fri"]),
        ("0 9 * * 6-7", ["Sat", "Sun"]),
        ("0 9 * * sat-sun", ["Sat", "Sun"]),
        ("0 9 * * */2", ["Tue", "Thu", "Sat", "Sun"]),
        ("0 9 * * 1/2", ["Mon", "Wed", "Fri", "Sun"]),
        ("0 9 * * 1-5/2", ["Mon", "Wed", "Fri"]),
        ("0 9 * * 0-7", ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]),
        ("0 9 * * SUN,Wed", ["Wed", "Sun"]),
    ],
)
def test_weekdays_count_from_sunday_as_in_crontab(expression: str, days: list[str]) -> None:
    assert weekdays(expression) == days


def test_day_of_month_or_day_of_week_as_in_crontab() -> None:
    # The 1st of the month and every Monday: crontab ORs restricted day fields.
    trigger = cron_trigger("0 9 1 * 1", UTC)
    fired = fire_times(
        trigger, datetime(2026, 3, 25, tzinfo=UTC), datetime(2026, 4, 14, tzinfo=UTC)
    )
    assert [f"{t:%a %d}" for t in fired] == ["Mon 30", "Wed 01", "Mon 06", "Mon 13"]
    # A day field starting with * does not count as restricted: both must match.
    trigger = cron_trigger("0 9 */2 * 1", UTC)
    fired = fire_times(trigger, datetime(2026, 3, 1, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC))
    assert [f"{t:%a %d}" for t in fired] == ["Mon 09", "Mon 23"]


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "Wrong number of fields: got 3, expected 5"),
        ("0 25 * * *", "hour `25`"),
        ("61 * * * *", "minute `61`"),
        ("0 9 * 13 *", "month `13`"),
        ("0 9 * * 8", "day-of-week `8` is not valid: use 0–7 (0 and 7 are Sunday"),
        ("0 9 * * fri-mon", "the range `fri-mon` runs backwards"),
        ("0 9 * * */0", "the step `/0` must be a number above 0"),
        ("0 9 * * funday", "day-of-week `funday` is not valid"),
    ],
)
def test_a_wrong_cron_line_says_which_field(expression: str, message: str) -> None:
    with pytest.raises(ValueError) as caught:
        cron_trigger(expression, UTC)
    assert message in str(caught.value)


def test_the_team_loader_reads_weekdays_the_same_way(tmp_path: Path) -> None:
    base = (
        "models:\n  fast: [anthropic/x]\nagents:\n  roo:\n    display_name: Roo\n"
        "    role: Ops\nschedules:\n  standup:\n    agent: roo\n    channel: '#general'\n"
        "    prompt: Summarise.\n"
    )
    path = tmp_path / "team.yaml"
    path.write_text(base + "    cron: '0 9 * * 7'\n", encoding="utf-8")
    assert load_team(path).schedules["standup"].cron == "0 9 * * 7"
    path.write_text(base + "    cron: '0 9 * * 1-8'\n", encoding="utf-8")
    with pytest.raises(TeamFileError) as caught:
        load_team(path)
    (problem,) = caught.value.problems
    assert problem.line == 12 and 'cron "0 9 * * 1-8" is not valid' in problem.message
    assert '"0 9 * * 1-5" for 09:00 Monday to Friday' in problem.fix


def test_split_timing_tells_intervals_from_cron_lines() -> None:
    assert split_timing("every 30m") == (None, "30m")
    assert split_timing("1h30m") == (None, "1h30m")
    assert split_timing("0 9 * * 1-5") == ("0 9 * * 1-5", None)
    for wrong, message in [
        ("every", "write `every` and one interval"),
        ("every 0s", "is zero"),
        ("soon", "is not an interval"),
        ("0 9 * *", "Wrong number of fields"),
    ]:
        with pytest.raises(ValueError) as caught:
            split_timing(wrong)
        assert message in str(caught.value)


def test_intervals_are_aligned_the_same_in_every_process() -> None:
    trigger = interval_trigger("30m", UTC)
    assert first_after(trigger, datetime(2026, 3, 2, 9, 7, tzinfo=UTC)) == datetime(
        2026, 3, 2, 9, 30, tzinfo=UTC
    )
    seconds = interval_trigger("1s", UTC)
    moment = datetime(2026, 3, 2, 9, 7, 3, 250_000, tzinfo=UTC)
    assert first_after(seconds, moment) == datetime(2026, 3, 2, 9, 7, 4, tzinfo=UTC)


def test_looking_back_finds_the_last_fire_time() -> None:
    yearly = cron_trigger("0 0 1 1 *", UTC)
    now = datetime(2026, 6, 1, tzinfo=UTC)
    assert last_until(yearly, now, datetime(2020, 1, 1, tzinfo=UTC)) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert last_until(yearly, now, datetime(2026, 1, 1, tzinfo=UTC)) is None
    every = interval_trigger("1s", UTC)
    assert last_until(every, now, now - timedelta(days=30)) == now
    first = datetime(2026, 5, 1, tzinfo=UTC)
    assert count_between(every, first, now, cap=1000) == 1000
    assert count_between(every, first, first + timedelta(seconds=9), cap=1000) == 10


# --- Daylight saving time in Europe/Berlin ---------------------------------------------
# 2026-03-29 02:00 CET → 03:00 CEST (01:00 UTC); 2026-10-25 03:00 CEST → 02:00 CET (01:00 UTC).
SPRING = datetime(2026, 3, 29, tzinfo=BERLIN)
AUTUMN = datetime(2026, 10, 25, tzinfo=BERLIN)


def day_of(trigger: BaseTrigger, day: datetime) -> list[str]:
    """The day's fire times as Berlin wall clock with offset."""
    fired = fire_times(
        trigger, day - timedelta(microseconds=1), day + timedelta(days=1, seconds=-1)
    )
    return [f"{t.astimezone(BERLIN):%H:%M%z}" for t in fired]


def test_spring_forward_neither_skips_nor_doubles() -> None:
    # 02:30 does not exist that night: it fires once, when the clock has jumped.
    assert day_of(cron_trigger("30 2 * * *", BERLIN), SPRING) == ["03:30+0200"]
    # 02:15 shifts onto 03:15, which fires anyway: once, not twice.
    assert day_of(cron_trigger("15 2,3 * * *", BERLIN), SPRING) == ["03:15+0200"]
    assert day_of(cron_trigger("0 9 * * *", BERLIN), SPRING) == ["09:00+0200"]
    hourly = day_of(cron_trigger("0 * * * *", BERLIN), SPRING)
    assert len(hourly) == 23 and len(set(hourly)) == 23  # the day has 23 hours
    assert hourly[:3] == ["00:00+0100", "01:00+0100", "03:00+0200"]


def test_fall_back_neither_skips_nor_doubles() -> None:
    # 02:30 happens twice that night: a fixed time fires once, at the first.
    assert day_of(cron_trigger("30 2 * * *", BERLIN), AUTUMN) == ["02:30+0200"]
    assert day_of(cron_trigger("15 2,3 * * *", BERLIN), AUTUMN) == ["02:15+0200", "03:15+0100"]
    assert day_of(cron_trigger("0 9 * * *", BERLIN), AUTUMN) == ["09:00+0100"]
    # An hourly job fires every real hour: the repeated 02:00 too (the day has 25 hours).
    hourly = day_of(cron_trigger("0 * * * *", BERLIN), AUTUMN)
    assert len(hourly) == 25
    assert hourly[2:5] == ["02:00+0200", "02:00+0100", "03:00+0100"]


def test_intervals_ignore_the_clock_change() -> None:
    for day, hours in ((SPRING, 23), (AUTUMN, 25)):
        start = day.astimezone(UTC) - timedelta(microseconds=1)
        end = day.astimezone(UTC) + timedelta(hours=hours, seconds=-1)
        fired = fire_times(interval_trigger("1h", BERLIN), start, end)
        gaps = {b - a for a, b in itertools.pairwise(fired)}
        assert len(fired) == hours and gaps == {timedelta(hours=1)}


def test_a_scheduler_settling_across_the_change_runs_once_per_day() -> None:
    """The scheduler's own path: settling the slots of each night, as if it had woken
    at 04:00 Berlin time each day, with no grace for catching up."""
    trigger = cron_trigger("30 2 * * *", BERLIN)
    for day in (SPRING, AUTUMN):
        night = day.replace(hour=4)
        plan = plan_slots(
            trigger, after=day - timedelta(hours=12), upto=night, now=night, grace=timedelta(days=1)
        )
        assert plan.missed is None and plan.coalesced is None and plan.run is not None


# --- Which due slots run ---------------------------------------------------------------
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HALF_HOURLY = interval_trigger("30m", UTC)


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_one_due_slot_runs() -> None:
    plan = plan_slots(HALF_HOURLY, after=at(0), upto=at(30), now=at(30), grace=timedelta(hours=1))
    assert plan.run == at(30) and plan.missed is None and plan.coalesced is None


def test_after_downtime_the_latest_slot_within_grace_runs_once() -> None:
    plan = plan_slots(HALF_HOURLY, after=at(0), upto=at(180), now=at(185), grace=timedelta(hours=1))
    assert plan.run == at(180)
    # At the cutoff (02:05 after T0) and after: coalesced into the run; before: missed.
    assert plan.coalesced == Span(at(150), at(150), 1)
    assert plan.missed == Span(at(30), at(120), 4)
    assert plan.key == at(180)


def test_after_downtime_beyond_grace_every_slot_is_missed() -> None:
    plan = plan_slots(HALF_HOURLY, after=at(0), upto=at(180), now=at(300), grace=timedelta(hours=1))
    assert plan.run is None and plan.coalesced is None
    assert plan.missed == Span(at(30), at(180), 6) and plan.key == at(180)


def test_nothing_due_plans_nothing() -> None:
    plan = plan_slots(HALF_HOURLY, after=at(0), upto=at(29), now=at(29), grace=timedelta(hours=1))
    assert plan.key is None
