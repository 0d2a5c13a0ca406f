"""Weekly schedule windows: parsing, overnight windows and evaluation in the site's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from detection.schedule import ScheduleError, Window, armed_at, parse_schedule

MON, THU, FRI, SAT = 0, 3, 4, 5
FRIDAY_NIGHT = Window(frozenset({FRI}), time(22, 0), time(6, 0))


def local(day: int, hour: int, minute: int = 0) -> datetime:
    """A naive wall-clock time in the week of Monday 2024-01-15 (the window only reads day and time)."""
    return datetime(2024, 1, 15 + day, hour, minute)  # noqa: DTZ001


def test_parse_schedule_builds_windows():
    windows = parse_schedule([{"days": [FRI], "start": "22:00", "end": "06:00"}])
    assert windows == [FRIDAY_NIGHT]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ({"days": [7], "start": "08:00", "end": "18:00"}, "days are 0"),
        ({"days": [], "start": "08:00", "end": "18:00"}, "days are 0"),
        ({"days": ["mon"], "start": "08:00", "end": "18:00"}, "days are 0"),
        ({"days": [0], "start": "25:00", "end": "18:00"}, "start must be a time"),
        ({"days": [0], "start": "08:00", "end": 1800}, "end must be a time"),
        ({"days": [0], "start": "08:00", "end": "08:00"}, "must differ"),
        ({"days": [0], "start": "08:00"}, "each window"),
        ({"days": [0], "start": "08:00", "end": "18:00", "tz": "UTC"}, "each window"),
    ],
)
def test_a_malformed_window_is_rejected_with_the_reason(window, message):
    with pytest.raises(ScheduleError, match=message):
        parse_schedule([window])


def test_a_schedule_that_is_not_a_list_is_rejected():
    with pytest.raises(ScheduleError, match="list of windows"):
        parse_schedule({"days": [0], "start": "08:00", "end": "18:00"})


def test_a_time_with_a_utc_offset_is_rejected():
    # Windows are in the site's time zone; an offset-aware time could not be compared with it later.
    with pytest.raises(ScheduleError, match="start must be a time"):
        parse_schedule([{"days": [0], "start": "22:00+01:00", "end": "06:00"}])


def test_a_daytime_window_includes_its_start_and_excludes_its_end():
    window = Window(frozenset({MON}), time(8, 0), time(18, 0))
    assert window.contains(local(MON, 8, 0))
    assert window.contains(local(MON, 17, 59))
    assert not window.contains(local(MON, 18, 0))
    assert not window.contains(local(MON, 7, 59))


def test_an_overnight_window_runs_into_the_next_morning():
    assert FRIDAY_NIGHT.contains(local(FRI, 23, 0))
    assert FRIDAY_NIGHT.contains(local(SAT, 5, 0))
    assert not FRIDAY_NIGHT.contains(local(SAT, 7, 0))
    assert not FRIDAY_NIGHT.contains(local(THU, 23, 0))
    assert not FRIDAY_NIGHT.contains(local(FRI, 5, 0))  # that morning belongs to Thursday night


def test_an_overnight_sunday_window_ends_on_monday_morning():
    sunday_night = Window(frozenset({6}), time(22, 0), time(6, 0))
    assert sunday_night.contains(local(MON, 3, 0))


def test_armed_at_reads_the_window_in_the_sites_time_zone():
    windows = parse_schedule([{"days": [MON], "start": "08:00", "end": "18:00"}])
    at = datetime(2024, 1, 15, 7, 30, tzinfo=UTC)  # 08:30 in Paris (CET, UTC+1)
    assert armed_at(windows, at, "Europe/Paris")
    assert not armed_at(windows, at, "UTC")
    evening = datetime(2024, 1, 15, 17, 30, tzinfo=UTC)  # 18:30 in Paris
    assert armed_at(windows, evening, "UTC")
    assert not armed_at(windows, evening, "Europe/Paris")


def test_an_empty_schedule_is_always_armed():
    assert parse_schedule(None) == []
    assert parse_schedule([]) == []
    assert armed_at([], datetime(2024, 1, 20, 3, 0, tzinfo=UTC), "Europe/Paris")
