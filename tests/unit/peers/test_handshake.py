"""Before TLS proves a household key, a connection to peerd is anyone's: what it sends is
bounded as it is read, only so many wait at once (in all and from one address), a stranger is
recorded only once its handshake proves its key, and a database outage is one line in the log.

A real PeerDaemon listens on loopback in a thread of this process; the tests attack it with
plain sockets, as anyone on the network could."""

import asyncio
import logging
import os
import socket
import threading
import time

import pytest
from django.db import OperationalError, connection

from peers.daemon import server
from peers.daemon.gate import MAX_UNPROVEN, MAX_UNPROVEN_PER_ADDRESS, Gate
from peers.identity import create_identity, peer_id, tls
from peers.models import Peer, Stranger
from peers.wire import (
    DATA_WORD,
    MAGIC,
    READY,
    check_hello,
    hello,
    pack,
    recv_exactly,
    recv_frame,
    unpack,
)
from tests.appliance import free_port, wait_for


class _Handler:
    async def start(self, daemon):
        pass

    async def stop(self):
        pass

    async def handle(self, daemon, conn, op, args):
        return {"op": op}

    def answer_link(self, key, op, args, buffers):
        return {"op": op}

    async def peer_connected(self, conn):
        pass

    async def local(self, op, args):
        return None


async def _db_closing(fn, *args):
    """peerd's `db`, its connection closed after each call: no thread of this test process
    keeps one to the test database."""

    def run():
        try:
            return fn(*args)
        finally:
            connection.close()

    return await asyncio.to_thread(run)


class Running:
    """A PeerDaemon on loopback, its event loop in a thread."""

    def __init__(self, home, name="alpha"):
        self.identity, _ = create_identity(home)
        self.port = free_port()
        self.daemon = server.PeerDaemon(self.identity, name, f"127.0.0.1:{self.port}", _Handler())
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.task = self.call(self._start())
        wait_for(self.daemon.ready.is_set, "peerd to listen", limit=30)

    async def _start(self) -> asyncio.Task:
        return asyncio.create_task(self.daemon.run())

    async def _stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)

    def call(self, coroutine):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(30)

    def refresh(self):
        self.call(self.daemon.refresh())

    def stop(self):
        self.call(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def peerd_here(home, monkeypatch):
    monkeypatch.setattr(server, "db", _db_closing)
    running = Running(home)
    yield running
    running.stop()


def identity_in(home):
    home.mkdir()
    return create_identity(home)[0]


def connect(port, source="127.0.0.1", timeout=10.0) -> socket.socket:
    return socket.create_connection(
        ("127.0.0.1", port), timeout=timeout, source_address=(source, 0)
    )


def closed_by_peer(sock: socket.socket) -> bool:
    """True once the other side has closed (or reset) the connection; waits up to its timeout."""
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
            if data != READY:
                return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def handshake(port, identity, claimed=None, data=False, source="127.0.0.1"):
    """A preamble naming `claimed` (our own id by default), then TLS with our certificate."""
    raw = connect(port, source)
    word = b" " + DATA_WORD if data else b""
    raw.sendall(MAGIC + (claimed or identity.peer_id).encode() + word + b"\n")
    assert recv_exactly(raw, len(READY)) == READY
    try:
        return tls.probe_context(identity).wrap_socket(raw, server_hostname=None)
    except OSError:
        raw.close()
        raise


def is_refused(sock) -> bool:
    """After a handshake our side thinks done (TLS 1.3): peerd says nothing and hangs up."""
    try:
        return sock.recv(100) == b""
    except (ConnectionResetError, BrokenPipeError, OSError):
        return True


def stranger_keys() -> set[bytes]:
    return {bytes(s.public_key) for s in Stranger.objects.all()}


# --- what is read before anyone is known ---------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_preamble_is_dropped_as_soon_as_it_is_too_long(peerd_here, monkeypatch):
    # Waiting out the handshake's time would close it too: that is not what is tested.
    monkeypatch.setattr(server, "HANDSHAKE_TIMEOUT", 600.0)
    sock = connect(peerd_here.port)
    try:
        sock.sendall(b"x" * 4096)  # no newline: the limit is the preamble's, not 4 MB
        assert closed_by_peer(sock)
    finally:
        sock.close()
    wait_for(lambda: peerd_here.daemon.gate.count() == 0, "the gate to be empty again")


@pytest.mark.django_db(transaction=True)
def test_a_slow_preamble_has_the_handshake_time_in_all(peerd_here, monkeypatch):
    monkeypatch.setattr(server, "HANDSHAKE_TIMEOUT", 1.0)
    sock = connect(peerd_here.port, timeout=30)
    try:
        # A byte at a time, never a whole line: the deadline holds for the whole preamble.
        closed = False
        for byte in (MAGIC * 20)[:60]:
            try:
                sock.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.2)
        assert closed or closed_by_peer(sock)
    finally:
        sock.close()


