"""Direct data links: a worker's own TLS connections to a listening peer, for bulk reads.

Relaying bulk data through peerd (decrypt, reframe, copy) was peerd's main load. A data link
carries the read-only `DATA_OPS` straight from the peer into the worker.

It authenticates as peerd does (mutual TLS 1.3, only the expected peer's key) and says in its
hello it is a data link: the peer serves only those reads on it. If the peer does not listen,
or dialling fails, requests go through peerd.
"""

import logging
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from peers.client.traffic import DIALLED
from peers.identity import Identity, parse_address, tls
from peers.wire import (
    DATA_WORD,
    HANDSHAKE_TIMEOUT,
    HEADER,
    MAGIC,
    READY,
    SHARED,
    SOCKET_BUFFER_BYTES,
    ProtocolError,
    RemoteError,
    check_hello,
    hello,
    pack,
    recv_exactly,
    recv_frame,
    unpack,
)

log = logging.getLogger(__name__)
# A link idle longer than this is not reused: the peer may have closed it (it drops a
# connection that says nothing for IDLE_TIMEOUT).
REUSE_WITHIN = 30.0


class LinkFailed(ConnectionError):
    """A data link could not be made, or broke."""


class Link:
    """One blocking TLS connection to a peer (not thread-safe: one user at a time).

    Its bytes each way are added to the process's DIALLED counter, under the peer's name."""

    def __init__(self, sock: socket.socket, peer: str = ""):
        self.sock = sock
        self.peer = peer
        self.used_at = time.monotonic()
        self.bytes_received = 0
        self._ids = 0
        self._buffers = SHARED  # for the frames of chunk contents

    @classmethod
    def dial(
        cls, address: str, key: bytes, identity: Identity, name: str, timeout: float, peer: str = ""
    ) -> "Link":
        host, port = parse_address(address)
        try:
            raw = socket.create_connection((host, port), timeout=HANDSHAKE_TIMEOUT)
        except OSError as exc:
            raise LinkFailed(f"cannot connect to {address}: {exc}") from None
        try:
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
            raw.sendall(MAGIC + identity.peer_id.encode() + b" " + DATA_WORD + b"\n")
            if recv_exactly(raw, len(READY)) != READY:
                raise ProtocolError(f"{address} is not a Realize peer")
            sock = tls.client_context(identity, [key]).wrap_socket(raw, server_hostname=None)
        except (OSError, ProtocolError) as exc:
            raw.close()
            raise LinkFailed(f"cannot connect to {address}: {exc}") from None
        link = cls(sock, peer)
        try:
            if tls.peer_key(sock) != key:
                raise ProtocolError(f"{address} answered with another key")
            link.send(hello(name, role="data"))
            check_hello(link.receive())
        except (OSError, ProtocolError) as exc:
            link.close()
            raise LinkFailed(f"cannot open a data link to {address}: {exc}") from None
        sock.settimeout(timeout)
        return link

    def send(self, message: dict) -> None:
        data = pack(message)
        self.sock.sendall(data)
        DIALLED.add(self.peer, sent=len(data))

    def receive(self) -> dict:
        data = recv_frame(self.sock, self._buffers)
        self.bytes_received += HEADER.size + len(data)
        DIALLED.add(self.peer, received=HEADER.size + len(data))
        return unpack(data)

    def pipeline(self, op: str, arg_list: Iterable[dict], depth: int) -> Iterator[Any]:
        """One request per item of arg_list, up to `depth` in flight; the results in order.

        Abandoned half-way, the link is closed: answers are still on their way."""
        todo = iter(arg_list)
        waiting: deque[int] = deque()
        replies: dict[int, dict] = {}

        def send_next() -> None:
            args = next(todo, None)
            if args is not None:
                self._ids += 1
                self.send({"id": self._ids, "op": op, "args": args})
                waiting.append(self._ids)

        try:
            for _ in range(depth):
                send_next()
            while waiting:
                wanted = waiting.popleft()
                while wanted not in replies:
                    reply = self.receive()
                    if "re" not in reply:
                        raise ProtocolError("a data link carries answers only")
                    replies[reply["re"]] = reply
                reply = replies.pop(wanted)
                send_next()
                if not reply.get("ok"):
                    raise RemoteError(str(reply.get("error")))
                yield reply.get("result")
        except (OSError, ProtocolError):
            self.close()
            raise
        finally:
            if waiting:
                self.close()
            self.used_at = time.monotonic()

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    @property
    def closed(self) -> bool:
        return self.sock is None


class Links:
    """The data links of one consensus run to one peer, shared by its threads.

    Each request takes an idle link (or dials one) and gives it back. If the first dial
    fails, `usable` turns false for the run and callers go through peerd.
    """

    def __init__(
        self,
        address: str,
        key: bytes,
        identity: Identity,
        name: str,
        timeout: float,
        peer: str = "",
    ):
        self.address, self.key, self.identity, self.name = address, key, identity, name
        self.peer = peer  # its name in the household, to count its traffic under
        self.timeout = timeout
        self.usable = True
        self.bytes_received = 0
        self._idle: list[Link] = []
        self._lock = threading.Lock()
        self._dialled = False

    def take(self) -> Link:
        """An idle link, or a new one; LinkFailed if none can be made."""
        with self._lock:
            while self._idle:
                link = self._idle.pop()
                if time.monotonic() - link.used_at < REUSE_WITHIN:
                    return link
                link.close()
        try:
            link = Link.dial(
                self.address, self.key, self.identity, self.name, self.timeout, self.peer
            )
        except LinkFailed as exc:
            if not self._dialled:
                self.usable = False
                log.info("no data link to %s (%s): going through peerd", self.address, exc)
            raise
        self._dialled = True
        return link

    def give_back(self, link: Link) -> None:
        with self._lock:
            self.bytes_received += link.bytes_received
            link.bytes_received = 0
            if not link.closed:
                self._idle.append(link)

    def close(self) -> None:
        with self._lock:
            if self.bytes_received:
                log.info("data links to %s: %d bytes received", self.address, self.bytes_received)
            for link in self._idle:
                link.close()
            self._idle.clear()

