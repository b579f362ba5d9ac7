"""The benchmark's table: seconds, and how busy the machine was meanwhile."""

import time

from bench.report import Delta, Results, render
from bench.timing import Stopwatch, Timed


def _results(realize: list[Timed]) -> Results:
    deltas = [Delta("initial copy", 100, 1.0), Delta("one byte changed", 10, 1.0)]
    return Results(
        tree="a tree",
        realize_trees=realize,
        syncthing_trees=[Timed(10.0, 4.0), Timed(12.0, 5.0), Timed(11.0, None)],
        rsync_trees=[Timed(3.0, 1.5), Timed(3.0, 1.5), Timed(3.0, 1.5)],
        realize_deltas=deltas,
        rsync_deltas=deltas,
    )


def test_the_table_shows_each_tools_busy_cpu_seconds_and_share_of_the_machine():
    text = render(_results([Timed(3.0, 5.4), Timed(4.0, 7.2), Timed(5.0, 8.0)]), 10**9, cores=2)
    realize = next(line for line in text.splitlines() if line.strip().startswith("Realize  "))
    syncthing = next(line for line in text.splitlines() if "Syncthing A -> B" in line)
    assert "7.2 (90%)" in realize  # medians: 7.2 CPU-s; shares 0.9, 0.9, 0.8
    assert "4.5 (20%)" in syncthing  # a round without a reading is left out
    # Round by round 3/10, 4/12, 5/11: the median ratio is 4/12; 4.0/11.0 beside it.
    assert "Realize / Syncthing = 0.33" in text
    assert "median seconds over median seconds: 0.36" in text


def test_no_reading_shows_a_dash():
    text = render(_results([Timed(3.0, None)] * 3), 10**9, cores=2)
    realize = next(line for line in text.splitlines() if line.strip().startswith("Realize  "))
    assert realize.split()[7] == "-"


def test_a_stopwatch_counts_the_cpu_time_spent_meanwhile():
    watch = Stopwatch()
    spent = time.process_time()
    while time.process_time() - spent < 0.3:
        pass
    timed = watch.stop()
    assert timed.busy is not None and timed.busy >= 0.2
    assert timed.seconds >= 0.3
