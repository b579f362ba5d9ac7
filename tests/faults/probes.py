"""Helpers of the fault probes: what the test wrote, what is visible, processes to kill, a
PostgreSQL cluster and a Redis server of the test's own, a small disk, and checks that an
appliance's processes answer.

The probes run real appliances (tests/appliance.py) and break things under them; these
helpers only watch and count, they never repair anything.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import hashlib
import http.cookiejar
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.appliance import REALIZE, free_port, stop_with_parent, wait_for
from tests.household import AREA, Member

MiB = 1024 * 1024
# Set by `make faults`: the full probes (more files, larger ones, every combination).
FULL = os.environ.get("REALIZE_FAULT_FULL") == "1"


def tries_of(slow: bool) -> int:
    """Tries for a probe: TRIES; a slow probe makes half as many outside `make faults`."""
    from tests.faults.conftest import TRIES

    return TRIES if FULL or not slow else max(1, TRIES // 2)


# The probes' random choices (delays, sizes, which files change): set it to replay a run.
SEED = int(os.environ.get("REALIZE_FAULT_SEED") or random.randrange(1 << 30))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --- what the test wrote --------------------------------------------------------------------


class Versions:
    """Every version of every path the test wrote, on any side, and what should be there now.

    Each path is only ever changed on one side (its owner), so no change can conflict."""

    def __init__(self) -> None:
        self.known: dict[str, set[str]] = defaultdict(set)
        self.sizes: dict[str, set[int]] = defaultdict(set)
        self.current: dict[str, str] = {}

    def wrote(self, rel: str, data: bytes) -> None:
        d = digest(data)
        self.known[rel].add(d)
        self.sizes[rel].add(len(data))
        self.current[rel] = d

    def deleted(self, rel: str) -> None:
        self.current.pop(rel, None)


class Digests:
    """sha256 of files, remembered by (device, inode, size, mtime, ctime): a file renamed
    into place is not read again."""

    def __init__(self) -> None:
        self._known: dict[tuple, str] = {}
        self._lock = threading.Lock()

    def of(self, path: str, st: os.stat_result | None = None) -> tuple[str, int] | None:
        """(digest, size) of the file now at path, or None if there is none. With `st` (its
        lstat, just taken), a file known by it is not opened again."""
        if st is not None:
            with self._lock:
                known = self._known.get(_key(st))
            if known is not None:
                return known, st.st_size
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except (FileNotFoundError, NotADirectoryError):
            return None
        try:
            for _ in range(5):
                st = os.fstat(fd)
                key = _key(st)
                with self._lock:
                    known = self._known.get(key)
                if known is not None:
                    return known, st.st_size
                h = hashlib.sha256()
                os.lseek(fd, 0, os.SEEK_SET)
                while block := os.read(fd, 4 * MiB):
                    h.update(block)
                if _key(os.fstat(fd)) == key:
                    with self._lock:
                        self._known[key] = h.hexdigest()
                    return h.hexdigest(), st.st_size
                # Changed while read (a rename changes ctime too): read it again.
            return "changing", st.st_size  # written in place, under its name
        finally:
            os.close(fd)


def _key(st: os.stat_result) -> tuple:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def files_of(root: Path) -> Iterator[tuple[str, str, os.stat_result]]:
    """(relative path, full path, lstat) of every regular file under root, temporary ones
    too."""
    stack = [str(root)]
    while stack:
        top = stack.pop()
        try:
            entries = list(os.scandir(top))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    yield os.path.relpath(entry.path, root), entry.path, st
            except FileNotFoundError:
                continue


def is_temporary(rel: str) -> bool:
    """A name the appliance gives its files in the making (areas.files.paths): not a real
    name, never a file of the area."""
    from areas.files.paths import is_ignored

    return any(is_ignored(part) for part in rel.split("/"))


def area_digests(root: Path, cache: Digests) -> dict[str, str]:
    """Every file of the area (temporary files left out): its digest."""
    found = {}
    for rel, full, st in files_of(root):
        if is_temporary(rel):
            continue
        got = cache.of(full, st)
        if got is not None:
            found[rel] = got[0]
    return found


def temporary_files(root: Path) -> list[str]:
    return sorted(rel for rel, _, _ in files_of(root) if is_temporary(rel))


@dataclass
class Difference:
    missing: list[str] = field(default_factory=list)  # should be there, is not
    wrong: list[str] = field(default_factory=list)  # there, not the current version
    resurrected: list[str] = field(default_factory=list)  # deleted, back again
    unknown: list[str] = field(default_factory=list)  # never written (a conflict copy?)

    @property
    def lost(self) -> int:
        return len(self.missing) + len(self.wrong) + len(self.resurrected)

    def __bool__(self) -> bool:
        return bool(self.lost or self.unknown)

    def describe(self, side: str) -> str:
        parts = []
        for what, paths in (
            ("missing", self.missing),
            ("wrong content", self.wrong),
            ("resurrected", self.resurrected),
            ("unexpected", self.unknown),
        ):
            if paths:
                shown = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
                parts.append(f"{len(paths)} {what} ({shown})")
        return f"{side}: " + "; ".join(parts)


def compare(found: dict[str, str], versions: Versions) -> Difference:
    diff = Difference()
    for rel, d in versions.current.items():
        if rel not in found:
            diff.missing.append(rel)
        elif found[rel] != d:
            diff.wrong.append(rel)
    for rel in found:
        if rel not in versions.current:
            (diff.resurrected if rel in versions.known else diff.unknown).append(rel)
    for paths in (diff.missing, diff.wrong, diff.resurrected, diff.unknown):
        paths.sort()
    return diff


# --- what is visible while a fault happens --------------------------------------------------


class Observer:
    """A thread that looks at the areas again and again while a fault happens: every file
    visible under a real name must hold a version the test wrote at that path, whole.

    `sightings` collects the bad ones: (side, path, what was seen)."""

    def __init__(self, areas: dict[str, Path], versions: Versions, cache: Digests):
        self.areas = areas
        self.versions = versions
        self.cache = cache
        self.sightings: list[tuple[str, str, str]] = []
        self._seen_bad: set[tuple[str, str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.passes = 0

    def __enter__(self) -> Observer:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="observer", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.look()  # and once more, at the end

    def _run(self) -> None:
        while not self._stop.is_set():
            self.look()
            self._stop.wait(0.05)

    def look(self) -> None:
        self.passes += 1
        for side, root in self.areas.items():
            for rel, full, st in files_of(root):
                if is_temporary(rel):
                    continue
                got = self.cache.of(full, st)
                if got is None:
                    continue
                d, size = got
                if d in self.versions.known.get(rel, ()):
                    continue
                if rel not in self.versions.known:
                    what = f"a file never written ({size} bytes)"
                elif size not in self.versions.sizes[rel]:
                    what = f"partial: {size} bytes, no version has that size"
                else:
                    what = f"corrupt: {size} bytes, content of no version"
                key = (side, rel, what)
                if key not in self._seen_bad:
                    self._seen_bad.add(key)
                    self.sightings.append(key)

    def bad_paths(self) -> set[tuple[str, str]]:
        return {(side, rel) for side, rel, _ in self.sightings}


# --- content that changes each try ----------------------------------------------------------


class Workload:
    """The files one side owns (all under `<side>/`), changed a little every try."""

    def __init__(self, member: Member, versions: Versions, rng: random.Random):
        self.member = member
        self.root = member.dir
        self.versions = versions
        self.rng = rng
        self.small: list[str] = []
        self.large: list[str] = []
        self._n = 0

    def _name(self, kind: str, suffix: str) -> str:
        self._n += 1
        return f"{self.member.name}/{kind}/d{self._n % 7}/{kind}-{self._n}{suffix}"

    def write(self, rel: str, data: bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.versions.wrote(rel, data)  # known before it can be seen anywhere
        path.write_bytes(data)

    def delete(self, rel: str) -> None:
        self.versions.deleted(rel)
        (self.root / rel).unlink()

    def rename(self, rel: str, new: str) -> None:
        data = (self.root / rel).read_bytes()
        self.versions.wrote(new, data)
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        (self.root / rel).rename(self.root / new)
        self.versions.deleted(rel)

    def removals(self, deletes: int, renames: int, keep_large: int) -> None:
        """Deletes and renames: they start consensus at once, so the probes make them apart
        from the transfer that gets the fault."""
        rng = self.rng
        for rel in rng.sample(self.small, min(deletes, len(self.small))):
            self.small.remove(rel)
            self.delete(rel)
        for rel in rng.sample(self.small, min(renames, len(self.small))):
            new = self._name("small", ".moved")
            self.small[self.small.index(rel)] = new
            self.rename(rel, new)
        while len(self.large) > keep_large:
            self.delete(self.large.pop(0))

    def additions(self, small: int, edits: int, large: list[int]) -> int:
        """New small files, edits of some, and new large files of these sizes: bytes written."""
        rng = self.rng
        written = 0
        for rel in rng.sample(self.small, min(edits, len(self.small))):
            data = (self.root / rel).read_bytes()
            data = data[: rng.randrange(len(data) + 1)] + rng.randbytes(rng.randrange(1, 5000))
            self.write(rel, data)
            written += len(data)
        for _ in range(small):
            rel = self._name("small", ".txt")
            # Most below 64 KiB (staged inline), some a few chunks long.
            size = rng.choice([0, 1, 100, 3000, 20000, 70000, 200000, rng.randrange(1, 65536)])
            self.write(rel, rng.randbytes(size))
            self.small.append(rel)
            written += size
        for size in large:
            rel = self._name("large", ".bin")
            self.write(rel, os.urandom(size))
            self.large.append(rel)
            written += size
        return written


# --- processes ------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, command line) of every process."""
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry.name}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        found[int(entry.name)] = (ppid, cmdline)
    return found


