"""Charts of samples over time, as pure functions: a span's window of buckets, samples summed
or read into them, an axis scaled to round numbers of bytes, and the lines' coordinates.

A chart is drawn by the server (realize_site/templates/_chart.html): an SVG for the lines,
stretched to its box, with the labels as text around it, so they stay legible at any width.
"""

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# The SVG's own coordinates: x across the window, y up from the bottom.
WIDTH, HEIGHT = 1000, 200
# Time labels are left out this near an edge of the chart (percent of its width).
EDGE = 6


@dataclass(frozen=True)
class Span:
    name: str
    length: dt.timedelta
    step: dt.timedelta  # one point of the chart
    tick: dt.timedelta  # between two time labels
    part: str  # of the one time format ("Y-m-d H:i:s"), which a time label shows: time or date

    @property
    def label(self) -> str:
        """The Django date format of a time label."""
        return "H:i" if self.part == "time" else "Y-m-d"


_MINUTE, _HOUR, _DAY = dt.timedelta(minutes=1), dt.timedelta(hours=1), dt.timedelta(days=1)
SPANS = {
    span.name: span
    for span in (
        Span("hour", _HOUR, _MINUTE, 10 * _MINUTE, "time"),
        Span("day", _DAY, 15 * _MINUTE, 3 * _HOUR, "time"),
        Span("week", 7 * _DAY, 2 * _HOUR, _DAY, "date"),
    )
}
DEFAULT_SPAN = "hour"


class BadSpan(ValueError):
    """A span that is none of SPANS: the message says which are."""


def parse_span(value: str | None) -> Span:
    if not value:
        return SPANS[DEFAULT_SPAN]
    span = SPANS.get(value)
    if span is None:
        shown = value if len(value) <= 20 else value[:20] + "…"
        raise BadSpan(f"span must be one of {', '.join(SPANS)}, not {shown!r}")
    return span


@dataclass(frozen=True)
class Window:
    """`count` buckets of `step` from `start`."""

    start: dt.datetime
    step: dt.timedelta
    count: int

    @property
    def end(self) -> dt.datetime:
        return self.start + self.step * self.count

    def starts(self) -> list[dt.datetime]:
        return [self.start + self.step * i for i in range(self.count)]

    def index(self, at: dt.datetime) -> int | None:
        """The bucket holding `at`, or None outside the window."""
        i = math.floor((at - self.start) / self.step)
        return i if 0 <= i < self.count else None


def window(span: Span, now: dt.datetime, whole: dt.timedelta = dt.timedelta(minutes=1)) -> Window:
    """The span's buckets, the last ending at the last whole `whole` (the samples' interval)
    before `now`: every bucket is complete, and the latest is at most that old."""
    unit = whole.total_seconds()
    end = dt.datetime.fromtimestamp(math.floor(now.timestamp() / unit) * unit, dt.UTC)
    return Window(end - span.length, span.step, span.length // span.step)


def rates(
    samples: Iterable[tuple[dt.datetime, int, int]], win: Window, lag: dt.timedelta
) -> list[tuple[float, float]]:
    """Per bucket, bytes per second sent and received: the bytes of the samples in it, over
    its length. A sample counts the interval before its time; it is placed `lag` earlier,
    at that interval's middle, so a sample taken a moment late stays in its own bucket."""
    sums = [[0, 0] for _ in range(win.count)]
    for at, sent, received in samples:
        i = win.index(at - lag)
        if i is not None:
            sums[i][0] += sent
            sums[i][1] += received
    seconds = win.step.total_seconds()
    return [(sent / seconds, received / seconds) for sent, received in sums]


def latest(
    samples: Iterable[tuple[dt.datetime, int, int]], win: Window, lag: dt.timedelta
) -> list[tuple[int, int] | None]:
    """Per bucket, the last reading in it (held, limit), or None where there is none. Placed
    `lag` earlier as `rates` places samples, a reading taken at the turn of a minute ends the
    minute before."""
    found: list[tuple[int, int] | None] = [None] * win.count
    for at, held, limit in sorted(samples, key=lambda s: s[0]):
        i = win.index(at - lag)
        if i is not None:
            found[i] = (held, limit)
    return found


@dataclass(frozen=True)
class Axis:
    """A value axis from 0 to `top`, in `unit` (bytes, KB, MB... with `per` appended)."""

    unit: str
    divisor: int  # bytes in one unit
    top: float  # in units
    step: float  # between two ticks, in units

    @property
    def ticks(self) -> list[float]:
        return [self.step * i for i in range(round(self.top / self.step) + 1)]


UNITS = ("bytes", "KB", "MB", "GB", "TB")  # as Django's filesizeformat counts them: by 1024


def nice_step(rough: float) -> float:
    """The smallest of 1, 2 or 5 times a power of ten at least `rough` (> 0)."""
    power = 10 ** math.floor(math.log10(rough))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough * (1 - 1e-9))


