"""Files staged ahead of their decisions (areas.pull.prestage): in order, each taken once, the
rest removed."""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from areas.files import Staged
from areas.pull import FilesAhead


class Event:
    def __init__(self, name: str):
        self.path = name


def stager(tmp_path, fail: str = "", gate: threading.Event | None = None):
    order = []

    def stage(e: Event) -> Staged:
        if gate is not None:
            gate.wait()
        order.append(e.path)
        if e.path == fail:
            raise OSError("disk full")
        tmp = tmp_path / f".tmp-{e.path}"
        tmp.write_text(e.path)
        return Staged(str(tmp), str(tmp_path / e.path), 0)

    return stage, order


def test_files_are_staged_in_order_and_each_taken_once(tmp_path):
    events = [Event(n) for n in "abc"]
    stage, order = stager(tmp_path)
    with ThreadPoolExecutor(1) as pool:
        ahead = FilesAhead(stage, events, pool)
        taken = ahead.take(events[1]).placed_at(str(tmp_path / "elsewhere")).result()
        assert taken.full == str(tmp_path / "elsewhere")
        assert ahead.take(events[1]) is None  # once only
        assert ahead.take(Event("x")) is None  # never staged ahead
        ahead.close()
    assert order == ["a", "b", "c"]
    # What nobody took is removed; what was taken is the taker's.
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp-b"]


def test_a_failed_file_raises_for_its_change_only(tmp_path):
    events = [Event(n) for n in "abc"]
    stage, _ = stager(tmp_path, fail="b")
    with ThreadPoolExecutor(1) as pool:
        ahead = FilesAhead(stage, events, pool)
        assert ahead.take(events[0]).result().full == str(tmp_path / "a")
        with pytest.raises(OSError, match="disk full"):
            ahead.take(events[1]).result()
        assert ahead.take(events[2]).result().full == str(tmp_path / "c")
        ahead.close()


def test_stopped_early_it_stages_nothing_more_and_leaves_nothing(tmp_path):
    events = [Event(n) for n in "abcdef"]
    gate = threading.Event()
    stage, order = stager(tmp_path, gate=gate)
    with ThreadPoolExecutor(1) as pool:
        ahead = FilesAhead(stage, events, pool)
        ahead.stop()
        gate.set()
        ahead.close()
    assert len(order) <= 1  # at most the file it was on when told
    assert list(tmp_path.iterdir()) == []
