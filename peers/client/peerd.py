"""How the worker and the CLI reach peers: requests through peerd's Unix socket."""

import itertools
import json
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings

from peers.wire import (
    ProtocolError,
    RemoteError,
    pack,
    recv_frame,
    unpack,
    unpack_relayed,
)
from realize_site.lib import peerd_socket, up_state_file

log = logging.getLogger(__name__)
# While `realize up` runs, a peerd that died is started again within seconds: a client waits
# this long for it (at most its own timeout).
RESTART_WAIT = 30.0
RETRY_EVERY = 0.5
NOT_RUNNING = "the peer daemon is not running (start the appliance with 'realize up')"
RESTARTING = "the peer daemon is restarting and did not come back in time: try again"


class PeerdUnavailable(ConnectionError):
    pass


class PeerdClient:
    """A blocking client: one request at a time, or a pipeline of many (not thread-safe)."""

    def __init__(self, timeout: float = 600.0, restart_wait: float = RESTART_WAIT):
        self.timeout = timeout
        self.restart_wait = min(restart_wait, timeout)
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        """peerd's socket; while `realize up` runs, waiting for a peerd it is restarting."""
        if self._sock is None:
            deadline = time.monotonic() + self.restart_wait
            while True:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(str(peerd_socket(settings.REALIZE_HOME)))
                    break
                except OSError:
                    sock.close()
                if not appliance_up():
                    raise PeerdUnavailable(NOT_RUNNING)
                if time.monotonic() >= deadline:
                    raise PeerdUnavailable(RESTARTING)
                time.sleep(RETRY_EVERY)
            self._sock = sock
        return self._sock

    def request(
        self, peer: str | None, op: str, args: dict | None = None, timeout: float | None = None
    ) -> Any:
        """One request's result; `timeout`: this one's, if shorter than the client's."""
        if timeout is None or timeout >= self.timeout:
            return self._one(peer, op, args)
        sock = self._connect()
        sock.settimeout(timeout)
        kept, self.timeout = self.timeout, timeout  # told to peerd too, for its own wait
        try:
            return self._one(peer, op, args)
        finally:
            self.timeout = kept
            if self._sock is not None:
                self._sock.settimeout(kept)

    def _one(self, peer: str | None, op: str, args: dict | None) -> Any:
        results = self.pipeline(peer, op, [args or {}], depth=1)
        try:
            return next(results)
        finally:
            results.close()

    def pipeline(
        self, peer: str | None, op: str, arg_list: Iterable[dict], depth: int, relay: bool = False
    ) -> Iterator[Any]:
        """The results of one request per item of arg_list, in order, up to `depth` in flight.

        The peer works on the next while we use this one."""
        sock = self._connect()
        todo = iter(arg_list)
        waiting: deque[int] = deque()
        replies: dict[int, dict] = {}

        def send_next() -> None:
            args = next(todo, None)
            if args is None:
                return
            request_id = next(self._ids)
            message = {
                "id": request_id,
                "peer": peer,
                "op": op,
                "args": args,
                "timeout": self.timeout,
            }
            if relay:
                message["relay"] = True  # peerd passes the peer's answer on undecoded
            sock.sendall(pack(message))
            waiting.append(request_id)

        try:
            for _ in range(depth):
                send_next()
            while waiting:
                wanted = waiting.popleft()
                while wanted not in replies:
                    data = self._read(sock)
                    reply = _relayed(data) if relay else unpack(data)
                    replies[reply.get("re")] = reply
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
                # Abandoned half-way: pending answers would be misread as later replies, so
                # start over on a new connection.
                self.close()

    def _read(self, sock: socket.socket) -> memoryview:
        return recv_frame(sock)

    def connected(self) -> list[str]:
        return self.request(None, "connected")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> "PeerdClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def ask_peerd(op: str, timeout: float, peer: str | None = None, args: dict | None = None) -> Any:
    """Ask the running peerd about itself (`traffic`, `connections`, ...), or through it a
    connected peer; None when either cannot answer now (not running, not connected)."""
    try:
        with PeerdClient(timeout=timeout, restart_wait=0) as client:
            return client.request(peer, op, args)
    except (PeerdUnavailable, OSError, ProtocolError, RemoteError):
        return None


def appliance_up() -> bool:
    """Whether `realize up` runs for this instance (its state file, and its process alive)."""
    try:
        state = json.loads(up_state_file(settings.REALIZE_HOME).read_text())
        pid = int(state["supervisor"])
    except (OSError, ValueError, TypeError, KeyError):
        return False
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False  # a state file left by an up that was killed
    except PermissionError:
        pass
    return True


def _relayed(data: bytearray) -> dict:
    """A relayed answer: peerd's header, then the peer's answer to the request."""
    header, answer = unpack_relayed(data)
    if answer is None:
        return header  # peerd's own answer: an error before the request reached the peer
    return {**answer, "re": header.get("re")}
