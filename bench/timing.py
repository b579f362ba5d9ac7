"""Bounded waits: every wait of the benchmark gives up by itself, with a message saying what
it was waiting for, so that a stuck tool ends the run instead of hanging it."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# A transfer slower than this is a failure to report, not a figure to print.
TRANSFER_LIMIT = 15 * 60.0
# Starting a tool and seeing it ready (web pages up, peers connected, folders idle).
SETUP_LIMIT = 120.0


class GaveUp(RuntimeError):
    """A bounded wait ran out."""


class Deadline:
    def __init__(self, limit: float, what: str):
        self.limit = limit
        self.what = what
        self.at = time.monotonic() + limit

    def remaining(self) -> float:
        left = self.at - time.monotonic()
        if left <= 0:
            raise GaveUp(f"gave up after {self.limit:.0f} s: {self.what}")
        return left


def poll(predicate: Callable[[], T], what: str, limit: float, every: float = 0.1) -> T:
    """Call predicate() until it returns something truthy, and return that."""
    deadline = Deadline(limit, f"waiting for {what}")
    while True:
        result = predicate()
        if result:
            return result
        deadline.remaining()
        time.sleep(every)


def log(message: str) -> None:
    """Progress goes to stderr, so that stdout holds only the results."""
    import sys

    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
