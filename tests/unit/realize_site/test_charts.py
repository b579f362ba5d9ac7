"""The activity charts' pure parts (realize_site.lib.charts): spans, windows, samples put in
buckets, round axes of bytes, time labels and the lines' coordinates."""

import datetime as dt
import zoneinfo

import pytest

from realize_site.lib import charts

UTC = dt.UTC
MINUTE = dt.timedelta(minutes=1)


def at(hhmmss: str, day: int = 7) -> dt.datetime:
    h, m, s = (float(x) for x in hhmmss.split(":"))
    return dt.datetime(2026, 12, day, int(h), int(m), tzinfo=UTC) + dt.timedelta(seconds=s)


@pytest.mark.parametrize(
    ("given", "span"),
    [(None, "hour"), ("", "hour"), ("hour", "hour"), ("day", "day"), ("week", "week")],
)
def test_a_span_by_name(given, span):
    assert charts.parse_span(given).name == span


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("month", "span must be one of hour, day, week, not 'month'"),
        ("HOUR", "span must be one of hour, day, week, not 'HOUR'"),
        ("x" * 5000, "span must be one of hour, day, week, not '" + "x" * 20 + "…'"),
    ],
)
def test_a_bad_span_is_named_in_a_readable_message(given, message):
    with pytest.raises(charts.BadSpan) as raised:
        charts.parse_span(given)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("span", "now", "start", "end", "count"),
    [
        ("hour", at("14:05:30"), at("13:05:00"), at("14:05:00"), 60),
        ("hour", at("14:05:00"), at("13:05:00"), at("14:05:00"), 60),
        # Buckets of a quarter of an hour, the last of them ending a minute ago at most.
        ("day", at("14:05:30"), at("14:05:00", day=6), at("14:05:00"), 96),
        ("week", at("15:59:59"), at("15:59:00") - dt.timedelta(days=7), at("15:59:00"), 84),
    ],
)
def test_a_window_ends_with_the_last_whole_minute(span, now, start, end, count):
    win = charts.window(charts.SPANS[span], now)
    assert (win.start, win.end, win.count) == (start, end, count)
    assert len(win.starts()) == count and win.starts()[0] == start


HOUR_WINDOW = charts.Window(at("13:00:00"), MINUTE, 60)
LAG = dt.timedelta(seconds=30)


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        # Nothing sampled: nothing moved.
        ([], {}),
        # Taken at the turn of 13:06, a sample counts the minute 13:05 to 13:06.
        ([(at("13:06:00.2"), 600, 6000)], {5: (10.0, 100.0)}),
        # Late by 20 s, it still does; two processes' samples of one minute add up.
        ([(at("13:06:20"), 60, 0), (at("13:06:00"), 60, 120)], {5: (2.0, 2.0)}),
        # Before the window, or past its end: left out.
        ([(at("12:59:00"), 60, 60), (at("14:01:00"), 60, 60)], {}),
        # The last minute of the window is taken at its end.
        ([(at("14:00:01"), 0, 60)], {59: (0.0, 1.0)}),
    ],
)
def test_rates_are_the_bytes_of_a_bucket_over_its_length(samples, expected):
    found = charts.rates(samples, HOUR_WINDOW, LAG)
    assert len(found) == 60
    assert {i: r for i, r in enumerate(found) if r != (0.0, 0.0)} == expected


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([], {}),
        # Read at the turn of 13:01, it ends the minute from 13:00.
        ([(at("13:01:00.1"), 10, 100)], {0: (10, 100)}),
        # The last reading of a bucket, in whatever order they come.
        ([(at("13:02:20"), 30, 100), (at("13:01:40"), 20, 100)], {1: (30, 100)}),
        ([(at("13:00:29"), 1, 1), (at("14:00:30"), 1, 1)], {}),
        ([(at("14:00:29"), 1, 2)], {59: (1, 2)}),
    ],
)
def test_the_cache_is_read_last_in_each_bucket(samples, expected):
    found = charts.latest(samples, HOUR_WINDOW, LAG)
    assert {i: r for i, r in enumerate(found) if r is not None} == expected


@pytest.mark.parametrize(
    ("rough", "step"),
    [(0.07, 0.1), (0.25, 0.5), (1, 1), (1.1, 2), (2, 2), (2.5, 5), (7, 10), (250, 500)],
)
def test_a_nice_step(rough, step):
    assert charts.nice_step(rough) == pytest.approx(step)


KB, MB, GB = 1024, 1024**2, 1024**3


