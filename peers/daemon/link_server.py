"""Serving a peer's data link (peers.client.links) in threads of peerd, with a blocking TLS socket.

asyncio's SSL layer copies every byte through Python buffers, too costly for bulk reads. So a
data link leaves the event loop after its preamble: one thread does the socket I/O (TLS lets
go of the GIL), another prepares the next answers meanwhile.

The handshake is peerd's own: only household keys are trusted, a stranger is refused and
recorded once its handshake proves its key. Until then the link holds a gate's ticket
(peers.daemon.gate), and the handshake has HANDSHAKE_TIMEOUT in all (the socket's timeout is
one deadline for a whole TLS handshake). Anything malformed closes this link and nothing else.
"""

import logging
import queue
import select
import socket
import ssl
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future

from django.db import close_old_connections, connection

from peers.daemon.gate import Ticket
from peers.identity import tls
from peers.wire import (
    DATA_OPS,
    HANDSHAKE_TIMEOUT,
    HEADER,
    IDLE_TIMEOUT,
    READY,
    SHARED,
    SOCKET_BUFFER_BYTES,
    ProtocolError,
    check_hello,
    coalesced,
    frame,
    hello,
    recv_frame,
    unpack,
)

log = logging.getLogger("peerd")
# Requests read ahead of the answer being sent: the client pipelines a few.
READ_AHEAD = 8


class LinkServer:
    """One data link, from its TLS handshake to its end (run() in a thread of its own).

    `member_name(key)` names a household key's peer (None for a stranger); `answer(key, op,
    args, buffers)` computes a result in the preparing thread; `stranger(key)` is told of a key
    outside the household that completed the handshake; `ticket` is given back once the peer
    is known or the link ends; `ended(link)` when the link is over.
    """

    def __init__(
        self,
        raw: socket.socket,
        address: str,
        context: ssl.SSLContext,
        name: str,
        member_name: Callable[[bytes], str | None],
        answer: Callable[[bytes, str, dict], object],
        stranger: Callable[[bytes], None],
        ticket: Ticket,
        ended: Callable[["LinkServer"], None],
    ):
        self.raw, self.address = raw, address
        self.context, self.name = context, name
        self.member_name, self.answer, self.stranger, self.ended = (
            member_name,
            answer,
            stranger,
            ended,
        )
        self.ticket = ticket
        self.peer_name = "?"
        self.peer_key = b""
        self.bytes_sent = 0
        self.bytes_received = 0
        self.sock: ssl.SSLSocket | None = None
        self._work: queue.Queue = queue.Queue()
        self.buffers = SHARED
        self._closed = False

    # --- the thread doing the socket's I/O --------------------------------------------------
    def run(self) -> None:
        preparer = None
        try:
            self._handshake()
            preparer = threading.Thread(target=self._prepare, name="link-prepare", daemon=True)
            preparer.start()
            self._serve()
        except (OSError, ProtocolError, ssl.SSLError, ValueError) as exc:
            log.info("data link from %s (%s) ended: %s", self.address, self.peer_name, exc)
        finally:
            self.ticket.release()
            self.close()
            self._work.put(None)
            if preparer is not None:
                preparer.join()
            self.ended(self)

    def _handshake(self) -> None:
        self.raw.setblocking(True)
        self.raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        self.raw.settimeout(HANDSHAKE_TIMEOUT)
        self.raw.sendall(READY)
        self.sock = self.context.wrap_socket(self.raw, server_side=True)
        key = tls.peer_key(self.sock)
        name = self.member_name(key) if key else None
        if name is None:
            if key:
                self.stranger(key)
            raise ProtocolError("certificate of a key outside the household")
        self.peer_key, self.peer_name = key, name
        self.ticket.release()
        self._send([*frame(hello(self.name))])
        theirs = self._frame()
        check_hello(theirs)
        if theirs.get("role") != "data":
            raise ProtocolError("a data link's hello must say so")
        self.sock.settimeout(IDLE_TIMEOUT)

    def _serve(self) -> None:
        """Read requests a few ahead; send each answer, in order, as soon as it is ready."""
        waiting: deque[Future] = deque()
        while True:
            while len(waiting) < READ_AHEAD and (not waiting or self._readable()):
                request = self._request()
                future: Future = Future()
                self._work.put((request, future))
                waiting.append(future)
            self._send(waiting.popleft().result())

    def _readable(self) -> bool:
        if self.sock.pending():
            return True
        readable, _, _ = select.select([self.sock], [], [], 0)
        return bool(readable)

    def _frame(self) -> dict:
        data = recv_frame(self.sock)
        self.bytes_received += HEADER.size + len(data)
        return unpack(data)

    def _request(self) -> dict:
        message = self._frame()
        if "re" in message:
            raise ProtocolError("a data link carries requests only")
        if not isinstance(message.get("op"), str) or not isinstance(message.get("id"), int):
            raise ProtocolError("a frame that is not a request")
        return message

    def _send(self, pieces: list) -> None:
        for piece in coalesced(pieces):
            self.sock.sendall(piece)
            self.bytes_sent += len(piece)

    # --- the thread preparing answers -------------------------------------------------------
    def _prepare(self) -> None:
        try:
            while True:
                item = self._work.get()
                if item is None:
                    return
                request, future = item
                future.set_result(self._reply(request))
        finally:
            connection.close()  # this thread's database connection

    def _reply(self, request: dict) -> list:
        op, args = request["op"], request.get("args") or {}
        try:
            if op not in DATA_OPS:
                raise PermissionError(f"{op} is not served on a data link")
            if not isinstance(args, dict):
                raise ValueError("args must be a map")
            close_old_connections()
            result = self.answer(self.peer_key, op, args, self.buffers)
            reply = {"re": request["id"], "ok": True, "result": result}
        except Exception as exc:
            if not isinstance(exc, (ValueError, LookupError, PermissionError)):
                log.exception("data link request %s from %s failed", op, self.peer_name)
            reply = {"re": request["id"], "ok": False, "error": str(exc) or type(exc).__name__}
        try:
            return frame(reply)
        except ProtocolError as exc:
            return frame({"re": request["id"], "ok": False, "error": str(exc)})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:  # wakes the thread blocked reading it, which close() alone does not
            self.raw.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        for sock in (self.sock, self.raw):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