@pytest.mark.django_db(transaction=True)
def test_only_so_many_wait_in_their_handshake_from_one_address(peerd_here, tmp_path):
    gate = peerd_here.daemon.gate
    waiting = [connect(peerd_here.port) for _ in range(MAX_UNPROVEN_PER_ADDRESS)]
    try:
        wait_for(lambda: gate.count() == MAX_UNPROVEN_PER_ADDRESS, "the first ones to wait")
        one_more = connect(peerd_here.port)
        assert closed_by_peer(one_more)
        one_more.close()

        # Another address still gets in: a member there completes its handshake.
        member = identity_in(tmp_path / "member")
        Peer.objects.create(name="beta", public_key=member.public_key)
        peerd_here.refresh()
        sock = handshake(peerd_here.port, member, source="127.0.0.2")
        try:
            check_hello(unpack(recv_frame(sock)))
            sock.sendall(pack(hello("beta")))
            wait_for(lambda: member.public_key in peerd_here.daemon.connections, "beta to be in")
        finally:
            sock.close()
    finally:
        for sock in waiting:
            sock.close()
    wait_for(lambda: gate.count() == 0, "the gate to be empty once they are gone")
    again = connect(peerd_here.port)
    wait_for(lambda: gate.count() == 1, "a new connection to be let in again")
    again.close()


@pytest.mark.django_db(transaction=True)
def test_only_so_many_wait_in_their_handshake_in_all(peerd_here):
    gate = peerd_here.daemon.gate
    addresses = [f"127.0.1.{n}" for n in range(1, MAX_UNPROVEN // MAX_UNPROVEN_PER_ADDRESS + 1)]
    waiting = []
    try:
        for address in addresses:
            for _ in range(MAX_UNPROVEN_PER_ADDRESS):
                # Data links wait in threads of their own: they count as much.
                sock = connect(peerd_here.port, address)
                sock.sendall(MAGIC + peerd_here.identity.peer_id.encode() + b" data\n")
                waiting.append(sock)
        wait_for(lambda: gate.count() == MAX_UNPROVEN, "the gate to fill")
        one_more = connect(peerd_here.port, "127.0.2.1")
        assert closed_by_peer(one_more)
        one_more.close()
    finally:
        for sock in waiting:
            sock.close()
    wait_for(lambda: gate.count() == 0, "the gate to be empty once they are gone")


def test_a_ticket_is_given_back_once():
    gate = Gate(total=2, per_address=1)
    first = gate.enter("a")
    assert gate.enter("a") is None
    second = gate.enter("b")
    assert gate.enter("c") is None
    first.release()
    first.release()
    assert gate.count() == 1
    assert gate.enter("a") is not None
    second.release()


# --- strangers -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("data", [False, True], ids=["connection", "data link"])
def test_a_claimed_id_without_its_key_is_not_recorded(peerd_here, tmp_path, caplog, data):
    impostor = identity_in(tmp_path / "impostor")
    # Random keys, and one no certificate can carry (its serial number would be zero).
    for key in [*(os.urandom(32) for _ in range(5)), bytes(32)]:
        claimed = peer_id.encode(key)
        try:
            sock = handshake(peerd_here.port, impostor, claimed=claimed, data=data)
        except (OSError, ConnectionError):
            continue  # refused during the handshake, as it should be
        assert is_refused(sock)
        sock.close()
    # A stranger with its own key after them: once it is recorded, so would they have been.
    honest = identity_in(tmp_path / "honest")
    with handshake(peerd_here.port, honest, data=data) as sock:
        is_refused(sock)
    wait_for(lambda: stranger_keys(), "the honest stranger to be recorded")
    assert stranger_keys() == {honest.public_key}
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("data", [False, True], ids=["connection", "data link"])
def test_a_stranger_that_proves_its_key_is_recorded(peerd_here, tmp_path, data):
    stranger = identity_in(tmp_path / "stranger")
    sock = handshake(peerd_here.port, stranger, data=data)
    assert is_refused(sock)
    sock.close()
    wait_for(lambda: stranger.public_key in stranger_keys(), "the stranger to be recorded")
    assert Stranger.objects.get().direction == "incoming"
    assert stranger.public_key not in peerd_here.daemon.connections


@pytest.mark.django_db
def test_the_list_of_strangers_keeps_the_latest():
    from peers.household import STRANGERS_KEPT, record_stranger

    keys = [os.urandom(32) for _ in range(STRANGERS_KEPT + 10)]
    for key in keys:
        record_stranger(key, "", "incoming")
    assert stranger_keys() == set(keys[-STRANGERS_KEPT:])
    record_stranger(keys[-1], "", "incoming")  # one seen again is counted, not added
    assert Stranger.objects.count() == STRANGERS_KEPT


# --- the database going away ---------------------------------------------------------------


def test_a_database_outage_is_one_line_each_way(home, caplog, monkeypatch):
    monkeypatch.setattr(server, "REFRESH_EVERY", 0.01)
    identity, _ = create_identity(home)
    daemon = server.PeerDaemon(identity, "alpha", "", _Handler())
    calls = 0

    async def refresh():
        nonlocal calls
        calls += 1
        if 2 <= calls <= 8:
            raise OperationalError("connection failed: Connection refused\n\tIs the server up?")

    daemon.refresh = refresh

    async def main():
        task = asyncio.create_task(daemon.run())
        while calls < 12:
            await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    with caplog.at_level(logging.INFO, logger="peerd"):
        asyncio.run(main())
    lines = [r for r in caplog.records if r.name == "peerd" and "database" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        "database unavailable: connection failed: Connection refused",
        "database available again",
    ]
    assert not any(r.exc_info for r in caplog.records)
