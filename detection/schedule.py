"""Weekly schedules for alert rules, evaluated in the site's time zone."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # Monday = 0
    start: time
    end: time  # an end before the start runs past midnight

    def contains(self, local: datetime) -> bool:
        now = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        # Overnight: the part after midnight belongs to the previous day's window.
        if now >= self.start:
            return local.weekday() in self.days
        return now < self.end and (local.weekday() - 1) % 7 in self.days


def _parse_time(raw: Any, field: str) -> time:
    try:
        parsed = time.fromisoformat(raw)
    except (TypeError, ValueError):
        parsed = None
    # An offset (22:30+01:00) would make the time aware, and comparing it with local times raises.
    if parsed is None or parsed.tzinfo is not None:
        raise ScheduleError(f"{field} must be a time like 22:30, got {raw!r}")
    return parsed


def _is_day(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6


def parse_schedule(raw: Any) -> list[Window]:
    if raw in (None, []):
        return []
    if not isinstance(raw, list):
        raise ScheduleError("a schedule is a list of windows")
    windows = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"days", "start", "end"}:
            raise ScheduleError('each window is {"days": [0..6], "start": "HH:MM", "end": "HH:MM"}')
        days = item["days"]
        if not isinstance(days, list) or not days or not all(_is_day(d) for d in days):
            raise ScheduleError(f"days are 0 (Monday) to 6 (Sunday), got {days!r}")
        start, end = _parse_time(item["start"], "start"), _parse_time(item["end"], "end")
        if start == end:
            raise ScheduleError("a window's start and end must differ")
        windows.append(Window(frozenset(days), start, end))
    return windows


def armed_at(windows: Sequence[Window], at: datetime, tz_name: str) -> bool:
    """True when a rule with these windows is armed at the aware datetime `at` (no windows: always)."""
    if not windows:
        return True
    local = at.astimezone(ZoneInfo(tz_name))
    return any(window.contains(local) for window in windows)