def byte_axis(largest: float, per: str = "", ticks: int = 4) -> Axis:
    """An axis for byte values up to `largest`: the unit that keeps the top under 1024 of it,
    and about `ticks` round steps. With nothing to show, it spans 1 KB."""
    largest = largest if largest > 0 else 1024
    for power, unit in enumerate(UNITS):
        divisor = 1024**power
        step = nice_step(largest / divisor / ticks)
        top = step * math.ceil(largest / divisor / step - 1e-9)
        if top < 1024 or power == len(UNITS) - 1:
            return Axis(unit + per, divisor, top, step)
    raise AssertionError("unreachable")


def tick_label(value: float) -> str:
    """0, 0.25, 1.5, 500: no trailing zeros."""
    return f"{round(value, 6):g}"


def time_ticks(win: Window, every: dt.timedelta, tz: dt.tzinfo) -> list[dt.datetime]:
    """The times within the window that are whole multiples of `every` on the local clock,
    counted from local midnight (10:00, 10:10... or each midnight)."""
    start, end = win.start.astimezone(tz), win.end.astimezone(tz)
    at = start.replace(hour=0, minute=0, second=0, microsecond=0)
    found = []
    while at <= end:
        if at >= start:
            found.append(at)
        at += every
    return found


@dataclass(frozen=True)
class Line:
    name: str  # its CSS class and legend
    segments: list[str]  # SVG points, one list per run of values without a gap
    fills: list[str]  # the same runs closed down to the baseline, if the line is filled


@dataclass(frozen=True)
class Tick:
    at: str  # percent from the left (a time) or the bottom (a value)
    label: str
    when: dt.datetime | None = None


def x_of(i: int, count: int) -> float:
    """The x of bucket i: its middle."""
    return (i + 0.5) * WIDTH / count


def line(name: str, values: Sequence[float | None], top: float, fill: bool = False) -> Line:
    """A line through the values (None: a gap), y scaled so that `top` is the top. A value
    alone between gaps is drawn across its bucket, so that it shows."""
    runs: list[list[tuple[float, float]]] = []
    gap = True
    for i, value in enumerate(values):
        if value is None:
            gap = True
            continue
        if gap:
            runs.append([])
            gap = False
        runs[-1].append((x_of(i, len(values)), HEIGHT - min(value, top) / top * HEIGHT))
    half = WIDTH / len(values) / 2 if values else 0
    runs = [_widened(run, half) for run in runs]
    segments = [_points(run) for run in runs]
    fills = [_points([(run[0][0], HEIGHT), *run, (run[-1][0], HEIGHT)]) for run in runs]
    return Line(name, segments, fills if fill else [])


def _widened(run: list[tuple[float, float]], half: float) -> list[tuple[float, float]]:
    if len(run) > 1:
        return run
    (x, y) = run[0]
    return [(x - half, y), (x + half, y)]


def _points(run: list[tuple[float, float]]) -> str:
    return " ".join(f"{x:.1f},{y:.1f}" for x, y in run)


@dataclass(frozen=True)
class Chart:
    axis: Axis
    lines: list[Line]
    value_ticks: list[Tick]
    time_ticks: list[Tick]
    grid: list[str]  # y of each value tick's grid line, in SVG coordinates


def chart(
    win: Window,
    series: dict[str, Sequence[float | None]],
    axis: Axis,
    every: dt.timedelta,
    tz: dt.tzinfo,
    filled: Iterable[str] = (),
) -> Chart:
    """A chart of `series` (values in bytes) over the window, on the axis."""
    filled = set(filled)
    lines = [
        line(name, [None if v is None else v / axis.divisor for v in values], axis.top,
             name in filled)
        for name, values in series.items()
    ]  # fmt: skip
    ticks = axis.ticks
    span = (win.end - win.start).total_seconds()
    times = [
        (at, (at - win.start).total_seconds() / span * 100) for at in time_ticks(win, every, tz)
    ]
    return Chart(
        axis=axis,
        lines=lines,
        value_ticks=[Tick(f"{v / axis.top * 100:.2f}", tick_label(v)) for v in ticks],
        # A label is centred on its time: one too near an edge would stick out.
        time_ticks=[Tick(f"{x:.2f}", "", at) for at, x in times if EDGE <= x <= 100 - EDGE],
        grid=[f"{HEIGHT - v / axis.top * HEIGHT:.1f}" for v in ticks],
    )
