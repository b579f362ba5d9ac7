"""How many connections may be in their handshake at once, in all and from one address.

Until TLS proves a household key, a connection is anyone's: each holds a socket, buffers and
perhaps a thread. So only so many are let in; the rest are closed as they arrive, and a flood
from one address leaves room for the others.
"""

import threading
from collections import Counter

# Connections not yet authenticated: in all, and from one source address.
MAX_UNPROVEN = 64
MAX_UNPROVEN_PER_ADDRESS = 8


class Gate:
    """Counts unauthenticated connections; thread-safe (a data link ends its handshake in a
    thread of its own)."""

    def __init__(self, total: int = MAX_UNPROVEN, per_address: int = MAX_UNPROVEN_PER_ADDRESS):
        self.total = total
        self.per_address = per_address
        self._by_address: Counter[str] = Counter()
        self._lock = threading.Lock()

    def enter(self, address: str) -> "Ticket | None":
        """A ticket to give back once authenticated or closed; None if over a limit."""
        with self._lock:
            if self.count() >= self.total or self._by_address[address] >= self.per_address:
                return None
            self._by_address[address] += 1
        return Ticket(self, address)

    def count(self) -> int:
        return sum(self._by_address.values())

    def _leave(self, address: str) -> None:
        with self._lock:
            self._by_address[address] -= 1
            if self._by_address[address] <= 0:
                del self._by_address[address]


class Ticket:
    def __init__(self, gate: Gate, address: str):
        self._gate, self._address = gate, address
        self._held = True

    def release(self) -> None:
        """Idempotent: called once authenticated, and again as the connection ends."""
        if self._held:
            self._held = False
            self._gate._leave(self._address)
