"""An area's state as a person reads it, from what is known of it: one pure rule."""

from dataclasses import dataclass
from enum import StrEnum


class State(StrEnum):
    UP_TO_DATE = "Up to date"
    SCANNING = "Scanning"
    SYNCING = "Syncing"
    WAITING = "Waiting for a peer"
    PAUSED = "Paused"
    ERROR = "Error"


@dataclass(frozen=True)
class Facts:
    paused: bool = False
    # Its index lock is held (a scan, or changes being applied).
    busy: bool = False
    # Peers with a run going on, and the progress of the first that reports one.
    running: tuple[str, ...] = ()
    percent: int | None = None
    pending: int = 0
    # (peer, error) of each peer whose last run failed.
    failures: tuple[tuple[str, str], ...] = ()
    # Household peers sharing the area that are connected now; None: unknown (no peerd).
    connected: int | None = None


@dataclass(frozen=True)
class AreaState:
    state: State
    detail: str = ""
    percent: int | None = None

    def __str__(self) -> str:
        if self.state == State.SYNCING and self.percent is not None:
            return f"{self.state} {self.percent}%"
        return str(self.state)


def area_state(facts: Facts) -> AreaState:
    """Paused first; then a run going on; then a scan; then a failure that stands; then a
    run queued; then no one to sync with; else up to date."""
    if facts.paused:
        return AreaState(State.PAUSED, "resume it to sync it")
    if facts.running:
        return AreaState(State.SYNCING, "with " + ", ".join(facts.running), facts.percent)
    if facts.busy:
        return AreaState(State.SCANNING)
    if facts.failures:
        return AreaState(State.ERROR, "; ".join(f"{p}: {e}" for p, e in facts.failures))
    if facts.pending:
        return AreaState(State.SYNCING, "queued for the worker")
    if facts.connected == 0:
        return AreaState(State.WAITING, "no peer sharing it is connected")
    return AreaState(State.UP_TO_DATE)
