"""Bytes this process moved with each peer over the data links it dialled (peers.client.links).

peerd counts its own connections and the data links it serves; the links that the worker and
the mount dial carry their pulls, and only they see those bytes. A process's sampler
(realize_site.sampling) reads its totals from here.
"""

import threading


class TrafficCounter:
    """Bytes sent and received with each peer since the process began (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._totals: dict[str, tuple[int, int]] = {}

    def add(self, peer: str, sent: int = 0, received: int = 0) -> None:
        with self._lock:
            was_sent, was_received = self._totals.get(peer, (0, 0))
            self._totals[peer] = (was_sent + sent, was_received + received)

    def totals(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            return dict(self._totals)


# This process's data links, all of them.
DIALLED = TrafficCounter()
