"""What applying a peer's changes did: counts, and the changes that failed."""

import logging
from dataclasses import dataclass, field

from areas.index import RemoteEvent

log = logging.getLogger(__name__)


@dataclass
class ApplyStats:
    files: int = 0
    bytes: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)
    # The first change that could not be applied (its sequence number at the peer): the
    # next consensus pulls again from there.
    retry_from: int | None = None

    def failed(self, e: RemoteEvent, problem: str) -> None:
        self.errors.append(f"{e.path}: {problem}")
        log.warning("could not apply %s %s: %s", e.kind, e.path, problem)
        self.retry_from = e.seq if self.retry_from is None else min(self.retry_from, e.seq)