@pytest.mark.parametrize(
    ("largest", "per", "unit", "top", "ticks"),
    [
        # Nothing to show: an axis of 1 KB, not of 0.
        (0, "/s", "KB/s", 1, [0, 0.5, 1]),
        (500, "/s", "bytes/s", 600, [0, 200, 400, 600]),
        # Up to 1023 bytes: 1 KB reads better than 1500 bytes.
        (1023, "/s", "KB/s", 1, [0, 0.5, 1]),
        (3.2 * MB, "/s", "MB/s", 4, [0, 1, 2, 3, 4]),
        (4 * MB, "/s", "MB/s", 4, [0, 1, 2, 3, 4]),
        (900 * MB, "", "MB", 1000, [0, 500, 1000]),
        (1.5 * GB, "", "GB", 1.5, [0, 0.5, 1, 1.5]),
        # The largest unit, however many of it.
        (2048 * 1024**4, "", "TB", 3000, [0, 1000, 2000, 3000]),
    ],
)
def test_a_byte_axis_has_a_unit_and_round_ticks(largest, per, unit, top, ticks):
    axis = charts.byte_axis(largest, per)
    assert axis.unit == unit
    assert axis.top == pytest.approx(top)
    assert axis.ticks == pytest.approx(ticks)
    assert axis.top * axis.divisor >= largest


@pytest.mark.parametrize(
    ("value", "label"),
    [(0, "0"), (0.25, "0.25"), (0.1 * 3, "0.3"), (1.5, "1.5"), (500.0, "500"), (1000, "1000")],
)
def test_tick_labels_have_no_trailing_zeros(value, label):
    assert charts.tick_label(value) == label


KOLKATA = zoneinfo.ZoneInfo("Asia/Kolkata")  # UTC+05:30


@pytest.mark.parametrize(
    ("win", "every", "tz", "expected"),
    [
        (
            charts.Window(at("13:05:00"), MINUTE, 60),
            dt.timedelta(minutes=10),
            UTC,
            ["13:10", "13:20", "13:30", "13:40", "13:50", "14:00"],
        ),
        # On the local clock: whole ten minutes there, whatever the offset.
        (
            charts.Window(at("13:05:00"), MINUTE, 60),
            dt.timedelta(minutes=20),
            KOLKATA,
            ["18:40", "19:00", "19:20"],
        ),
        # A tick at the window's very start or end is one too.
        (
            charts.Window(at("13:00:00"), MINUTE, 60),
            dt.timedelta(minutes=30),
            UTC,
            ["13:00", "13:30", "14:00"],
        ),
        (
            charts.Window(at("14:00:00", day=1), dt.timedelta(hours=2), 36),
            dt.timedelta(days=1),
            UTC,
            ["12-02 00:00", "12-03 00:00", "12-04 00:00"],
        ),
    ],
)
def test_time_ticks_fall_on_round_local_times(win, every, tz, expected):
    found = charts.time_ticks(win, every, tz)
    shown = [t.strftime("%m-%d %H:%M" if every >= dt.timedelta(days=1) else "%H:%M") for t in found]
    assert shown == expected
    assert all(t.tzinfo == tz for t in found)


@pytest.mark.parametrize(
    ("values", "top", "fill", "segments", "fills"),
    [
        ([], 1, False, [], []),
        ([None, None], 1, True, [], []),
        # Four buckets of 250 wide, each point at its middle; y grows downwards from 200.
        ([0, 1, 0.5, 2], 2, False, ["125.0,200.0 375.0,100.0 625.0,150.0 875.0,0.0"], []),
        # A gap splits the line; a point alone is drawn across its bucket.
        (
            [1, None, 1, 1],
            1,
            True,
            ["0.0,0.0 250.0,0.0", "625.0,0.0 875.0,0.0"],
            [
                "0.0,200.0 0.0,0.0 250.0,0.0 250.0,200.0",
                "625.0,200.0 625.0,0.0 875.0,0.0 875.0,200.0",
            ],
        ),
        # Above the top: held at the top.
        ([5, 0], 1, False, ["250.0,0.0 750.0,200.0"], []),
    ],
)
def test_a_line_through_values(values, top, fill, segments, fills):
    found = charts.line("held", values, top, fill)
    assert (found.segments, found.fills) == (segments, fills)


def test_a_chart_scales_its_series_to_its_axis_and_leaves_out_labels_at_its_edges():
    win = charts.Window(at("13:00:00"), MINUTE, 60)
    axis = charts.byte_axis(2 * MB, per="/s")
    chart = charts.chart(
        win,
        {"received": [2 * MB] * 60, "sent": [None] * 59 + [MB]},
        axis,
        dt.timedelta(minutes=30),
        UTC,
        filled=["received"],
    )
    received, sent = chart.lines
    assert received.segments == [" ".join(f"{(i + 0.5) * 1000 / 60:.1f},0.0" for i in range(60))]
    assert received.fills and not sent.fills
    assert sent.segments == ["983.3,100.0 1000.0,100.0"]
    assert [(t.at, t.label) for t in chart.value_ticks] == [
        ("0.00", "0"), ("25.00", "0.5"), ("50.00", "1"), ("75.00", "1.5"), ("100.00", "2"),
    ]  # fmt: skip
    assert chart.grid == ["200.0", "150.0", "100.0", "50.0", "0.0"]
    # 13:00 and 14:00 lie on the edges: only 13:30 is labelled.
    assert [(t.at, t.when) for t in chart.time_ticks] == [("50.00", at("13:30:00"))]
