"""An area's state as a person reads it, from what is known of it: one pure rule."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


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
    # An Unreal area becoming Real: its files still to fetch (None: not becoming Real).
    realizing: int | None = None


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
    """Paused first; then a run going on; then a scan; then becoming Real; then a failure
    that stands; then a run queued; then no one to sync with; else up to date."""
    if facts.paused:
        return AreaState(State.PAUSED, "resume it to sync it")
    if facts.running:
        return AreaState(State.SYNCING, "with " + ", ".join(facts.running), facts.percent)
    if facts.busy:
        return AreaState(State.SCANNING)
    if facts.realizing is not None:
        files = "file" if facts.realizing == 1 else "files"
        return AreaState(
            State.SYNCING, f"becoming Real: the mount fetches {facts.realizing} {files}"
        )
    if facts.failures:
        return AreaState(State.ERROR, "; ".join(f"{p}: {e}" for p, e in facts.failures))
    if facts.pending:
        return AreaState(State.SYNCING, "queued for the worker")
    if facts.connected == 0:
        return AreaState(State.WAITING, "no peer sharing it is connected")
    return AreaState(State.UP_TO_DATE)


@dataclass
class Folded:
    """Runs in a row that exchanged nothing, shown as one line."""

    runs: list[Any] = field(default_factory=list)
    folded = True

    @property
    def newest(self):
        return self.runs[0]

    @property
    def oldest(self):
        return self.runs[-1]


def is_idle(run) -> bool:
    """A run that ended well having moved nothing either way."""
    return (
        run.status == "done"
        and not (run.files_in or run.files_out or run.conflicts or run.error)
    )


def fold_idle(runs: Iterable[Any], least: int = 2) -> list[Any]:
    """The runs (newest first), with each stretch of at least `least` idle ones in a row
    folded into one Folded."""
    shown: list[Any] = []
    stretch: list[Any] = []

    def close() -> None:
        if len(stretch) >= least:
            shown.append(Folded(list(stretch)))
        else:
            shown.extend(stretch)
        stretch.clear()

    for run in runs:
        if is_idle(run):
            stretch.append(run)
            continue
        close()
        shown.append(run)
    close()
    return shown
