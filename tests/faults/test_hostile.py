"""Probe: hostile bytes at a running appliance's peer port.

alpha and beta, two real appliances, share an area. Anyone on the network then sends alpha's
peerd: random bytes, an HTTP request, TLS with an unknown certificate under someone else's id,
4 MB lines without a newline from many addresses, a slowloris (a byte a second, in the
preamble and inside a data link's TLS handshake), hundreds of connections at once; and beta,
a real member, sends malformed frames after authenticating.

After each try: peerd is the same process, a member still gets in and is answered, no claimed
id was recorded as a stranger, and peerd's memory (VmRSS) and threads come back near what
they were before. At the end, every file beta wrote during the probe reached alpha in a
consensus (a file missing is `lost`).
"""

import os
import socket
import struct
import threading
import time

import msgpack
import pytest

from peers.client.links import Link, LinkFailed
from peers.identity import create_identity, load_identity, peer_id, tls
from peers.wire import (
    DATA_WORD,
    HANDSHAKE_TIMEOUT,
    MAGIC,
    READY,
    RemoteError,
    check_hello,
    hello,
    pack,
    recv_exactly,
    recv_frame,
    unpack,
)
from tests.appliance import wait_for
from tests.faults.conftest import TRIES
from tests.household import make_household

MiB = 1024 * 1024
# What peerd may keep after a probe, over what it held before.
RSS_SLACK_MIB = 40
# Quick-pool threads started by a burst of work, and data links a consensus left open.
THREAD_SLACK = 12
# How long peerd has to give memory and threads back (a hang guard, not a speed check).
SETTLE = 30.0
# peerd's deadline for a handshake, and a margin: a hang guard.
HANDSHAKE_LIMIT = HANDSHAKE_TIMEOUT + 10.0


@pytest.fixture
def pair(tmp_path):
    alpha, beta = make_household(tmp_path, ["alpha", "beta"])
    yield alpha, beta
    for member in (alpha, beta):
        member.destroy()


# --- watching peerd -------------------------------------------------------------------------


def peerd_pid(member) -> int:
    return member.up_state()["programs"]["peerd"]["pid"]


def usage(pid: int) -> tuple[int, int]:
    """peerd's resident memory (MiB) and threads, from /proc."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]) // 1024, int(fields["Threads"])


def connected(member) -> list[str]:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(member.home / "peerd.sock"))
            sock.sendall(pack({"id": 1, "op": "connected", "peer": None, "args": {}}))
            reply = unpack(recv_frame(sock))
    except (OSError, ValueError):
        return []
    return list(reply.get("result") or []) if reply.get("ok") else []


class Target:
    """alpha's peer port, seen by the test as anyone and as beta."""

    def __init__(self, alpha, beta):
        self.alpha, self.beta = alpha, beta
        self.port = alpha.port
        self.key = peer_id.decode(alpha.peer_id)
        self.beta_identity = load_identity(beta.home)
        self.pid = peerd_pid(alpha)
        self.baseline = usage(self.pid)

    def connect(self, source: str = "127.0.0.1", timeout: float = 15.0) -> socket.socket:
        return socket.create_connection(
            ("127.0.0.1", self.port), timeout=timeout, source_address=(source, 0)
        )

    def member_served(self) -> bool:
        """beta opens a data link to alpha (a new connection, a full handshake) and is answered."""
        try:
            link = Link.dial(f"127.0.0.1:{self.port}", self.key, self.beta_identity, "beta", 30)
        except LinkFailed:
            return False
        try:
            next(link.pipeline("history", [{"area": "no such area"}], 1))
        except RemoteError:
            pass  # an answer all the same
        except (OSError, ValueError):
            return False
        finally:
            link.close()
        return True

    def healthy(self) -> bool:
        """Same peerd, a member gets in, and memory and threads come back near baseline."""
        if peerd_pid(self.alpha) != self.pid or not os.path.exists(f"/proc/{self.pid}"):
            return False
        if not self.member_served():
            return False
        rss, threads = self.baseline

        def settled():
            now_rss, now_threads = usage(self.pid)
            return now_rss <= rss + RSS_SLACK_MIB and now_threads <= threads + THREAD_SLACK

        try:
            wait_for(settled, "peerd's memory and threads to come back", limit=SETTLE, every=1)
        except AssertionError:
            print("peerd after the probe:", usage(self.pid), "baseline:", self.baseline)
            return False
        return True


