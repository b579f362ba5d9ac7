"""A peer that speaks the protocol but says what a test tells it to: to check that what a
real appliance receives from a peer is checked, and that bad input only ends that connection.
"""

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from peers.identity import create_identity, tls
from peers.wire import MAGIC, READY, check_hello, hello, read_frame, write_frame
from tests.appliance import free_port


class FakePeer:
    def __init__(self, home: Path, trusted_id: str):
        from peers.identity import peer_id

        home.mkdir(parents=True, exist_ok=True)
        self.identity, _ = create_identity(home)
        self.trusted = peer_id.decode(trusted_id)
        self.port = free_port()
        self.answers: dict[str, Callable[[dict], object]] = {}
        self.requests: list[tuple[str, dict]] = []
        # After the handshake, bytes to send instead of answering (to test bad frames).
        self.garbage: bytes | None = None
        # Connected, and answering nothing (as a peer stuck on a dead disk).
        self.silent = False
        self.writers: set = set()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self.loop).result(10)

    @property
    def peer_id(self) -> str:
        return self.identity.peer_id

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def _listen(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    def misbehave(self, garbage: bytes | None) -> None:
        """From the next connection on, send `garbage` after the handshake; hang up now so
        that the appliance connects again."""
        self.garbage = garbage
        for writer in list(self.writers):
            self.loop.call_soon_threadsafe(writer.close)

    async def _serve(self, reader, writer) -> None:
        self.writers.add(writer)
        try:
            line = await reader.readuntil(b"\n")
            assert line.startswith(MAGIC)
            writer.write(READY)
            await writer.drain()
            await writer.start_tls(tls.server_context(self.identity, [self.trusted]))
            await write_frame(writer, hello("fake"))
            check_hello(await read_frame(reader))
            if self.garbage is not None:
                writer.write(self.garbage)
                await writer.drain()
                await reader.read()  # until the appliance hangs up
                return
            while True:
                message = await read_frame(reader, timeout=None)
                if "re" in message:
                    continue
                op, args = message["op"], message.get("args") or {}
                self.requests.append((op, args))
                if self.silent:
                    continue
                try:
                    if op == "chunks" and "ranges" in args:
                        # Its answers are by hash: it gives no range (as a peer whose files
                        # changed since it indexed them), and is asked again by hash.
                        answer = [None for _ in args["ranges"]]
                    else:
                        answer = self.answers[op](args) if op in self.answers else {}
                    reply = {"re": message["id"], "ok": True, "result": answer}
                except Exception as exc:  # noqa: BLE001 - sent back as the protocol says
                    reply = {"re": message["id"], "ok": False, "error": str(exc)}
                await write_frame(writer, reply)
        except (ConnectionError, asyncio.IncompleteReadError, OSError, AssertionError):
            pass
        finally:
            self.writers.discard(writer)
            writer.close()

    def close(self) -> None:
        async def shut() -> None:
            self.server.close()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
            await asyncio.sleep(0)

        asyncio.run_coroutine_threadsafe(shut(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
