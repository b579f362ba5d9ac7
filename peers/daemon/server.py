"""peerd (`realize serve`): the only process that talks to other peers.

It listens if given an address, keeps a connection to every listening household peer
(reconnecting with backoff), and lets local processes reach peers through a Unix socket.
Requests are answered by a `Handler` from realize_site.peerd: this transport knows no areas.
"""

import asyncio
import logging
import os
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.db import InterfaceError, OperationalError

from peers import events, household
from peers.daemon.connection import Connection
from peers.daemon.gate import Gate, Ticket
from peers.daemon.link_server import LinkServer
from peers.daemon.threads import db, start_soon
from peers.identity import Identity, format_address, parse_address, peer_id, tls
from peers.models import Peer
from peers.wire import (
    DATA_WORD,
    HANDSHAKE_TIMEOUT,
    MAGIC,
    PREAMBLE_MAX,
    READY,
    BufferPool,
    ProtocolError,
    check_hello,
    hello,
    read_frame,
    write_frame,
)
from realize_site.lib import first_line, peerd_socket

log = logging.getLogger("peerd")
REFRESH_EVERY = 2.0
# Open pages are told of the connections and their traffic this often.
ANNOUNCE_EVERY = 5.0
# How much an authenticated connection's reader buffers before pausing the socket: a large
# frame arrives without the transport pausing and resuming at asyncio's small default.
STREAM_LIMIT = 4 * 1024 * 1024
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
# Connections turned away at the gate are logged at most this often (a flood is one line).
GATE_LOG_EVERY = 10.0


@dataclass(frozen=True)
class Member:
    key: bytes
    name: str
    address: str
    # A paused member stays trusted (its attempts are not a stranger's) but is neither dialled
    # nor answered.
    paused: bool = False

    @property
    def dialled(self) -> bool:
        return bool(self.address) and not self.paused


class Handler(Protocol):
    """What peerd serves: the domain, given by the composition root."""

    async def start(self, daemon: "PeerDaemon") -> None:
        """Before peerd serves anyone: recover, start background work."""

    async def stop(self) -> None:
        """As peerd stops."""

    async def handle(self, daemon: "PeerDaemon", conn: Connection, op: str, args: dict) -> Any:
        """A peer's request over its connection."""

    def answer_link(self, key: bytes, op: str, args: dict, buffers: BufferPool) -> Any:
        """A peer's read over a data link, in that link's thread (blocking)."""

    async def peer_connected(self, conn: Connection) -> None:
        """A household peer is connected, either way."""

    async def local(self, op: str, args: dict) -> Any:
        """A request of this appliance's own processes that is not for a peer."""


