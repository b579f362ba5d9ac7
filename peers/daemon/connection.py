"""One authenticated connection to a peer: requests both ways, multiplexed by id."""

import asyncio
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from peers.wire import (
    HEADER,
    IDLE_TIMEOUT,
    PING_EVERY,
    ProtocolError,
    RemoteError,
    coalesced,
    frame,
    receive_raw,
    reply_id,
    unpack,
)

log = logging.getLogger(__name__)
RequestHandler = Callable[["Connection", str, dict], Awaitable[Any]]
MAX_CONCURRENT_REQUESTS = 16


class Connection:
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer_key: bytes,
        peer_name: str,
        dialed_by_us: bool,
        handler: RequestHandler,
    ):
        self.reader = reader
        self.writer = writer
        self.peer_key = peer_key
        self.peer_name = peer_name
        self.dialed_by_us = dialed_by_us
        self.handler = handler
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future] = {}
        self._relayed: set[int] = set()  # requests whose answers are passed on undecoded
        self._slots = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
        self._write_lock = asyncio.Lock()
        self._tasks: set[asyncio.Task] = set()
        self.closed = asyncio.Event()
        # Frame bytes each way, not counting TLS record overhead.
        self.bytes_sent = 0
        self.bytes_received = 0
        self.since = time.time()
        peer = writer.get_extra_info("peername")
        self.address = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else ""

    async def run(self) -> None:
        """Read frames until the connection ends; then fail whatever still waits."""
        pinger = asyncio.create_task(self._ping())
        try:
            while True:
                data = await receive_raw(self.reader, IDLE_TIMEOUT)
                self.bytes_received += HEADER.size + len(data)
                answered = reply_id(data) if self._relayed else None
                if answered in self._relayed:
                    future = self._pending.pop(answered, None)
                    if future is not None and not future.done():
                        future.set_result(data)
                    continue
                message = unpack(data)
                if "re" in message:
                    future = self._pending.pop(message["re"], None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif isinstance(message.get("op"), str) and isinstance(message.get("id"), int):
                    await self._slots.acquire()
                    task = asyncio.create_task(self._serve(message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                else:
                    raise ProtocolError("a frame that is neither request nor response")
        except (ProtocolError, ConnectionError, OSError) as exc:
            log.info("connection to %s ended: %s", self.peer_name, exc)
        finally:
            pinger.cancel()
            await self.close()

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(PING_EVERY)
            try:
                await self.call("ping", {}, timeout=IDLE_TIMEOUT)
            except (RemoteError, ConnectionError, TimeoutError):
                await self.close()
                return

    async def _serve(self, message: dict) -> None:
        try:
            args = message.get("args") or {}
            if not isinstance(args, dict):
                raise ValueError("args must be a map")
            result = await self.handler(self, message["op"], args)
            reply = {"re": message["id"], "ok": True, "result": result}
        except Exception as exc:
            if not isinstance(exc, (ValueError, LookupError, PermissionError, RemoteError)):
                log.exception("request %s from %s failed", message.get("op"), self.peer_name)
            reply = {"re": message["id"], "ok": False, "error": str(exc) or type(exc).__name__}
        finally:
            self._slots.release()
        try:
            await self._send(reply)
        except (ConnectionError, OSError, ProtocolError) as exc:
            log.info("could not answer %s: %s", self.peer_name, exc)
            await self.close()

    async def _send(self, message: dict) -> None:
        pieces = coalesced(frame(message))
        async with self._write_lock:
            for piece in pieces:
                self.writer.write(piece)
                self.bytes_sent += len(piece)
            await self.writer.drain()

    async def call(self, op: str, args: dict, timeout: float = 300.0, relay: bool = False) -> Any:
        """The result of a request; with `relay`, the answer frame undecoded.

        peerd passes a relayed answer on to the local process that asked, which decodes it."""
        if self.closed.is_set():
            raise ConnectionError(f"not connected to {self.peer_name}")
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if relay:
            self._relayed.add(request_id)
        closed = asyncio.ensure_future(self.closed.wait())
        try:
            await self._send({"id": request_id, "op": op, "args": args})
            done, _ = await asyncio.wait(
                [future, closed], timeout=timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            closed.cancel()
            self._pending.pop(request_id, None)
            self._relayed.discard(request_id)
        if future not in done:
            future.cancel()
            if self.closed.is_set():
                raise ConnectionError(f"connection to {self.peer_name} closed")
            raise TimeoutError(f"{self.peer_name} did not answer {op} in {timeout:.0f} s")
        reply = future.result()
        if relay:
            return reply
        if not reply.get("ok"):
            raise RemoteError(str(reply.get("error", "request failed")))
        return reply.get("result")

    async def close(self) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for task in list(self._tasks):
            task.cancel()
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), 5)
        except (OSError, TimeoutError, ConnectionError, asyncio.CancelledError):
            pass
