"""Unreal areas in the mount: their tree from the index, their content from the peers.

An Unreal area's files are known by their metadata only: the tree is read from the
database into memory (again whenever the area's history moves on), and a file's content is
fetched from a connected peer when read, a chunk at a time, each checked by its hash
before any byte of it is returned, then kept in a cache under REALIZE_HOME (a file per
chunk, named by its hash). Sequential reads fetch ahead, further as they go on; readers of
one chunk wait for one fetch. With no peer that can send a chunk, its read fails (EIO)
within FETCH_TIMEOUT, and the cached ranges still read.
"""

import errno
import logging
import os
import secrets
import threading
from bisect import bisect_right
from dataclasses import dataclass, field
from pathlib import Path

import pyfuse3
import trio
from django.conf import settings
from django.db import close_old_connections

from areas.files import chunk_hash
from areas.index import chunk_lists
from areas.models import Area, Entry
from peers.client import PeerdClient, PeerdUnavailable
from peers.wire import ProtocolError, RemoteError

log = logging.getLogger("realize.mount")

FETCH_TIMEOUT = 4.0
# Read-ahead: from this many bytes after the second sequential read, doubling to the most.
AHEAD_FIRST = 1024 * 1024
AHEAD_MOST = 16 * 1024 * 1024
# Chunks asked of a peer in one request.
FETCH_BATCH = 16


@dataclass
class UnrealFile:
    blob: bytes
    size: int
    mtime_ns: int
    mode: int


@dataclass
class UnrealTree:
    """An Unreal area's files and directories, by path ("" is the area)."""

    seq: int = -1  # the area's history_seq when read
    files: dict[str, UnrealFile] = field(default_factory=dict)
    dirs: dict[str, list[str]] = field(default_factory=lambda: {"": []})


def load_tree(area_name: str) -> UnrealTree:
    """Read an Unreal area's tree (in a thread)."""
    close_old_connections()
    area = Area.objects.filter(name=area_name).first()
    tree = UnrealTree()
    if area is None:
        return tree
    tree.seq = area.history_seq
    found = Entry.objects.filter(area=area, blob_hash__isnull=False).values_list(
        "path", "blob_hash", "size", "mtime_ns", "mode"
    )
    children: dict[str, set[str]] = {"": set()}
    for path, blob, size, mtime_ns, mode in found.iterator(chunk_size=5000):
        tree.files[path] = UnrealFile(bytes(blob), size, mtime_ns, mode)
        parent, _, name = path.rpartition("/")
        children.setdefault(parent, set()).add(name)
        while parent:  # every directory above it
            up, _, dirname = parent.rpartition("/")
            children.setdefault(up, set()).add(dirname)
            children.setdefault(parent, set())
            parent = up
    tree.dirs = {d: sorted(names) for d, names in children.items()}
    return tree


def unreal_seqs() -> dict[str, int]:
    """Each Unreal area's history_seq: its tree is read again when it moves on."""
    close_old_connections()
    return dict(Area.objects.filter(mode=Area.Mode.UNREAL).values_list("name", "history_seq"))


class Chunks:
    """The chunk cache and the fetching of chunks from peers (blocking: call in threads)."""

    def __init__(self, home: Path | None = None) -> None:
        self.root = (home or settings.REALIZE_HOME) / "cache" / "chunks"
        self.root.mkdir(parents=True, exist_ok=True)
        self._lists: dict[bytes, list[tuple[bytes, int, int]]] = {}
        self._lock = threading.Lock()
        self.fetched = 0  # chunks fetched from peers (for tests and status)

    def path(self, h: bytes) -> Path:
        name = h.hex()
        return self.root / name[:2] / name

    def cached(self, h: bytes) -> bytes | None:
        try:
            return self.path(h).read_bytes()
        except FileNotFoundError:
            return None

    def keep(self, h: bytes, data: bytes) -> None:
        """Write a checked chunk into the cache, whole or not at all."""
        target = self.path(h)
        target.parent.mkdir(exist_ok=True)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)

    def cached_share(self, file: UnrealFile) -> float:
        """How much of the file is in the cache (0 while its chunks are not known here)."""
        if file.size == 0:
            return 1.0
        with self._lock:
            listing = self._lists.get(file.blob)
        if listing is None:
            return 0.0
        return sum(n for h, _, n in listing if self.path(h).exists()) / file.size

    def chunk_list(self, blob: bytes, size: int) -> list[tuple[bytes, int, int]]:
        """The blob's chunks as (hash, offset, length): from the index, or asked of peers."""
        with self._lock:
            known = self._lists.get(blob)
        if known is not None:
            return known
        close_old_connections()
        local = chunk_lists([blob]).get(blob)
        if local is not None:
            found = [(c.hash, c.offset, c.length) for c in local]
        else:
            found = self._ask_list(blob, size)
        with self._lock:
            self._lists[blob] = found
        return found

    def _ask_list(self, blob: bytes, size: int) -> list[tuple[bytes, int, int]]:
        for peer in self._peers():
            try:
                answer = self._request(peer, "blobs", {"hashes": [blob]})
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for the chunks of %s: %s", peer, blob.hex()[:16], exc)
                continue
            wire = answer.get(blob) if isinstance(answer, dict) else None
            parsed = _parse_list(wire, size)
            if parsed is not None:
                return parsed
        raise OSError(errno.EIO, "no connected peer knows this file's chunks")

    def fetch(self, wanted: list[bytes]) -> dict[bytes, bytes]:
        """These chunks from a peer, each checked (those no peer sent right are missing)."""
        found: dict[bytes, bytes] = {}
        for peer in self._peers():
            missing = [h for h in wanted if h not in found]
            if not missing:
                break
            try:
                answer = self._request(peer, "chunks", {"hashes": missing})
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for %d chunks: %s", peer, len(missing), exc)
                continue
            if not isinstance(answer, list) or len(answer) != len(missing):
                continue
            for h, data in zip(missing, answer, strict=True):
                if isinstance(data, bytes | bytearray | memoryview):
                    data = bytes(data)
                    if chunk_hash(data) == h:
                        self.keep(h, data)
                        found[h] = data
                        self.fetched += 1
                    else:
                        log.warning("%s sent a chunk whose hash does not match: discarded", peer)
        return found

    def _peers(self) -> list[str]:
        try:
            with PeerdClient(timeout=FETCH_TIMEOUT, restart_wait=0) as client:
                return list(client.connected())
        except (OSError, PeerdUnavailable, ProtocolError, RemoteError):
            return []

    def _request(self, peer: str, op: str, args: dict):
        with PeerdClient(timeout=FETCH_TIMEOUT, restart_wait=0) as client:
            return client.request(peer, op, args)


