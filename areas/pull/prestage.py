"""Files staged ahead of the decisions that put them in place.

A decision only chooses where a file goes, and a staged file can be renamed anywhere, so a
window's files are written by a thread while earlier changes are still decided. Unused
staged files are removed when the window ends; nothing is visible before its rename.
"""

import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import replace

from areas.files import Staged
from areas.index import RemoteEvent


class Outcome:
    """A staged file, or the error staging it raised, as a future's result() gives them."""

    def __init__(self, staged: Staged | None, error: BaseException | None = None):
        self.staged, self.error = staged, error

    @classmethod
    def of(cls, stage: Callable[..., Staged], *args) -> "Outcome":
        """Stage a file here and now."""
        try:
            return cls(stage(*args))
        except Exception as exc:  # noqa: BLE001 - raised again by result(), as a future does
            return cls(None, exc)

    def result(self) -> Staged:
        if self.error is not None:
            raise self.error
        return self.staged

    def placed_at(self, full: str) -> "Outcome":
        """The same file, to be renamed to `full` instead."""
        if self.staged is None or self.staged.full == full:
            return self
        return Outcome(replace(self.staged, full=full))

    def discard(self) -> None:
        if self.staged is not None:
            self.staged.discard()


class FilesAhead:
    """Stage `events`' files in order in an `executor` task.

    `take(e)` each when its change is decided; `close()` when the window is over."""

    def __init__(
        self,
        stage: Callable[[RemoteEvent], Staged],
        events: list[RemoteEvent],
        executor: Executor,
    ):
        self._stage = stage
        self._events = events
        self._expected = {id(e) for e in events}
        self._outcomes: dict[int, Outcome] = {}
        self._cond = threading.Condition()
        self._stopping = False
        self._running = bool(events)
        self._task = executor.submit(self._run) if events else None

    def _run(self) -> None:
        try:
            for e in self._events:
                with self._cond:
                    if self._stopping:
                        return
                outcome = Outcome.of(self._stage, e)
                with self._cond:
                    self._outcomes[id(e)] = outcome
                    self._cond.notify_all()
        finally:
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def take(self, e: RemoteEvent) -> Outcome | None:
        """e's file as staged ahead, waiting if still being written; None if not, or taken."""
        key = id(e)
        if key not in self._expected:
            return None
        with self._cond:
            while key not in self._outcomes and self._running:
                self._cond.wait()
            self._expected.discard(key)
            return self._outcomes.pop(key, None)

    def stop(self) -> None:
        """Stage nothing more (the file being written is finished)."""
        with self._cond:
            self._stopping = True

    def close(self) -> None:
        """Stop, wait for the thread, and remove every staged file nobody took."""
        self.stop()
        if self._task is not None:
            self._task.result()
        with self._cond:
            left, self._outcomes = list(self._outcomes.values()), {}
            self._expected.clear()
        for outcome in left:
            outcome.discard()
