"""Pages made ready ahead (areas.pull.prefetch.Ahead): in order, as far ahead as depth and weight
allow, what was made and never taken dropped, a failure raised where the pages are taken."""

import threading

import pytest

from areas.pull import Ahead


class Maker:
    """Items 0..count-1, each weighing `weight`; made[i] is set as item i is made."""

    def __init__(self, count: int, fail_at: int | None = None):
        self.count, self.fail_at = count, fail_at
        self.next = 0
        self.made = [threading.Event() for _ in range(count)]
        self.dropped: list[int] = []
        self.exited = threading.Event()

    def make(self) -> int | None:
        if self.next == self.count:
            return None
        if self.next == self.fail_at:
            raise OSError("the peer went away")
        item, self.next = self.next, self.next + 1
        self.made[item].set()
        return item

    def ahead(self, depth: int, limit: int, weight: int = 10) -> Ahead:
        return Ahead(
            self.make,
            lambda item: weight,
            self.dropped.append,
            depth,
            limit,
            name="test-ahead",
            on_exit=self.exited.set,
        )


def test_items_come_in_order_made_up_to_depth_ahead():
    maker = Maker(6)
    ahead = maker.ahead(depth=3, limit=1000)
    items = iter(ahead)
    assert next(items) == 0
    # 0 is being consumed; 1, 2 and 3 are made ahead of it, and no more.
    assert maker.made[3].wait(10)
    assert not maker.made[4].wait(0.2)
    assert list(items) == [1, 2, 3, 4, 5]
    ahead.close()
    assert maker.exited.is_set() and maker.dropped == []


def test_no_more_is_made_while_what_is_held_weighs_the_limit():
    maker = Maker(5)
    # Each weighs 10: the one being consumed and one ready reach the limit of 20.
    ahead = maker.ahead(depth=10, limit=20)
    items = iter(ahead)
    assert next(items) == 0
    assert maker.made[1].wait(10)
    assert not maker.made[2].wait(0.2)
    assert next(items) == 1  # 0 is finished: room for one more
    assert maker.made[2].wait(10)
    assert not maker.made[3].wait(0.2)
    ahead.close()


def test_one_is_always_made_ahead_however_heavy():
    maker = Maker(3)
    ahead = maker.ahead(depth=4, limit=5, weight=100)
    items = iter(ahead)
    assert next(items) == 0
    assert maker.made[1].wait(10)
    assert list(items) == [1, 2]
    ahead.close()


def test_what_was_made_and_never_taken_is_dropped_on_close():
    maker = Maker(6)
    ahead = maker.ahead(depth=2, limit=1000)
    items = iter(ahead)
    assert next(items) == 0
    assert maker.made[2].wait(10)
    ahead.close()
    assert sorted(maker.dropped) == [1, 2]
    assert maker.exited.is_set()


def test_a_failure_comes_after_the_items_made_before_it():
    maker = Maker(5, fail_at=2)
    ahead = maker.ahead(depth=3, limit=1000)
    items = iter(ahead)
    assert next(items) == 0
    assert next(items) == 1
    with pytest.raises(OSError, match="went away"):
        next(items)
    ahead.close()
    assert maker.exited.is_set()


def test_closed_before_it_started():
    maker = Maker(2)
    ahead = maker.ahead(depth=2, limit=1000)
    ahead.close()
    assert maker.exited.is_set() and maker.next == 0
