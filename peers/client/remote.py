"""A peer as the sync engine sees it: requests by name, some of them pipelined.

A worker reaches a peer through peerd, or its own data links (`RemotePeer`); peerd reaches
one over its connection when asked to pull (peers.daemon.ConnectionRemote).
"""

import logging
from collections.abc import Iterable, Iterator
from typing import Any, Protocol

from peers.client.links import Link, LinkFailed, Links
from peers.client.peerd import PeerdClient
from peers.wire import DATA_OPS, ProtocolError, RemoteError

log = logging.getLogger(__name__)


class Remote(Protocol):
    """What the sync engine asks of a peer."""

    name: str
    # Data links straight to the peer, when it can be dialled (None otherwise).
    links: Links | None

    def call(self, op: str, **args) -> Any: ...

    def call_many(self, op: str, arg_list: Iterable[dict], depth: int) -> Iterator[Any]: ...

    def fork(self) -> "Remote":
        """The same peer, usable from another thread."""
        ...

    def others(self) -> list["Remote"]:
        """The other connected peers, each usable from another thread."""
        ...

    def close(self) -> None: ...


class RemotePeer:
    """A peer as the consensus engine sees it: `call(op, **args)`.

    With `links` (peers.client.links), bulk reads go straight to the peer; the rest, and
    everything when the peer cannot be dialled, goes through peerd.
    """

    def __init__(self, client: PeerdClient, name: str, links: Links | None = None):
        self.client = client
        self.name = name
        self.links = links

    def _link(self, op: str) -> Link | None:
        if self.links is None or not self.links.usable or op not in DATA_OPS:
            return None
        try:
            return self.links.take()
        except LinkFailed:
            return None

    def call(self, op: str, **args) -> Any:
        link = self._link(op)
        if link is not None:
            results = link.pipeline(op, [args], depth=1)
            try:
                return next(results)
            except (OSError, ProtocolError) as exc:
                # A read, safe to ask again: through peerd this time.
                log.info("data link to %s broke (%s): asking through peerd", self.name, exc)
            finally:
                results.close()
                self.links.give_back(link)
        return self.client.request(self.name, op, args)

    def close(self) -> None:
        self.client.close()

    def fork(self) -> "RemotePeer":
        """The same peer on a connection of its own, for another thread."""
        return RemotePeer(PeerdClient(self.client.timeout), self.name, self.links)

    def others(self) -> list["RemotePeer"]:
        """The other connected peers, each on a connection of its own (for another thread)."""
        try:
            with PeerdClient(self.client.timeout) as own:
                names = own.connected()
        except (OSError, ProtocolError, RemoteError):
            return []
        return [RemotePeer(PeerdClient(self.client.timeout), n) for n in names if n != self.name]

    def call_many(self, op: str, arg_list: Iterable[dict], depth: int) -> Iterator[Any]:
        """Pipelined calls, results in order, on their own connection.

        They can run in another thread while this one makes its own calls."""
        link = self._link(op)
        if link is not None:
            try:
                yield from link.pipeline(op, arg_list, depth)
            finally:
                self.links.give_back(link)
            return
        with PeerdClient(self.client.timeout) as own:
            yield from own.pipeline(self.name, op, arg_list, depth, relay=True)
