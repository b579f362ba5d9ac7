"""A peer's history is read a page at a time, the next page asked for ahead, on a connection
of its own; a bad answer stops the pull."""

import threading

import pytest

from areas.index import BadData
from areas.pull import history_pages


class FakeRemote:
    def __init__(self, answers: list):
        self.answers = answers
        self.asked: list[int] = []
        self.forks: list[FakeRemote] = []
        self.closed = False
        self.lock = threading.Lock()
        self.second_ask = threading.Event()

    def fork(self) -> "FakeRemote":
        twin = FakeRemote(self.answers)
        twin.asked = self.asked
        twin.second_ask = self.second_ask
        self.forks.append(twin)
        return twin

    def call(self, op: str, **args):
        assert op == "history" and args["area"] == "docs"
        with self.lock:
            self.asked.append(args["since"])
            if len(self.asked) == 2:
                self.second_ask.set()
            return self.answers.pop(0)

    def close(self) -> None:
        self.closed = True


def test_pages_follow_the_cursor_while_the_peer_scans_or_has_more():
    remote = FakeRemote(
        [
            {"events": [], "next": 5, "more": True},
            {"events": [], "next": 9, "scanning": True},
            {"events": [], "next": 9},
        ]
    )
    assert [following for _, following in history_pages(remote, "docs", 0)] == [5, 9, 9]
    assert remote.asked == [0, 5, 9]
    assert [twin.closed for twin in remote.forks] == [True]  # asked on a connection of its own


def test_the_next_page_is_asked_for_before_this_one_is_applied():
    remote = FakeRemote([{"events": [], "next": 3, "more": True}, {"events": [], "next": 4}])
    pages = history_pages(remote, "docs", 0)
    next(pages)  # the first page is being applied: the second is asked for meanwhile
    assert remote.second_ask.wait(30)  # a hang guard, not a timing assertion
    pages.close()  # the caller stops here (a failed window, say)
    assert remote.asked == [0, 3]
    assert remote.forks[0].closed


@pytest.mark.parametrize("answer", [None, {"events": "x", "next": 1}, {"events": [], "next": -1}])
def test_a_bad_answer_stops_the_pull(answer):
    with pytest.raises(BadData):
        list(history_pages(FakeRemote([answer]), "docs", 0))