class PeerDaemon:
    def __init__(self, identity: Identity, name: str, listen: str, handler: Handler):
        self.identity = identity
        self.name = name
        self.listen = listen
        self.members: dict[bytes, Member] = {}
        self.connections: dict[bytes, Connection] = {}
        # Data links peers' workers opened to us (peers.client.links): they only read.
        self.data_links: set[LinkServer] = set()
        # Bytes exchanged over connections that have ended, by peer name.
        self.traffic_closed: dict[str, tuple[int, int]] = {}
        # When each peer's connection last ended (seconds since the epoch), since peerd began.
        self.last_seen: dict[str, float] = {}
        self.dialers: dict[bytes, asyncio.Task] = {}
        self.server_ctx: ssl.SSLContext | None = None
        self.client_ctx: ssl.SSLContext | None = None
        self.handler = handler
        self.ready = asyncio.Event()
        self.gate = Gate()
        self._gate_logged = 0.0
        self._outage: str | None = None  # what the refresh loop last failed on

    # --- the household ----------------------------------------------------------------------
    async def refresh(self) -> None:
        def load():
            return {
                bytes(p.public_key): Member(bytes(p.public_key), p.name, p.address, p.paused)
                for p in Peer.objects.all()
            }

        members = await db(load)
        if members == self.members and self.server_ctx is not None:
            return
        self.members = members
        keys = list(members)
        self.server_ctx = tls.server_context(self.identity, keys)
        self.client_ctx = tls.client_context(self.identity, keys)
        for key, conn in list(self.connections.items()):
            if key not in members:
                log.info("%s left the household: disconnecting", conn.peer_name)
                await conn.close()
            elif members[key].paused:
                log.info("%s is paused: disconnecting", conn.peer_name)
                await conn.close()
        for link in list(self.data_links):
            member = members.get(link.peer_key)
            if link.peer_key and (member is None or member.paused):
                link.close()
        for key, member in members.items():
            task = self.dialers.get(key)
            if member.dialled and (task is None or task.done()):
                self.dialers[key] = asyncio.create_task(self._dial_loop(key))
        for key, task in list(self.dialers.items()):
            if key not in members or not members[key].dialled:
                task.cancel()
                del self.dialers[key]

    # --- outgoing ---------------------------------------------------------------------------
    async def _dial_loop(self, key: bytes) -> None:
        delay = BACKOFF_FIRST
        while True:
            member = self.members.get(key)
            if member is None or not member.dialled:
                return
            conn = self.connections.get(key)
            if conn is not None and not conn.closed.is_set():
                await conn.closed.wait()
                delay = BACKOFF_FIRST
                await asyncio.sleep(BACKOFF_FIRST)
                continue
            try:
                await self._dial(member)
                delay = BACKOFF_FIRST
            except (OSError, ProtocolError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
                log.info("cannot connect to %s at %s: %s", member.name, member.address, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX)

    async def _dial(self, member: Member) -> None:
        host, port = parse_address(member.address)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, limit=len(READY)), HANDSHAKE_TIMEOUT
        )
        try:
            await self._preamble(reader, writer)
            try:
                await asyncio.wait_for(
                    writer.start_tls(self.client_ctx, server_hostname=None), HANDSHAKE_TIMEOUT
                )
            except ssl.SSLCertVerificationError:
                await self._probe_stranger(member)
                raise
            key = tls.peer_key(writer.get_extra_info("ssl_object"))
            if key != member.key:
                raise ProtocolError(f"{member.address} is not {member.name}")
            _authenticated(reader)
            await self._start(reader, writer, member, dialed_by_us=True)
        except BaseException:
            writer.close()
            raise

    async def _preamble(self, reader, writer) -> None:
        """Name ourselves in the clear, then wait for READY.

        TLS starts only once neither side has unread bytes, so no handshake byte is lost."""
        writer.write(MAGIC + self.identity.peer_id.encode() + b"\n")
        await writer.drain()
        try:
            answer = await asyncio.wait_for(reader.readexactly(len(READY)), HANDSHAKE_TIMEOUT)
        except asyncio.IncompleteReadError:
            raise ProtocolError("not a Realize peer") from None
        if answer != READY:
            raise ProtocolError("not a Realize peer")

    async def _probe_stranger(self, member: Member) -> None:
        """A server with an unknown key answered at a peer's address: learn and record it."""
        host, port = parse_address(member.address)
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, limit=len(READY)), HANDSHAKE_TIMEOUT
            )
        except (OSError, TimeoutError):
            return
        try:
            await self._preamble(reader, writer)
            # The server's CertificateVerify, checked whatever the context trusts, proves the key.
            await asyncio.wait_for(
                writer.start_tls(tls.probe_context(self.identity), server_hostname=None),
                HANDSHAKE_TIMEOUT,
            )
            key = tls.peer_key(writer.get_extra_info("ssl_object"))
        except (OSError, ssl.SSLError, TimeoutError, ProtocolError):
            return
        finally:
            writer.close()
        if key:
            log.warning("refused %s: unknown key at %s", member.address, member.name)
            await self._record_stranger(key, member.address, "outgoing")

    # --- incoming ---------------------------------------------------------------------------
    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Until TLS proves a key, a connection is anyone's: its reader holds a preamble's worth
        (the listener's limit), it has HANDSHAKE_TIMEOUT in all, and the gate bounds how many
        wait at once."""
        peername = writer.get_extra_info("peername")
        host = str(peername[0]) if peername else "?"
        address = format_address(peername[0], peername[1]) if peername else "?"
        ticket = self.gate.enter(host)
        if ticket is None:
            self._turned_away(host)
            writer.transport.abort()
            return
        claimed = None
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                line = await reader.readuntil(b"\n")
                if len(line) > PREAMBLE_MAX or not line.startswith(MAGIC):
                    raise ProtocolError("not a Realize peer")
                words = line[len(MAGIC) :].split()
                claimed = words[0].decode("ascii", "replace") if words else ""
                if words[1:] == [DATA_WORD]:
                    self._serve_data_link(writer, address, claimed, ticket)
                    ticket = None  # the link gives it back
                    return
                writer.write(READY)
                await writer.drain()
                stranger, context = self._handshake_for(claimed)
                await writer.start_tls(context)
            key = tls.peer_key(writer.get_extra_info("ssl_object"))
            member = self.members.get(key)
            if member is None:
                if key and key == stranger:
                    await self._refused(key, address, "incoming")
                raise ProtocolError("certificate of a key outside the household")
            if member.paused:
                raise ProtocolError(f"{member.name} is paused here")
            ticket.release()
            _authenticated(reader)
            await self._start(reader, writer, member, dialed_by_us=False)
        except (
            OSError,
            ProtocolError,
            ssl.SSLError,
            TimeoutError,
            ConnectionError,
            asyncio.LimitOverrunError,
            asyncio.IncompleteReadError,
            ValueError,
        ) as exc:
            log.info("dropped connection from %s (%s): %s", address, claimed or "?", exc)
            writer.transport.abort()  # no TLS goodbye to wait on for someone unproven
        finally:
            if ticket is not None:
                ticket.release()

    def _turned_away(self, host: str) -> None:
        now = time.monotonic()
        if now - self._gate_logged >= GATE_LOG_EVERY:
            self._gate_logged = now
            log.warning(
                "too many connections in their handshake (%d in all): closing new ones from %s",
                self.gate.count(),
                host,
            )

    def _handshake_for(self, claimed: str) -> tuple[bytes | None, ssl.SSLContext]:
        """The TLS context for a preamble's claim, and the stranger's key if it names one.

        For a key that is no member's (nor ours) the handshake trusts that key alone: a
        stranger is recorded only once it has proven it holds the key it named."""
        try:
            key = peer_id.decode(claimed)
        except peer_id.BadPeerId:
            return None, self.server_ctx
        if key in self.members or key == self.identity.public_key:
            return None, self.server_ctx
        try:
            return key, tls.proof_context(self.identity, key)
        except ValueError:  # a key no certificate can carry
            return None, self.server_ctx

    def _serve_data_link(
        self, writer: asyncio.StreamWriter, address: str, claimed: str, ticket: Ticket
    ) -> None:
        """A worker's data link, served by threads off the event loop (peers.daemon.link_server)."""
        raw = writer.get_extra_info("socket").dup()
        writer.transport.abort()  # the loop lets go of its descriptor; ours is a copy
        loop = asyncio.get_running_loop()
        stranger, context = self._handshake_for(claimed)

        def proven(key: bytes) -> None:
            if key == stranger:
                asyncio.run_coroutine_threadsafe(self._refused(key, address, "incoming"), loop)

        link = LinkServer(
            raw,
            address,
            context,
            self.name,
            member_name=self._answered_name,
            answer=self.handler.answer_link,
            stranger=proven,
            ticket=ticket,
            ended=lambda link: loop.call_soon_threadsafe(self._link_ended, link),
        )
        self.data_links.add(link)
        threading.Thread(target=link.run, name="data-link", daemon=True).start()

    def _answered_name(self, key: bytes) -> str | None:
        """The name of the member a data link comes from, if it is answered (not paused)."""
        member = self.members.get(key)
        return member.name if member is not None and not member.paused else None

    def _link_ended(self, link: LinkServer) -> None:
        self.data_links.discard(link)
        if not link.peer_key:
            return  # refused before it was known whose it is: no peer's traffic
        sent, received = self.traffic_closed.get(link.peer_name, (0, 0))
        self.traffic_closed[link.peer_name] = (
            sent + link.bytes_sent,
            received + link.bytes_received,
        )

    async def _refused(self, key: bytes, address: str, direction: str) -> None:
        """A stranger proved its key in a handshake: refused, and shown to be added."""
        log.warning("refused unknown peer %s from %s", peer_id.encode(key), address)
        await self._record_stranger(key, "", direction)

    async def _record_stranger(self, key: bytes, address: str, direction: str) -> None:
        try:
            await db(household.record_stranger, key, address, direction)
        except (OperationalError, InterfaceError) as exc:
            log.warning("could not record a stranger: database unavailable: %s", first_line(exc))

    # --- a connection's life ----------------------------------------------------------------
    async def _start(self, reader, writer, member: Member, dialed_by_us: bool) -> None:
        await write_frame(writer, hello(self.name))
        theirs = await read_frame(reader, HANDSHAKE_TIMEOUT)
        check_hello(theirs)
        if theirs.get("role") is not None:
            raise ProtocolError("a data link announces itself before TLS")
        conn = Connection(reader, writer, member.key, member.name, dialed_by_us, self._handle)
        existing = self.connections.get(member.key)
        if existing is not None and not existing.closed.is_set():
            # Both sides keep the connection dialed by the peer with the smaller key.
            keep_new = dialed_by_us == (self.identity.public_key < member.key)
            if not keep_new:
                await conn.close()
                return
            await existing.close()
        self.connections[member.key] = conn
        log.info("connected to %s (%s)", member.name, "outgoing" if dialed_by_us else "incoming")
        start_soon(self._announce_connections())
        start_soon(self._run(conn))
        start_soon(self.handler.peer_connected(conn))

    async def _run(self, conn: Connection) -> None:
        try:
            await conn.run()
        finally:
            if self.connections.get(conn.peer_key) is conn:
                del self.connections[conn.peer_key]
            log.info("disconnected from %s", conn.peer_name)
            self.last_seen[conn.peer_name] = time.time()
            sent, received = self.traffic_closed.get(conn.peer_name, (0, 0))
            self.traffic_closed[conn.peer_name] = (
                sent + conn.bytes_sent,
                received + conn.bytes_received,
            )
            start_soon(self._announce_connections())

    def _connections_state(self) -> dict:
        """Each connected peer: since when, at which address; the others: last seen."""
        now = {c.peer_name: c for c in self.connections.values() if not c.closed.is_set()}
        names = {*now, *self.last_seen}
        return {
            name: {"since": now[name].since, "address": now[name].address}
            if name in now
            else {"last_seen": self.last_seen[name]}
            for name in sorted(names)
        }

    def _traffic(self) -> dict:
        """Bytes sent and received with each peer since peerd started, data links too."""
        totals = dict(self.traffic_closed)
        for c in [*self.connections.values(), *self.data_links]:
            if not c.peer_key:
                continue  # a data link still in its handshake
            sent, received = totals.get(c.peer_name, (0, 0))
            totals[c.peer_name] = (sent + c.bytes_sent, received + c.bytes_received)
        return {name: {"sent": s, "received": r} for name, (s, r) in totals.items()}

    async def _announce_connections(self) -> None:
        """Open pages are told who is connected, and the bytes each way (at each connection
        and disconnection, and every ANNOUNCE_EVERY seconds: pages derive rates from it)."""
        await events.announce(
            {
                "type": "peers.connections",
                "at": time.time(),
                "connections": self._connections_state(),
                "traffic": self._traffic(),
            }
        )

    async def _announce_loop(self) -> None:
        while True:
            await asyncio.sleep(ANNOUNCE_EVERY)
            if self.connections:
                await self._announce_connections()

    async def _handle(self, conn: Connection, op: str, args: dict):
        if op == "ping":
            return {}
        return await self.handler.handle(self, conn, op, args)

    # --- the local socket -------------------------------------------------------------------
    async def _local(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks: set[asyncio.Task] = set()
        lock = asyncio.Lock()

        async def answer(message: dict) -> None:
            relayed = b""
            try:
                result = await self.local_request(message)
                if message.get("relay") and isinstance(result, bytes):
                    # The peer's answer as it came, after our header: not decoded here.
                    reply, relayed = {"re": message.get("id"), "relayed": True}, result
                else:
                    reply = {"re": message.get("id"), "ok": True, "result": result}
            except Exception as exc:  # noqa: BLE001 - the error goes back to the local caller
                reply = {
                    "re": message.get("id"),
                    "ok": False,
                    "error": str(exc) or type(exc).__name__,
                }
            async with lock:
                await write_frame(writer, reply, relayed)

        try:
            while True:
                message = await read_frame(reader, timeout=None)
                task = asyncio.create_task(answer(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        except (ConnectionError, ProtocolError, OSError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            writer.close()

    async def local_request(self, message: dict):
        op, args = message.get("op"), message.get("args") or {}
        if op == "connected":
            return sorted(c.peer_name for c in self.connections.values())
        if op == "connections":
            return self._connections_state()
        if op == "traffic":
            return self._traffic()
        if message.get("peer") is None:
            return await self.handler.local(op, args)
        conn = self.connection_to(message.get("peer"))
        timeout = float(message.get("timeout") or 600)
        return await conn.call(op, args, timeout=timeout, relay=bool(message.get("relay")))

    def connection_to(self, name: str | None) -> Connection:
        for conn in self.connections.values():
            if conn.peer_name == name and not conn.closed.is_set():
                return conn
        raise ConnectionError(f"peer {name!r} is not connected")

    # --- running ----------------------------------------------------------------------------
    async def _refresh_logged(self) -> None:
        """A refresh whose failures are one line per outage, not a traceback every time."""
        try:
            await self.refresh()
        except (OperationalError, InterfaceError) as exc:
            if self._outage is None:
                log.warning("database unavailable: %s", first_line(exc))
            self._outage = self._outage or "database"
            return
        except Exception:
            if self._outage is None:
                log.exception("could not refresh the household")
            self._outage = self._outage or "refresh"
            return
        if self._outage == "database":
            log.warning("database available again")
        elif self._outage:
            log.info("the household is refreshed again")
        self._outage = None

    async def run(self) -> None:
        await self.handler.start(self)
        await self.refresh()
        servers = []
        if self.listen:
            host, port = parse_address(self.listen)
            # A preamble's worth until authenticated (_authenticated lifts it).
            servers.append(await asyncio.start_server(self._accept, host, port, limit=PREAMBLE_MAX))
            log.info("listening on %s as %s", self.listen, self.identity.peer_id)
        path = peerd_socket(settings.REALIZE_HOME)
        path.unlink(missing_ok=True)
        old_umask = os.umask(0o077)
        try:
            servers.append(
                await asyncio.start_unix_server(self._local, str(path), limit=STREAM_LIMIT)
            )
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        self.ready.set()
        announcing = asyncio.create_task(self._announce_loop())
        try:
            while True:
                await asyncio.sleep(REFRESH_EVERY)
                await self._refresh_logged()
        finally:
            announcing.cancel()
            await self.handler.stop()
            for server in servers:
                server.close()
            for link in list(self.data_links):
                link.close()
            for conn in list(self.connections.values()):
                await conn.close()
            path.unlink(missing_ok=True)


def _authenticated(reader: asyncio.StreamReader) -> None:
    """Let a proven peer's reader buffer large frames (STREAM_LIMIT).

    Before, a reader buffers a preamble's worth: asyncio has no public way to change a
    reader's limit, so its attribute is set."""
    reader._limit = STREAM_LIMIT