def descendants(pid: int, processes: dict[int, tuple[int, str]] | None = None) -> list[int]:
    processes = processes if processes is not None else _processes()
    children: dict[int, list[int]] = defaultdict(list)
    for child, (parent, _) in processes.items():
        children[parent].append(child)
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def stager_pids(member: Member) -> list[int]:
    """The stagers (python -m areas.stager.process) running under this appliance's `up`."""
    state = member.up_state()
    if not state:
        return []
    processes = _processes()
    return [
        pid
        for pid in descendants(state["supervisor"], processes)
        if "areas.stager.process" in processes[pid][1]
    ]


def writing(pid: int) -> bool:
    """Whether the process has one of the appliance's files in the making open."""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("/") and is_temporary(os.path.basename(target)):
            return True
    return False


def last_error(member: Member, program: str) -> str | None:
    """The last exception line in a program's log (what a person would look for)."""
    try:
        lines = (member.home / "logs" / f"{program}.log").read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return None
    errors = [
        line.strip()
        for line in lines
        if re.match(r"^\w+(\.\w+)*(Error|Exception): ", line.strip())
        or line.startswith("Exception in thread")
    ]
    return errors[-1] if errors else None


def program_pid(member: Member, name: str) -> int | None:
    state = member.up_state()
    return state["programs"][name]["pid"] if state else None


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def sigkill(pids: list[int]) -> list[int]:
    killed = []
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
    return killed


