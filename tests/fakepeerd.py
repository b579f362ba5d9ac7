"""Stands in for peerd on its Unix socket, for the pages and commands that ask it which peers
are connected and which areas each shares (the `peerd` fixture of conftest.py starts it)."""

import socket
import threading
from pathlib import Path

from peers.wire import HEADER, pack, unpack
from realize_site.lib import PEERD_SOCKET


class FakePeerd:
    """Stands in for peerd on its Unix socket: `sharing` maps each connected peer to the
    area names it answers to "areas" with (an exception: it answers with an error)."""

    def __init__(self, home: Path, sharing: dict[str, list[str] | Exception]):
        self.sharing = sharing
        home.mkdir(parents=True, exist_ok=True)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(home / PEERD_SOCKET))
        self.server.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, conn.makefile("rb") as stream:
                while header := stream.read(HEADER.size):
                    (length,) = HEADER.unpack(header)
                    conn.sendall(pack(self._answer(unpack(stream.read(length)))))

    def _answer(self, request: dict) -> dict:
        if request["peer"] is None and request["op"] == "connected":
            return {"re": request["id"], "ok": True, "result": list(self.sharing)}
        answer = self.sharing.get(request["peer"])
        if request["op"] != "areas" or answer is None or isinstance(answer, Exception):
            return {"re": request["id"], "ok": False, "error": str(answer)}
        return {"re": request["id"], "ok": True, "result": answer}

    def close(self) -> None:
        self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        self.server.close()
        self.thread.join(timeout=5)
