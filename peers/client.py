"""How the worker and the CLI reach peers: requests through peerd's Unix socket."""

import itertools
import socket
from typing import Any

from .daemon import socket_path
from .protocol import HEADER, MAX_FRAME, ProtocolError, RemoteError, pack, unpack


class PeerdUnavailable(ConnectionError):
    pass


class PeerdClient:
    """A blocking client; one request at a time per client."""

    def __init__(self, timeout: float = 600.0):
        self.timeout = timeout
        self._ids = itertools.count(1)
        self._sock: socket.socket | None = None

    def _connect(self) -> socket.socket:
        if self._sock is None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(self.timeout)
            try:
                sock.connect(str(socket_path()))
            except OSError:
                sock.close()
                raise PeerdUnavailable(
                    "the peer daemon is not running (start the appliance with 'realize up')"
                ) from None
            self._sock = sock
        return self._sock

    def request(self, peer: str | None, op: str, args: dict | None = None) -> Any:
        sock = self._connect()
        message = {
            "id": next(self._ids),
            "peer": peer,
            "op": op,
            "args": args or {},
            "timeout": self.timeout,
        }
        try:
            sock.sendall(pack(message))
            reply = unpack(self._read(sock))
        except (OSError, ProtocolError):
            self.close()
            raise
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error")))
        return reply.get("result")

    def _read(self, sock: socket.socket) -> bytes:
        (length,) = HEADER.unpack(self._exactly(sock, HEADER.size))
        if length > MAX_FRAME:
            raise ProtocolError("oversized frame from peerd")
        return self._exactly(sock, length)

    @staticmethod
    def _exactly(sock: socket.socket, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            part = sock.recv(min(n - len(buf), 1 << 20))
            if not part:
                raise ConnectionResetError("peerd closed the connection")
            buf += part
        return bytes(buf)

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


class RemotePeer:
    """A peer as the consensus engine sees it: `call(op, **args)`."""

    def __init__(self, client: PeerdClient, name: str):
        self.client = client
        self.name = name

    def call(self, op: str, **args) -> Any:
        return self.client.request(self.name, op, args)