def wait_restarted(member: Member, name: str, old: int, limit: float = 180) -> int:
    """The new pid of program `name`, once `up` has started it again."""

    def restarted():
        pid = program_pid(member, name)
        return pid if pid and pid != old and alive(pid) else None

    return wait_for(restarted, f"{member.name}'s {name} to be restarted", limit=limit)


# --- asking an appliance's processes --------------------------------------------------------


def connected(member: Member) -> list[str] | None:
    """The peers member's peerd is connected to (asked on its socket); None if no answer."""
    from peers.wire import pack, recv_frame, unpack

    path = member.home / "peerd.sock"
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(10)
            sock.connect(str(path))
            sock.sendall(pack({"id": 1, "op": "connected", "peer": None, "args": {}}))
            reply = unpack(recv_frame(sock))
    except (OSError, ValueError):
        return None
    result = reply.get("result") if isinstance(reply, dict) else None
    return list(result) if reply.get("ok") and isinstance(result, list) else None


def wait_connected(members: list[Member], limit: float = 120) -> None:
    for m in members:
        others = {o.name for o in members if o is not m}
        wait_for(
            lambda m=m, others=others: others <= set(connected(m) or []),
            f"{m.name}'s peerd to be connected to {', '.join(sorted(others))}",
            limit=limit,
            every=0.3,
        )


