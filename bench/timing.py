"""Bounded waits: every wait of the benchmark gives up by itself, with a message saying what
it was waiting for, so that a stuck tool ends the run instead of hanging it."""

import os
import time
from collections.abc import Callable
from typing import NamedTuple, TypeVar

T = TypeVar("T")

# A transfer slower than this is a failure to report, not a figure to print.
TRANSFER_LIMIT = 15 * 60.0
# Starting a tool and seeing it ready (web pages up, peers connected, folders idle).
SETUP_LIMIT = 120.0


class Timed(NamedTuple):
    """A timed transfer: its wall seconds, and the CPU-seconds the whole machine was busy
    meanwhile (every process, the kernel included; out of seconds x cores). A tool whose
    busy share is near the whole machine waits for the CPU; one well below it waits for the
    disk or for itself."""

    seconds: float
    busy: float | None  # None where /proc/stat cannot be read

    def share(self, cores: int) -> float | None:
        """The busy CPU-seconds as a share of what the machine had in that time."""
        if self.busy is None or self.seconds <= 0:
            return None
        return self.busy / (self.seconds * cores)


class Stopwatch:
    """Started when made; `stop()` gives the Timed since then."""

    def __init__(self) -> None:
        self.busy = busy_cpu_seconds()
        self.started = time.monotonic()

    def stop(self) -> Timed:
        seconds = time.monotonic() - self.started
        busy = busy_cpu_seconds()
        return Timed(seconds, busy - self.busy if busy is not None and self.busy else None)


def busy_cpu_seconds() -> float | None:
    """CPU-seconds the machine has spent not idle (nor waiting for I/O) since it booted."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(n) for n in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal (guest time is already in user)
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


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