def _parse_list(wire, size: int) -> list[tuple[bytes, int, int]] | None:
    if not isinstance(wire, list):
        return None
    found, offset = [], 0
    for item in wire:
        if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], bytes)):
            return None
        h, length = item
        if len(h) != 32 or type(length) is not int or length <= 0:
            return None
        found.append((h, offset, length))
        offset += length
    return found if offset == size else None


class Reader:
    """Reads of Unreal files for the mount (in its event loop): cached chunks at once, the
    others fetched (in threads), each once however many readers wait for it."""

    def __init__(self, chunks: Chunks) -> None:
        self.chunks = chunks
        self._flight: dict[bytes, trio.Event] = {}
        # Chunks fetched into the cache by this mount: a reader that missed one in the
        # cache while it was being fetched reads it there, rather than fetching it again.
        self._have: set[bytes] = set()
        self.nursery: trio.Nursery | None = None

    async def read(self, handle: "OpenUnreal", offset: int, size: int) -> bytes:
        file = handle.file
        if offset >= file.size or size <= 0:
            return b""
        end = min(file.size, offset + size)
        listing = await self._list(file)
        starts = [o for _, o, _ in listing]
        first = bisect_right(starts, offset) - 1
        needed = []
        i = first
        while i < len(listing) and listing[i][1] < end:
            needed.append(listing[i])
            i += 1
        self._ahead(handle, listing, i, offset, end)
        parts = await self._get(needed)
        data = b"".join(parts[h] for h, _, _ in needed)
        base = needed[0][1]
        return data[offset - base : end - base]

    async def _list(self, file: UnrealFile) -> list[tuple[bytes, int, int]]:
        try:
            return await trio.to_thread.run_sync(self.chunks.chunk_list, file.blob, file.size)
        except OSError as exc:
            raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None

    def _ahead(self, handle, listing, after: int, offset: int, end: int) -> None:
        """A read that follows the last one: fetch what comes next, further each time."""
        if offset == handle.next_offset:
            handle.ahead = min(AHEAD_MOST, max(AHEAD_FIRST, handle.ahead * 2))
        else:
            handle.ahead = 0
        handle.next_offset = end
        if not handle.ahead or self.nursery is None:
            return
        wanted, total, i = [], 0, after
        while i < len(listing) and total < handle.ahead:
            h, _, length = listing[i]
            if h not in self._flight and h not in handle.asked:
                wanted.append(listing[i])
                handle.asked.add(h)
            total += length
            i += 1
        for start in range(0, len(wanted), FETCH_BATCH):
            batch = wanted[start : start + FETCH_BATCH]
            self.nursery.start_soon(self._quietly, batch)

    async def _quietly(self, batch) -> None:
        try:
            await self._get(batch)
        except pyfuse3.FUSEError:
            pass  # read ahead: the reader asks again, and learns then
        except Exception:
            log.exception("reading ahead failed")

    async def _get(self, needed: list[tuple[bytes, int, int]]) -> dict[bytes, bytes]:
        found: dict[bytes, bytes] = {}
        mine, theirs = [], []
        for h, _, _ in needed:
            if h in found:
                continue
            if h in self._flight:
                theirs.append(h)
                continue
            data = await trio.to_thread.run_sync(self.chunks.cached, h)
            if data is not None:
                found[h] = data
            elif h in self._flight or h in self._have:  # fetched by another reader meanwhile
                theirs.append(h)
            else:
                self._flight[h] = trio.Event()
                mine.append(h)
        if mine:
            try:
                got = {}
                for start in range(0, len(mine), FETCH_BATCH):
                    got.update(
                        await trio.to_thread.run_sync(
                            self.chunks.fetch, mine[start : start + FETCH_BATCH]
                        )
                    )
            finally:
                for h in mine:
                    self._flight.pop(h).set()  # set by this task alone
            found.update(got)
            self._have.update(got)
            if any(h not in got for h in mine):
                raise pyfuse3.FUSEError(errno.EIO)
        for h in theirs:
            event = self._flight.get(h)
            if event is not None:
                await event.wait()
            data = await trio.to_thread.run_sync(self.chunks.cached, h)
            if data is None:
                raise pyfuse3.FUSEError(errno.EIO)
            found[h] = data
        return found


@dataclass
class OpenUnreal:
    file: UnrealFile
    next_offset: int = 0
    ahead: int = 0
    asked: set[bytes] = field(default_factory=set)  # chunks it read ahead already