def query(member: Member, sql: str, *params) -> list[tuple]:
    """A query on member's own database, wherever its DATABASE_URL points."""
    with psycopg.connect(member.env["DATABASE_URL"], connect_timeout=10) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


def unfinished_runs(member: Member) -> list[tuple]:
    """Runs left pending or running: (id, trigger, status, peer)."""
    return query(
        member,
        "SELECT id, trigger, status, peer_name FROM areas_consensusrun "
        "WHERE status IN ('pending', 'running') ORDER BY id",
    )


class Settling:
    """Runs left pending or running once things should have settled, each reported once:
    one left for good is not the next try's fault."""

    def __init__(self, members: list[Member]):
        self.members = members
        self.reported: dict[tuple[str, int], str] = {}

    def left(self) -> dict[tuple[str, int], str]:
        return {
            (m.name, r[0]): f"{m.name}: run {r[0]} ({r[1]}) {r[2]}"
            for m in self.members
            for r in unfinished_runs(m)
        }

    def wait(self, limit: float = 120) -> list[str]:
        """Wait until no run is pending or running but those already reported; the new ones
        still left then."""
        left: dict = {}

        def settled():
            left.clear()
            left.update({k: v for k, v in self.left().items() if k not in self.reported})
            return not left

        with contextlib.suppress(AssertionError):
            wait_for(settled, "runs to finish", limit=limit, every=0.5)
        self.reported.update(left)
        return list(left.values())

    def still_left(self) -> list[str]:
        """Of those reported, the runs that are still unfinished now."""
        now = self.left()
        return [v for k, v in self.reported.items() if k in now]


class Command:
    """`realize ARGS` started in the background, e.g. a consensus about to be interrupted."""

    def __init__(self, member: Member, *args: str):
        self.started = time.monotonic()
        self.process = subprocess.Popen(
            [REALIZE, *args],
            env=member.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=stop_with_parent,
        )
        self.stdout = self.stderr = ""
        self.returncode: int | None = None
        self.hung = False
        self.waited = 0.0

    def running(self) -> bool:
        return self.process.poll() is None

    def finish(
        self,
        limit: float = 660,
        progress: Callable[[], object] | None = None,
        stall: float = 90,
    ) -> int | None:
        """Its exit code; None if it was still waiting after `limit` seconds, or after
        `stall` seconds in which `progress()` did not change (then it is stopped)."""
        deadline = time.monotonic() + limit
        seen = progress() if progress else None
        changed = time.monotonic()
        while True:
            try:
                self.stdout, self.stderr = self.process.communicate(timeout=2)
                break
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if progress is not None:
                    state = progress()
                    if state != seen:
                        seen, changed = state, now
                if now > deadline or now - changed > stall:
                    self.hung = True
                    self.waited = now - self.started
                    self.process.kill()
                    self.stdout, self.stderr = self.process.communicate()
                    return None
        self.returncode = self.process.returncode
        return self.returncode

    def summary(self) -> str:
        if self.hung:
            return f"still waiting after {self.waited:.0f} s, without progress; stopped"
        line = (self.stderr.strip().splitlines() or self.stdout.strip().splitlines() or [""])[-1]
        return f"exit {self.returncode}: {line[:160]}"


def progress(members: list[Member]) -> tuple:
    """What changes while a consensus works: files and sizes in the areas and the staging
    directories, and the runs' states."""
    state = []
    for m in members:
        for root in (m.dir, m.home / "staging"):
            sizes = [st.st_size for _, _, st in files_of(root)]
            state.append((len(sizes), sum(sizes)))
        with contextlib.suppress(psycopg.Error):
            state.append(tuple(query(m, "SELECT id, status FROM areas_consensusrun")))
    return tuple(state)


def consensus(member: Member, other: Member) -> Command:
    return Command(member, "consensus", AREA, "--peer", other.name)


