"""A peer reached over one of this peerd's connections, from a thread of peerd."""

import asyncio
import concurrent.futures
from collections import deque
from collections.abc import Iterable, Iterator

from peers.daemon.connection import Connection


class ConnectionRemote:
    """A peer reached over a connection of this peerd, from one of its worker threads."""

    # A peer's own connection is how peerd reaches it: no data links of its own.
    links = None

    def __init__(self, conn: Connection, loop: asyncio.AbstractEventLoop, daemon=None):
        self.conn = conn
        self.loop = loop
        self.daemon = daemon
        self.name = conn.peer_name

    def others(self) -> list["ConnectionRemote"]:
        """The other peers this peerd is connected to."""
        if self.daemon is None:
            return []
        connections = list(self.daemon.connections.values())
        return [ConnectionRemote(c, self.loop) for c in connections if c is not self.conn]

    def close(self) -> None:
        pass

    def fork(self) -> "ConnectionRemote":
        """The same peer, for another thread (calls go through the event loop anyway)."""
        return ConnectionRemote(self.conn, self.loop, self.daemon)

    def call(self, op: str, **args):
        return asyncio.run_coroutine_threadsafe(self.conn.call(op, args), self.loop).result()

    def call_many(self, op: str, arg_list: Iterable[dict], depth: int) -> Iterator:
        """Pipelined calls, results in order, up to `depth` on their way at once."""
        waiting: deque[concurrent.futures.Future] = deque()
        try:
            for args in arg_list:
                call = self.conn.call(op, args)
                waiting.append(asyncio.run_coroutine_threadsafe(call, self.loop))
                if len(waiting) >= depth:
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for future in waiting:
                future.cancel()