def closed_by_peer(sock: socket.socket, limit: float) -> bool:
    """Whether alpha closed the connection within `limit` seconds (READY aside)."""
    sock.settimeout(limit)
    try:
        while True:
            data = sock.recv(65536)
            if not data:
                return True
            if data != READY:
                return False
    except (ConnectionResetError, BrokenPipeError):
        return True
    except OSError:
        return False


def in_threads(work, items) -> list:
    results = [None] * len(items)

    def run(i, item):
        results[i] = work(item)

    threads = [threading.Thread(target=run, args=(i, item)) for i, item in enumerate(items)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def sources(n: int, base: int) -> list[str]:
    """n loopback addresses of their own (127.<base>.x.y): a crowd, not one host."""
    return [f"127.{base}.{i // 200}.{i % 200 + 1}" for i in range(n)]


# --- the probes: each returns whether what it sent was refused as it should be --------------


def random_bytes(target: Target, i: int) -> bool:
    sock = target.connect()
    with sock:
        try:
            sock.sendall(os.urandom(64 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            return True
        return closed_by_peer(sock, HANDSHAKE_LIMIT)


def http_request(target: Target, i: int) -> bool:
    sock = target.connect()
    with sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: alpha\r\nUser-Agent: probe\r\n\r\n")
        return closed_by_peer(sock, HANDSHAKE_LIMIT)


def unknown_certificate(target: Target, i: int) -> bool:
    """TLS with a certificate of a key no one knows, naming someone else's id (both kinds
    of connection): refused, and the id it named is not recorded as a stranger."""
    home = target.alpha.home.parent / f"home-unknown-{i}"
    home.mkdir(exist_ok=True)
    identity, _ = create_identity(home)
    claimed = [peer_id.encode(os.urandom(32)) for _ in range(2)]
    refused = True
    for claim, word in zip(claimed, [b"", b" " + DATA_WORD], strict=True):
        raw = target.connect()
        raw.sendall(MAGIC + claim.encode() + word + b"\n")
        if recv_exactly(raw, len(READY)) != READY:
            return False
        try:
            sock = tls.probe_context(identity).wrap_socket(raw, server_hostname=None)
        except OSError:
            raw.close()
            continue
        with sock:
            try:
                refused &= sock.recv(100) == b""
            except OSError:
                pass
    recorded = {peer_id.encode(bytes(k)) for (k,) in target.alpha.sql(STRANGER_KEYS)}
    return refused and not recorded & {*claimed, identity.peer_id}


STRANGER_KEYS = "SELECT public_key FROM peers_stranger"


def long_lines(target: Target, i: int) -> bool:
    """200 connections from 100 addresses, 4 MB each without a newline."""
    line = b"A" * (4 * MiB)

    def send(source):
        try:
            sock = target.connect(source)
        except OSError:
            return True  # not even let in
        with sock:
            try:
                sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                return True
            return closed_by_peer(sock, HANDSHAKE_LIMIT)

    return all(in_threads(send, sources(100, 101) * 2))


def slowloris(target: Target, i: int) -> bool:
    """A byte a second, from 20 addresses: half in the preamble, half in a data link's TLS
    handshake. Each is closed by peerd's deadline, and meanwhile a member still gets in."""

    def trickle(item):
        source, data_link = item
        sock = target.connect(source, timeout=HANDSHAKE_LIMIT + 15)
        with sock:
            if data_link:
                sock.sendall(MAGIC + peer_id.encode(os.urandom(32)).encode() + b" data\n")
                if recv_exactly(sock, len(READY)) != READY:
                    return False
                drip = b"\x16\x03\x01\x02\x00" + os.urandom(512)  # a ClientHello that never ends
            else:
                drip = MAGIC + b"A" * 80
            deadline = time.monotonic() + HANDSHAKE_LIMIT + 10
            for byte in drip:
                if time.monotonic() > deadline:
                    return False
                try:
                    sock.sendall(bytes([byte]))
                except (BrokenPipeError, ConnectionResetError):
                    return True
                if closed_by_peer(sock, 1.0):
                    return True
            return False

    items = [(s, i % 2 == 1) for i, s in enumerate(sources(20, 102))]
    served = []
    checker = threading.Timer(5.0, lambda: served.append(target.member_served()))
    checker.start()
    closed = in_threads(trickle, items)
    checker.join()
    return all(closed) and served == [True]


def many_at_once(target: Target, i: int) -> bool:
    """300 connections at once from 60 addresses, a third as data links (threads of their own
    in peerd): held a moment, then dropped."""
    socks = []
    for i, source in enumerate(sources(60, 103) * 5):
        try:
            sock = target.connect(source, timeout=10)
            if i % 3 == 0:
                sock.sendall(MAGIC + peer_id.encode(os.urandom(32)).encode() + b" data\n")
            else:
                sock.sendall(MAGIC[:4])
            socks.append(sock)
        except OSError:
            continue
    time.sleep(2)
    _, threads = usage(target.pid)
    for sock in socks:
        sock.close()
    # Every one of them is let in, or turned away at once: none may hold a thread beyond
    # the gate's bound (peers.daemon.gate.MAX_UNPROVEN).
    return threads <= target.baseline[1] + 64 + THREAD_SLACK


BAD_FRAMES = [
    struct.pack(">I", 1 << 30) + b"nonsense",  # over the size limit
    struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",  # not msgpack
    struct.pack(">I", 3) + msgpack.packb([1, 2]),  # not a map
    pack({"neither": "request nor response"}),
    struct.pack(">I", 1000) + b"short",  # ends before its length
]


def member_malformed(target: Target, i: int) -> bool:
    """beta authenticates, then sends a malformed frame, on a connection and on a data link."""
    bad = BAD_FRAMES[i % len(BAD_FRAMES)]
    refused = True
    raw = target.connect()
    raw.sendall(MAGIC + target.beta_identity.peer_id.encode() + b"\n")
    if recv_exactly(raw, len(READY)) != READY:
        return False
    context = tls.client_context(target.beta_identity, [target.key])
    with context.wrap_socket(raw, server_hostname=None) as sock:
        check_hello(unpack(recv_frame(sock)))
        sock.sendall(pack(hello("beta")))
        sock.sendall(bad)
        if bad.endswith(b"short"):
            sock.shutdown(socket.SHUT_WR)
        refused &= _ended(sock)
    link = Link.dial(f"127.0.0.1:{target.port}", target.key, target.beta_identity, "beta", 30)
    try:
        link.sock.sendall(bad)
        if bad.endswith(b"short"):
            link.sock.shutdown(socket.SHUT_WR)
        refused &= _ended(link.sock)
    finally:
        link.close()
    return refused


def _ended(sock) -> bool:
    sock.settimeout(HANDSHAKE_LIMIT)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except OSError as exc:
        return "timed out" not in str(exc)


# --- the probe ------------------------------------------------------------------------------


# (row of the fault table, name of the files beta writes meanwhile, probe)
PROBES = [
    ("hostile: random bytes", "random", random_bytes),
    ("hostile: HTTP request", "http", http_request),
    ("hostile: TLS, unknown certificate", "unknown-cert", unknown_certificate),
    ("hostile: 4 MB lines x200", "long-lines", long_lines),
    ("hostile: slowloris x20", "slowloris", slowloris),
    ("hostile: 300 connections", "crowd", many_at_once),
    ("hostile: member, malformed frames", "malformed", member_malformed),
]


def test_hostile_bytes_leave_peerd_serving(pair, fault_table):
    alpha, beta = pair
    wait_for(lambda: "beta" in connected(alpha), "alpha and beta to connect", limit=120)
    (beta.dir / "before.txt").write_bytes(b"before the probe\n")
    beta.consensus(alpha)
    target = Target(alpha, beta)

    outcomes = {}
    for probe, slug, run in PROBES:
        survived = 0
        for i in range(TRIES):
            (beta.dir / f"{slug}-{i}.txt").write_bytes(f"{probe} {i}\n".encode())
            try:
                refused = run(target, i)
            except (OSError, ValueError) as exc:
                print(f"{probe}, try {i}: {exc!r}")
                refused = False
            healthy = target.healthy()
            if not (refused and healthy):
                print(f"{probe}, try {i}: refused={refused} healthy={healthy}")
            survived += refused and healthy
        outcomes[probe] = survived

    # Members still sync: whatever beta wrote meanwhile reaches alpha.
    wait_for(lambda: "beta" in connected(alpha), "beta to be connected again", limit=120)
    beta.consensus(alpha)
    written = {p.name: p.read_bytes() for p in beta.dir.iterdir()}
    arrived = {
        name
        for name, data in written.items()
        if (alpha.dir / name).exists() and (alpha.dir / name).read_bytes() == data
    }
    for probe, slug, _ in PROBES:
        lost = sum(1 for name in written if name.startswith(slug) and name not in arrived)
        fault_table.record(probe, TRIES, outcomes[probe], lost)
    assert outcomes == {probe: TRIES for probe, _, _ in PROBES}
    assert set(written) == arrived
    assert alpha.sql(STRANGER_KEYS) == []