def one_line_error(stderr: str) -> bool:
    lines = stderr.strip().splitlines()
    return len(lines) == 1 and lines[0].startswith("realize: ") and "Traceback" not in stderr


class Web:
    """A browser's view of an appliance's pages: logs in as its admin, opens the dashboard."""

    def __init__(self, member: Member):
        self.member = member
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))

    def _login(self) -> None:
        url = self.member.url + "/login/"
        with self.opener.open(url, timeout=20) as response:
            page = response.read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = urllib.parse.urlencode(
            {
                "username": "admin",
                "password": self.member.admin_password,
                "csrfmiddlewaretoken": token,
            }
        ).encode()
        request = urllib.request.Request(url, data=form, headers={"Referer": url})
        with self.opener.open(request, timeout=20) as response:
            response.read()

    def dashboard(self) -> str | None:
        """None if the dashboard answers with this peer's page, else what went wrong."""
        try:
            if not any(c.name == "sessionid" for c in self.jar):
                self._login()
            with self.opener.open(self.member.url + "/", timeout=20) as response:
                page = response.read().decode()
                if "/login/" in response.url:
                    self.jar.clear()
                    return "the dashboard sent us to the login page"
                if self.member.name not in page:
                    return "the dashboard does not show the peer's name"
        except (OSError, AttributeError) as exc:
            return f"the dashboard did not answer: {exc}"
        return None

    def session_cookie(self) -> str:
        if not any(c.name == "sessionid" for c in self.jar):
            self._login()
        return "; ".join(f"{c.name}={c.value}" for c in self.jar)

    def live_event(self, kind: str, limit: float = 60) -> str | None:
        """None if a dashboard's websocket opened now gets an event of this type within
        `limit` seconds (the worker publishes through Redis, web forwards), else why not."""
        try:
            cookie = self.session_cookie()
        except (OSError, AttributeError) as exc:
            return f"cannot log in: {exc}"
        try:
            with WebSocket(self.member.web_port, "/ws/dashboard/", cookie) as ws:
                deadline = time.monotonic() + limit
                while time.monotonic() < deadline:
                    message = ws.receive(deadline - time.monotonic())
                    if message is None:
                        break
                    if json.loads(message).get("type") == kind:
                        return None
        except (OSError, ValueError) as exc:
            return f"the dashboard's websocket failed: {exc}"
        return f"no {kind} event on the dashboard's websocket within {limit:.0f} s"

    def open_dashboard(self) -> WebSocket | None:
        """A dashboard's websocket, kept open (as a browser's page does); None if it failed."""
        try:
            return WebSocket(self.member.web_port, "/ws/dashboard/", self.session_cookie())
        except (OSError, AttributeError):
            return None


def heartbeat_after(ws: WebSocket, since: datetime.datetime, limit: float) -> str:
    """What a dashboard's websocket open across a restart does: "live" (a heartbeat made
    after `since` arrives within `limit` seconds), "closed" (the page's script opens another)
    or "silent" (open, and nothing new: the page would show stale data for good)."""
    deadline = time.monotonic() + limit
    try:
        while time.monotonic() < deadline:
            message = ws.receive(deadline - time.monotonic())
            if message is None:
                break
            event = json.loads(message)
            if event.get("type") == "appliance.heartbeat":
                at = datetime.datetime.fromisoformat(event["worker_seen_at"])
                if at > since:
                    return "live"
    except (OSError, ValueError):
        return "closed"
    return "silent"


class WebSocket:
    """Just enough of a websocket client to read a dashboard's events."""

    def __init__(self, port: int, path: str, cookie: str):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=20)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
                f"Cookie: {cookie}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            block = self.sock.recv(4096)
            if not block:
                raise OSError("connection closed during the handshake")
            head += block
        head, self.buffer = head.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            raise OSError(f"handshake refused: {status.decode(errors='replace')}")

    def _read(self, n: int, deadline: float) -> bytes | None:
        while len(self.buffer) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                block = self.sock.recv(65536)
            except TimeoutError:
                return None
            if not block:
                raise OSError("the websocket was closed")
            self.buffer += block
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def receive(self, limit: float) -> str | None:
        """The next text message, or None after `limit` seconds."""
        deadline = time.monotonic() + limit
        while True:
            head = self._read(2, deadline)
            if head is None:
                return None
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self._read(2, deadline + 5), "big")
            elif length == 127:
                length = int.from_bytes(self._read(8, deadline + 5), "big")
            payload = self._read(length, deadline + 5) or b""
            if opcode == 8:
                code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else None
                raise OSError(f"the websocket was closed (code {code})")
            if opcode == 1:
                return payload.decode()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc) -> None:
        self.sock.close()


