"""Consensus windows: when an area's automatic consensus may run, as pure functions.

An area with no window runs consensus by the usual triggers at any time. One with windows
runs them only while a window is open; outside, its changes wait, and the next window's
start runs a consensus that takes them. A window is either a span of time on chosen days
("every day 01:00-05:00", in its own time zone), or a run every N minutes on chosen days
(at those moments only: between them, changes wait).
"""

import datetime
from dataclasses import dataclass
from zoneinfo import ZoneInfo

# Days as crontab's day_of_week says them, and as Python's weekday() numbers them.
DAYS = {
    "*": frozenset(range(7)),
    "mon-fri": frozenset(range(5)),
    "sat,sun": frozenset({5, 6}),
}
DAY_NAMES = {"*": "every day", "mon-fri": "weekdays", "sat,sun": "weekends"}
SPAN, EVERY = "span", "every"


@dataclass(frozen=True)
class Window:
    kind: str  # SPAN or EVERY
    days: str  # a key of DAYS
    time_zone: str = "UTC"
    start: datetime.time | None = None  # SPAN: from here (inclusive)
    end: datetime.time | None = None  # SPAN: to here (exclusive); at or before start: the next day
    every_minutes: int | None = None  # EVERY


def is_open(window: Window, now: datetime.datetime) -> bool:
    """Whether automatic consensus may run now (an aware datetime) in this window."""
    if window.kind != SPAN:
        return False  # its runs are moments: between them, changes wait
    local = now.astimezone(ZoneInfo(window.time_zone))
    days, t = DAYS[window.days], local.time().replace(tzinfo=None)
    start, end = window.start, window.end
    if start < end:
        return local.weekday() in days and start <= t < end
    # Through midnight (or the whole day, when end == start).
    yesterday = (local.weekday() - 1) % 7
    return (local.weekday() in days and t >= start) or (yesterday in days and t < end)


def any_open(windows: list[Window], now: datetime.datetime) -> bool:
    """Whether an area with these windows may start consensus by itself now."""
    return not windows or any(is_open(w, now) for w in windows)


def next_start(
    window: Window, now: datetime.datetime, last_run: datetime.datetime | None = None
) -> datetime.datetime | None:
    """When the window next opens (or, for EVERY, next runs) after `now`."""
    zone = ZoneInfo(window.time_zone)
    if window.kind == EVERY:
        step = datetime.timedelta(minutes=window.every_minutes or 1)
        at = (last_run + step) if last_run is not None else now + step
        while at <= now:
            at += step
        for _ in range(8 * 24 * 60 // max(1, window.every_minutes or 1) + 1):
            if at.astimezone(zone).weekday() in DAYS[window.days]:
                return at
            at += step
        return None
    local = now.astimezone(zone)
    for ahead in range(8):
        day = local.date() + datetime.timedelta(days=ahead)
        at = datetime.datetime.combine(day, window.start, tzinfo=zone)
        if at > now and at.weekday() in DAYS[window.days]:
            return at
    return None


def describe(window: Window) -> str:
    days = DAY_NAMES[window.days]
    if window.kind == EVERY:
        minutes = window.every_minutes or 0
        every = f"every {minutes // 60} h" if minutes % 60 == 0 else f"every {minutes} min"
        return f"{days}, {every} ({window.time_zone})"
    return f"{days}, {window.start:%H:%M}-{window.end:%H:%M} ({window.time_zone})"
