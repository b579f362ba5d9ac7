"""An area's state, from what is known of it (areas.states), and a run's progress
(areas.events.progress): pure rules, table-driven."""

import pytest

from areas.events import progress, progress_text
from areas.states import AreaState, Facts, Folded, State, area_state, fold_idle


@pytest.mark.parametrize(
    ("facts", "state", "shown"),
    [
        (Facts(), State.UP_TO_DATE, "Up to date"),
        (Facts(connected=1), State.UP_TO_DATE, "Up to date"),
        (Facts(connected=0), State.WAITING, "Waiting for a peer"),
        (Facts(paused=True, running=("beta",), busy=True), State.PAUSED, "Paused"),
        (Facts(running=("beta",), percent=42, busy=True), State.SYNCING, "Syncing 42%"),
        (Facts(running=("beta",), failures=(("beta", "disk full"),)), State.SYNCING, "Syncing"),
        (Facts(busy=True, failures=(("beta", "disk full"),)), State.SCANNING, "Scanning"),
        (Facts(failures=(("beta", "disk full"),), connected=0), State.ERROR, "Error"),
        (Facts(pending=1, connected=0), State.SYNCING, "Syncing"),
    ],
)
def test_the_state_of_an_area(facts, state, shown):
    found = area_state(facts)
    assert found.state == state and str(found) == shown


def test_the_details_say_why():
    assert area_state(Facts(failures=(("beta", "disk full"),))).detail == "beta: disk full"
    assert area_state(Facts(running=("beta", "gamma"))).detail == "with beta, gamma"
    assert area_state(Facts(connected=0)) == AreaState(
        State.WAITING, "no peer sharing it is connected"
    )


@pytest.mark.parametrize(
    ("figures", "percent", "rate", "left"),
    [
        ((0, 10, 0, 1000, 0.0), 0, 0.0, None),  # nothing yet: no rate, no time left
        ((5, 10, 500, 1000, 10.0), 50, 50.0, 10),  # by bytes
        ((5, 10, 0, 0, 10.0), 50, 0.0, None),  # only deletes and renames: by files
        ((10, 10, 1000, 1000, 5.0), 99, 200.0, 0),  # never 100 while it runs
        ((12, 10, 2000, 1000, 5.0), 99, 400.0, 0),  # more than the peer said
        ((0, 0, 0, 0, 3.0), 0, 0.0, None),
    ],
)
def test_a_runs_progress(figures, percent, rate, left):
    assert progress(*figures) == {"percent": percent, "rate": rate, "seconds_left": left}


def test_progress_as_a_page_says_it():
    shown = progress(3, 7, 12 * 1024**2, 30 * 1024**2, 2.0)
    assert progress_text(3, 7, 12 * 1024**2, 30 * 1024**2, shown) == (
        "3 of 7 files, 12.0\xa0MB of 30.0\xa0MB, 6.0\xa0MB/s, 3 s left"
    )
    assert progress_text(1, 4, 0, 0, progress(1, 4, 0, 0, 1.0)) == "1 of 4 files"


class Run:
    def __init__(self, name, status="done", files_in=0, files_out=0, conflicts=0, error=""):
        self.name, self.status, self.error = name, status, error
        self.files_in, self.files_out, self.conflicts = files_in, files_out, conflicts


def _shown(items) -> list:
    return [[r.name for r in i.runs] if isinstance(i, Folded) else i.name for i in items]


@pytest.mark.parametrize(
    ("runs", "shown"),
    [
        ([], []),
        ([Run("a")], ["a"]),  # one alone stays as it is
        ([Run("a"), Run("b"), Run("c")], [["a", "b", "c"]]),
        ([Run("a", files_in=1), Run("b"), Run("c"), Run("d", files_out=2)], ["a", ["b", "c"], "d"]),
        (
            [Run("a"), Run("b", status="failed", error="x"), Run("c"), Run("d")],
            ["a", "b", ["c", "d"]],
        ),
        ([Run("a", status="running"), Run("b"), Run("c", conflicts=1)], ["a", "b", "c"]),
        ([Run("a", status="done", error="one file could not"), Run("b")], ["a", "b"]),
    ],
)
def test_idle_runs_in_a_row_are_folded(runs, shown):
    assert _shown(fold_idle(runs)) == shown


def test_an_area_becoming_real_says_how_many_files_are_left():
    found = area_state(Facts(realizing=3, connected=0))
    assert found.state == State.SYNCING
    assert found.detail == "becoming Real: the mount fetches 3 files"
    assert area_state(Facts(realizing=3, running=("beta",))).detail == "with beta"