# --- appliances built with a hook -----------------------------------------------------------


def make_members(
    root: Path,
    names: list[str],
    configure: Callable[[Member], None] | None = None,
    before_up: Callable[[Member], None] | None = None,
) -> list[Member]:
    """Like tests.household.make_household, with `configure(member)` called on each before
    anything is run (to point it at another database, Redis, home or area directory), and
    `before_up(member)` once it is set up."""
    members = [Member(root, name) for name in names]
    try:
        for m in members:
            if configure is not None:
                configure(m)
            m.init(m.listen)
        for m in members:
            for other in members:
                if other is not m:
                    m.run("peer", "add", other.name, other.peer_id, "--address", other.listen)
            m.run("area", "add", AREA, str(m.dir))
            if before_up is not None:
                before_up(m)
        for m in members:
            m.up()
    except BaseException:
        for m in members:
            with contextlib.suppress(Exception):
                m.stop()
        raise
    return members


def beat_every(member: Member, seconds: int) -> None:
    """Have beat schedule the heartbeat every `seconds` (before `up`)."""
    query(member, "UPDATE django_celery_beat_intervalschedule SET every = %s", seconds)
    query(member, "UPDATE django_celery_beat_periodictask SET expire_seconds = %s", seconds * 4)


def heartbeat(member: Member):
    rows = query(member, "SELECT worker_seen_at FROM peers_localpeer")
    return rows[0][0] if rows else None


# --- services of the test's own -------------------------------------------------------------


def _tool_dir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parts[-3])
    return found[-1].parent if found else None


def postgres_missing() -> str | None:
    """Why a PostgreSQL cluster of the test's own cannot be made here, or None."""
    if _tool_dir() is None:
        return "no PostgreSQL server binaries in /usr/lib/postgresql/*/bin (package postgresql)"
    if os.getuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser: initdb refuses root"
    if os.getuid() == 0:
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no postgres user to run the server as"
    return None


class Postgres:
    """A PostgreSQL cluster of the test's own, on a free port, stopped and started at will."""

    def __init__(self) -> None:
        self.bin = _tool_dir()
        self.dir = Path(tempfile.mkdtemp(prefix="realize-faults-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self._as: list[str] = []
        if os.getuid() == 0:
            self._as = ["runuser", "-u", "postgres", "--"]
            shutil.chown(self.dir, "postgres", "postgres")
        self._run(
            "initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8",
            "--no-sync",
        )  # fmt: skip
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.dir}'\nmax_connections = 300\n"
                "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            )
        self.start()

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            timeout=120,
            cwd=self.dir,
        )

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@contextlib.contextmanager
def tmpfs(directory: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted at directory (made if missing), unmounted after."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(directory)],
        check=True,
        capture_output=True,
    )
    try:
        yield directory
    finally:
        for _ in range(20):
            result = subprocess.run(["umount", str(directory)], capture_output=True)
            if result.returncode == 0:
                break
            time.sleep(0.5)
        else:
            subprocess.run(["umount", "-l", str(directory)], capture_output=True)


def tmpfs_missing() -> str | None:
    """Why a tmpfs cannot be mounted here, or None."""
    if shutil.which("mount") is None:
        return "no mount command"
    probe = Path(tempfile.mkdtemp(prefix="realize-faults-tmpfs-"))
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(probe)], capture_output=True
        )
        if result.returncode != 0:
            return f"cannot mount a tmpfs: {result.stderr.decode().strip() or 'not root?'}"
        subprocess.run(["umount", str(probe)], capture_output=True)
        return None
    finally:
        probe.rmdir()


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize
