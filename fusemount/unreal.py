"""Unreal areas in the mount: their tree from the index, their content from the peers.

An Unreal area's files are known by their metadata only: the tree is read from the
database into memory (again whenever the area's history moves on), and a file's content is
fetched from a connected peer when read, a chunk at a time, each checked by its hash
before any byte of it is returned, then kept in a cache under REALIZE_HOME (a sparse file
per blob: fusemount.blobcache). Sequential reads fetch ahead, further as they go on; readers of
one chunk wait for one fetch. With no peer that can send a chunk, its read fails (EIO)
within FETCH_TIMEOUT, and the cached ranges still read.
"""

import contextlib
import errno
import logging
import math
import os
import secrets
import threading
import time
from bisect import bisect_right
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import blake3
import psycopg
import pyfuse3
import trio
from django.conf import settings
from django.db import close_old_connections, connection

from areas.files import MAX_SIZE as MAX_CHUNK
from areas.files import TEMP_PREFIX, blob_cache_directory, cached_share, chunk_hash
from areas.index import (
    BadData,
    chunk_list_from_wire,
    chunk_lists,
    chunk_window_from_wire,
    delete_unreal,
    put_emptied,
    put_realized,
)
from areas.models import AREAS_CHANNEL, HISTORY_CHANNEL, Area, Entry
from fusemount import threads
from fusemount.blobcache import BlobCache, remove_chunk_files
from peers.client import LinkFailed, Links, PeerdClient, PeerdUnavailable
from peers.models import LocalPeer, Peer
from peers.wire import DATA_OPS, ProtocolError, RemoteError

log = logging.getLogger("realize.mount")

FETCH_TIMEOUT = 4.0
# A read of an Unreal file gets its data, or EIO, within this many seconds, however many
# peers there are to ask and however slow they are.
READ_WITHIN = 4.5
# A read that failed makes the next through the same open file, this soon, fail at once:
# the kernel asks again right after a failed read ahead, and the reader must not wait twice.
FAILED_FOR = 1.0
# The cache's bound unless REALIZE_CACHE_MB says otherwise.
CACHE_MB = 10 * 1024
# Read-ahead: from this many bytes after the second sequential read, doubling to the most.
AHEAD_FIRST = 1024 * 1024
AHEAD_MOST = 16 * 1024 * 1024
# Chunks asked of a peer in one request (at most 128 KiB each: well under its limit).
FETCH_BATCH = 64
# A file's first reads, before its whole chunk list is here, ask for the chunks of at least
# this much around them.
WINDOW = 4 * 1024 * 1024
# Chunks kept in memory, the last read or fetched ahead: the kernel reads 128 KiB at a
# time, a chunk spans several reads, and what is fetched ahead is read soon.
MEMORY_BYTES = 64 * 1024 * 1024
# The connected peers, as peerd last said, are used this long without asking again on a
# read's way (the mount's warm loop asks every few seconds): peerd may answer slowly while
# busy, and the content comes over data links that do not go through it.
PEERS_STALE = 10.0
# A data link is used at least this often, seconds (Chunks.warm_links): under the age at
# which a link is no longer reused.
WARM_LINKS_EVERY = 20.0
# Data links kept warm per peer: a file's first read asks for its chunks' hashes and for
# its first bytes at once (Reader._window), each on a link of its own.
WARM_LINKS = 2
# Realizing or deleting a file waits this long at most for a scan or consensus of its area.
REALIZE_WAIT = 10.0


def cache_limit() -> int:
    """The chunk cache's bound in bytes: REALIZE_CACHE_MB (MiB), else CACHE_MB."""
    value = os.environ.get("REALIZE_CACHE_MB", "")
    try:
        megabytes = int(value) if value else CACHE_MB
    except ValueError:
        log.warning("REALIZE_CACHE_MB=%r is not a number: the cache holds %d MiB", value, CACHE_MB)
        megabytes = CACHE_MB
    return max(0, megabytes) * 1024 * 1024


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

    def drop(self, path: str) -> None:
        """The file is no longer Unreal here (realized, or deleted), before the tree is read
        again: gone from it, and each directory above left empty by it."""
        self.files.pop(path, None)
        while path:
            parent, _, name = path.rpartition("/")
            names = self.dirs.get(parent)
            if names is not None and name in names:
                names.remove(name)
            if parent == "" or self.dirs.get(parent):
                return
            self.dirs.pop(parent, None)
            path = parent

    def holds_unreal_under(self, directory: str) -> bool:
        prefix = directory + "/"
        return any(path.startswith(prefix) for path in self.files)


def load_tree(area_name: str) -> UnrealTree:
    """Read an Unreal area's tree (in a thread)."""
    close_old_connections()
    area = Area.objects.filter(name=area_name).first()
    tree = UnrealTree()
    if area is None:
        return tree
    tree.seq = area.history_seq
    # A file realized here is on the disk, and shown from there (areas.index.unreal).
    found = Entry.objects.filter(area=area, blob_hash__isnull=False, inode=0).values_list(
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


def put_realized_file(area_name: str, path: str, blob: bytes, staged: Path) -> None:
    """areas.index.put_realized for the mount (in a thread)."""
    close_old_connections()
    area = Area.objects.get(name=area_name)
    put_realized(area, path, blob, staged, REALIZE_WAIT)


def put_emptied_file(area_name: str, path: str, blob: bytes, mode: int) -> None:
    """areas.index.put_emptied for the mount (in a thread)."""
    close_old_connections()
    area = Area.objects.get(name=area_name)
    put_emptied(area, path, blob, mode, REALIZE_WAIT)


def delete_unreal_file(area_name: str, path: str, blob: bytes) -> None:
    """areas.index.delete_unreal for the mount (in a thread): this peer's own change."""
    close_old_connections()
    area = Area.objects.get(name=area_name)
    delete_unreal(area, path, blob, bytes(LocalPeer.get().public_key), REALIZE_WAIT)


def unreal_seqs() -> dict[str, int]:
    """Each Unreal area's history_seq: its tree is read again when it moves on."""
    close_old_connections()
    return dict(Area.objects.filter(mode=Area.Mode.UNREAL).values_list("name", "history_seq"))


class Notices:
    """Notices that an area's history moved on (areas.models.HISTORY_CHANNEL) or that the
    areas changed (AREAS_CHANNEL), on a database connection of its own (blocking: keep it
    to one thread)."""

    CHANNELS = frozenset({HISTORY_CHANNEL, AREAS_CHANNEL})
    # Django's own settings for its connections, not for this plain one.
    _DJANGO_ONLY = ("cursor_factory", "context", "prepare_threshold")

    def __init__(self) -> None:
        self._listening: psycopg.Connection | None = None

    def wait(self, seconds: float) -> frozenset[str]:
        """The channels of those that came within `seconds` (those queued meanwhile are
        taken with the first); empty if none did.

        Every channel on (re)connecting, since what happened while away is unknown; with
        the database away, none after `seconds`."""
        try:
            if self._listening is None:
                params = connection.get_connection_params()
                for name in self._DJANGO_ONLY:
                    params.pop(name, None)
                self._listening = psycopg.connect(**params, autocommit=True)
                for channel in sorted(self.CHANNELS):
                    self._listening.execute(f"LISTEN {channel}")
                return self.CHANNELS
            came = {n.channel for n in self._listening.notifies(timeout=seconds, stop_after=1)}
            if came:
                came |= {n.channel for n in self._listening.notifies(timeout=0)}
            return frozenset(came)
        except psycopg.Error:
            self.close()
            time.sleep(seconds)
            return frozenset()

    def close(self) -> None:
        if self._listening is not None:
            with contextlib.suppress(psycopg.Error):
                self._listening.close()
            self._listening = None


class Chunks:
    """The cache of Unreal content and the fetching of chunks from peers (blocking: call
    in threads)."""

    def __init__(self, home: Path | None = None, limit: int | None = None) -> None:
        blobs = blob_cache_directory(home or settings.REALIZE_HOME)
        remove_chunk_files(blobs.parent)
        self.cache = BlobCache(blobs, cache_limit() if limit is None else limit)
        self._lists: dict[bytes, list[tuple[bytes, int, int]]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()
        self._connected: list[str] = []
        self._peers_at = -PEERS_STALE
        self._links: dict[str, Links | None] = {}
        self._warmed: dict[str, float] = {}  # peer -> when its data link was last warmed
        self.fetched = 0  # chunks fetched from peers

    @property
    def size(self) -> int:
        """The bytes the cache holds."""
        return self.cache.size

    def opened(self, blob: bytes, by: int = 1) -> None:
        """A file of this blob was opened (or closed: by=-1): its content stays cached."""
        self.cache.opened(blob, by)

    def cached_many(
        self, blob: bytes, where: dict[bytes, tuple[int, int]]
    ) -> dict[bytes, memoryview]:
        """Of these chunks (`where`: each one's offset and length in the blob), those held."""
        at = {offset: h for h, (offset, _) in where.items()}
        held = self.cache.read(blob, list(where.values()), lambda o, d: chunk_hash(d) == at[o])
        return {at[offset]: data for offset, data in held.items()}

    def held_or_fetched(
        self, blob: bytes, where: dict[bytes, tuple[int, int]], deadline: float | None = None
    ) -> dict[bytes, bytes]:
        """These chunks (`where`: each one's offset and length in the blob) from the cache,
        else from a peer (fetch), FETCH_BATCH at a time. In one call, so a read makes one
        trip to a thread, not two: with a random read's one round trip to a peer, the
        second was a tenth of its time."""
        found = self.cached_many(blob, where)
        missing = [h for h in where if h not in found]
        for start in range(0, len(missing), FETCH_BATCH):
            found.update(self.fetch(missing[start : start + FETCH_BATCH], blob, where, deadline))
        return found

    def keep(self, blob: bytes, offset: int, data, pieces: list | None = None) -> None:
        """A checked chunk into the cache; or neighbouring ones, `pieces` (offset, length)."""
        self.cache.write(blob, offset, data, pieces)

    def cached_share(self, file: UnrealFile) -> float:
        """How much of the file is in the cache."""
        return cached_share(self.cache.held_bytes(file.blob), file.size)

    def known_list(self, blob: bytes) -> list[tuple[bytes, int, int]] | None:
        with self._lock:
            return self._lists.get(blob)

    def chunk_list(
        self, blob: bytes, size: int, deadline: float | None = None
    ) -> list[tuple[bytes, int, int]]:
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
            found = self._ask_list(blob, size, deadline)
        with self._lock:
            self._lists[blob] = found
        return found

    def chunk_window(
        self, blob: bytes, size: int, offset: int, length: int, deadline: float | None = None
    ) -> list[tuple[bytes, int, int]]:
        """The blob's chunks that hold [offset, offset + length), as chunk_list's items:
        the whole list where known here, else a run of it asked of a peer (much quicker
        than the whole of a large file's). The index is asked only when no peer answers:
        after a pause its pages may be off the disk's cache, a wait before the first byte
        (the chunks come from peers either way)."""
        known = self.known_list(blob)
        if known is not None:
            return known
        for peer in self.connected():
            args = {"hashes": [blob], "window": [offset, length]}
            try:
                answer = self._request(peer, "blobs", args, deadline)
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for chunks of %s: %s", peer, blob.hex()[:16], exc)
                continue
            wire = answer.get(blob) if isinstance(answer, dict) else None
            try:
                if isinstance(wire, list):  # a peer that sends whole lists only
                    found = [(c.hash, c.offset, c.length) for c in chunk_list_from_wire(wire, size)]
                    with self._lock:
                        self._lists[blob] = found
                    return found
                refs = chunk_window_from_wire(wire, size, offset, length)
            except BadData as exc:
                log.info("%s sent bad chunks for %s: %s", peer, blob.hex()[:16], exc)
                continue
            return [(c.hash, c.offset, c.length) for c in refs]
        close_old_connections()
        if chunk_lists([blob]).get(blob) is not None:
            return self.chunk_list(blob, size)  # this peer had the content: its index knows
        raise OSError(errno.EIO, "no connected peer knows this file's chunks")

    def _ask_list(
        self, blob: bytes, size: int, deadline: float | None
    ) -> list[tuple[bytes, int, int]]:
        for peer in self.connected():
            try:
                answer = self._request(peer, "blobs", {"hashes": [blob]}, deadline)
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for the chunks of %s: %s", peer, blob.hex()[:16], exc)
                continue
            wire = answer.get(blob) if isinstance(answer, dict) else None
            try:
                refs = chunk_list_from_wire(wire, size)
            except BadData as exc:
                log.info("%s sent a bad chunk list for %s: %s", peer, blob.hex()[:16], exc)
                continue
            return [(c.hash, c.offset, c.length) for c in refs]
        raise OSError(errno.EIO, "no connected peer knows this file's chunks")

    def fetch(
        self,
        wanted: list[bytes],
        blob: bytes,
        where: dict[bytes, tuple[int, int]],
        deadline: float | None = None,
    ) -> dict[bytes, bytes]:
        """These chunks of the blob (`where`: each one's offset and length in it) from a
        peer, each checked and kept in the cache; those no peer sent right by `deadline`,
        a time.monotonic(), are missing.

        Neighbouring chunks are asked for as ranges of the blob: the peer reads each in one
        go; what a peer could not send so is asked for by hash."""
        found = self._fetch_ranges(wanted, blob, where, deadline)
        for peer in self.connected():
            missing = [h for h in wanted if h not in found]
            if not missing:
                break
            try:
                answer = self._request(peer, "chunks", {"hashes": missing}, deadline)
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for %d chunks: %s", peer, len(missing), exc)
                continue
            if not isinstance(answer, list) or len(answer) != len(missing):
                continue
            for h, data in zip(missing, answer, strict=True):
                if isinstance(data, bytes | bytearray | memoryview):
                    data = bytes(data)
                    if chunk_hash(data) == h:
                        self.keep(blob, where[h][0], data)
                        found[h] = data
                        self.fetched += 1
                    else:
                        log.warning("%s sent a chunk whose hash does not match: discarded", peer)
        return found

    def _fetch_ranges(
        self, wanted: list[bytes], blob: bytes, where: dict, deadline: float | None
    ) -> dict[bytes, bytes]:
        runs: list[list[tuple[bytes, int, int]]] = []
        for h in sorted(dict.fromkeys(wanted), key=lambda h: where[h][0]):
            offset, length = where[h]
            last = runs[-1][-1] if runs else None
            if last is not None and last[1] + last[2] == offset:
                runs[-1].append((h, offset, length))
            else:
                runs.append([(h, offset, length)])
        ranges = [[blob, run[0][1], sum(n for _, _, n in run)] for run in runs]
        for peer in self.connected():
            try:
                answer = self._request(peer, "chunks", {"hashes": [], "ranges": ranges}, deadline)
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s for %d ranges: %s", peer, len(ranges), exc)
                continue
            if not isinstance(answer, list) or len(answer) != len(runs):
                continue
            found = {}
            for run, data in zip(runs, answer, strict=True):
                if isinstance(data, bytes | bytearray | memoryview):
                    found.update(self._accept(peer, blob, run, memoryview(data)))
                # else not there as indexed: asked for by hash next
            if found:
                return found
        return {}

    def _accept(self, peer: str, blob: bytes, run: list, view: memoryview) -> dict[bytes, bytes]:
        """Of a run of neighbouring chunks (hash, offset, length) as a peer sent them
        (`view` starts at the first), those that check out; kept in the cache."""
        base, good, found = run[0][1], [], {}
        for h, offset, length in run:
            piece = view[offset - base : offset - base + length]
            if len(piece) == length and chunk_hash(piece) == h:
                good.append((offset, length))
                found[h] = bytes(piece)
                self.fetched += 1
            else:
                log.warning("%s sent a range whose chunk does not match: discarded", peer)
        if len(good) == len(run):  # all of it, as it was sent: in one write
            self.keep(blob, base, view[: sum(n for _, n in good)], good)
        else:
            for offset, length in good:
                self.keep(blob, offset, view[offset - base : offset - base + length])
        return found

    def span(
        self, blob: bytes, start: int, length: int, deadline: float | None = None
    ) -> tuple[str, memoryview] | None:
        """Bytes [start, start + length) of the blob as the first connected peer sends
        them, unchecked (None if it does not): a file's first read asks for them while it
        learns which chunks they hold, and checks them then (accept_span)."""
        peers = self.connected()
        if not peers:
            return None
        args = {"hashes": [], "ranges": [[blob, start, length]]}
        try:
            answer = self._request(peers[0], "chunks", args, deadline)
        except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
            log.info("asking %s for a range of %s: %s", peers[0], blob.hex()[:16], exc)
            return None
        data = answer[0] if isinstance(answer, list) and len(answer) == 1 else None
        if isinstance(data, bytes | bytearray | memoryview) and len(data) == length:
            return peers[0], memoryview(data)
        return None

    def accept_span(
        self, peer: str, blob: bytes, listing: list, start: int, view: memoryview
    ) -> dict[bytes, bytes]:
        """The chunks of `listing` wholly inside a span (see span) that check out; kept."""
        end = start + len(view)
        run = [c for c in listing if c[1] >= start and c[1] + c[2] <= end]
        if not run:
            return {}
        return self._accept(peer, blob, run, view[run[0][1] - start :])

    def stage_blob(self, file: UnrealFile, full: Path) -> Path:
        """The file's whole content in a temporary file beside `full` (its directories made),
        every chunk and then the whole checked, with the file's mode and time, synced.
        OSError (EIO) when a chunk no peer sent right: nothing is left behind then."""
        listing = self.chunk_list(file.blob, file.size)
        full.parent.mkdir(parents=True, exist_ok=True)
        staged = full.with_name(f"{TEMP_PREFIX}{secrets.token_hex(8)}")
        whole = blake3.blake3()
        self.opened(file.blob)  # its chunks stay in the cache while it is written
        try:
            with open(staged, "wb") as out:
                for start in range(0, len(listing), FETCH_BATCH):
                    part = listing[start : start + FETCH_BATCH]
                    wanted = [h for h, _, _ in part]
                    where = {h: (offset, n) for h, offset, n in part}
                    have = self.held_or_fetched(file.blob, where)
                    for h in wanted:
                        data = have.get(h)
                        if data is None:
                            raise OSError(errno.EIO, "no connected peer sent a chunk right")
                        whole.update(data)
                        out.write(data)
                os.fchmod(out.fileno(), file.mode & 0o7777)
                out.flush()
                os.fsync(out.fileno())
            if whole.digest() != file.blob:
                raise OSError(errno.EIO, "the content does not match its version's hash")
            os.utime(staged, ns=(file.mtime_ns, file.mtime_ns))
        except BaseException:
            staged.unlink(missing_ok=True)
            raise
        finally:
            self.opened(file.blob, -1)
        return staged

    def holders(self, blob: bytes) -> tuple[list[str], list[str]]:
        """The connected peers, and those of them that hold this blob in their Real (each
        asked: what its history said once may be gone). peerd is asked which are
        connected now: someone asking wants to know."""
        peers, found = self.refresh_connected(), []
        for peer in peers:
            try:
                answer = self._request(peer, "holds", {"hashes": [blob]})
            except (OSError, PeerdUnavailable, ProtocolError, RemoteError, ValueError) as exc:
                log.info("asking %s whether it holds %s: %s", peer, blob.hex()[:16], exc)
                continue
            if isinstance(answer, list) and blob in answer:
                found.append(peer)
        return peers, found

    def warm_links(self) -> None:
        """WARM_LINKS data links to each connected peer that listens, dialled before a read
        needs them and used every WARM_LINKS_EVERY, often enough to be reused
        (peers.client.links.REUSE_WITHIN): a read that dials first waits 20-30 ms more for
        its first byte, the peer's thread for the link opening its database connection. A
        peer connected since the last call gets its links now. peerd is asked first which
        peers are connected: the answer that reads use."""
        now = time.monotonic()
        for peer in self.refresh_connected():
            if now - self._warmed.get(peer, -math.inf) < WARM_LINKS_EVERY:
                continue
            links = self._data_links(peer)
            if links is None or not links.usable:
                continue
            taken = []
            try:
                while len(taken) < WARM_LINKS:  # each its own, not one used in turn
                    taken.append(links.take())
                for link in taken:
                    link.sock.settimeout(FETCH_TIMEOUT)
                    next(link.pipeline("blobs", [{"hashes": []}], 1))
            except (OSError, LinkFailed, ProtocolError, RemoteError, ValueError) as exc:
                log.info("warming the data links to %s: %s", peer, exc)
            else:
                self._warmed[peer] = now
            finally:
                for link in taken:
                    links.give_back(link)

    def connected(self) -> list[str]:
        """The peers connected now, as peerd said at most PEERS_STALE ago (refreshed by
        refresh_connected). None connected is asked again each time: peers connect just
        after the mount starts."""
        with self._lock:
            if self._connected and time.monotonic() - self._peers_at < PEERS_STALE:
                return self._connected
        return self.refresh_connected()

    def refresh_connected(self) -> list[str]:
        """Ask peerd which peers are connected now."""
        now = time.monotonic()
        try:
            found = list(self._client().connected())
        except (OSError, PeerdUnavailable, ProtocolError, RemoteError):
            self._local.client = None
            found = []
        with self._lock:
            self._connected, self._peers_at = found, now
        return found

    def _client(self) -> PeerdClient:
        """This thread's connection to peerd (kept: a request is cheaper on it)."""
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = PeerdClient(timeout=FETCH_TIMEOUT, restart_wait=0)
        return client

    def _request(self, peer: str, op: str, args: dict, deadline: float | None = None):
        """A peer's answer within FETCH_TIMEOUT, and by `deadline` (TimeoutError if past).

        Reads of content go over a data link of the mount's own where the peer listens, as
        the worker's do (peers.client.links): relayed through peerd, they cost it a copy and
        a reframing each, and held back every uncached read."""
        timeout = FETCH_TIMEOUT
        if deadline is not None:
            timeout = min(timeout, deadline - time.monotonic())
            if timeout <= 0:
                raise TimeoutError("no time left for this read")
        links = self._data_links(peer) if op in DATA_OPS else None
        if links is not None and links.usable:
            try:
                link = links.take()
            except LinkFailed:
                with self._lock:
                    self._links.pop(peer, None)  # its address may have changed: read again
                self._peers_changed()
            else:
                try:
                    link.sock.settimeout(timeout)
                    return next(link.pipeline(op, [args], 1))
                except (OSError, ProtocolError):
                    self._peers_changed()
                    raise
                finally:
                    links.give_back(link)
        try:
            return self._client().request(peer, op, args, timeout=timeout)
        except BaseException:
            self._local.client = None  # closed by the failure: a new one next time
            self._peers_changed()
            raise

    def _peers_changed(self) -> None:
        """A peer could not be reached: the next call of connected() asks peerd again."""
        with self._lock:
            self._peers_at = -PEERS_STALE

    def _data_links(self, peer: str) -> Links | None:
        """The data links to a peer that listens (None for a deaf one)."""
        with self._lock:
            if peer in self._links:
                return self._links[peer]
        close_old_connections()
        found = Peer.objects.filter(name=peer).first()
        links = found.links(FETCH_TIMEOUT) if found is not None else None
        with self._lock:
            return self._links.setdefault(peer, links)


class Reader:
    """Reads of Unreal files for the mount (in its event loop). Chunks come from memory
    (the last ones read or fetched ahead), else from the cache, else from a peer (in
    threads, a batch at a time), each fetched once however many readers wait for it."""

    def __init__(self, chunks: Chunks) -> None:
        self.chunks = chunks
        self._flight: dict[bytes, trio.Event] = {}
        # Per blob: a run of its chunk list, while its whole list is being fetched.
        self._windows: dict[bytes, list[tuple[bytes, int, int]]] = {}
        self._listing: set[bytes] = set()
        # Per blob: the span of a first read being fetched (see _window), set when it is in.
        self._spans: dict[bytes, trio.Event] = {}
        self._memory: OrderedDict[bytes, bytes] = OrderedDict()
        self._memory_bytes = 0
        self._reply = bytearray()  # each read's bytes, until replied (_piece_together)
        self.nursery: trio.Nursery | None = None

    async def read(self, handle: "OpenUnreal", offset: int, size: int) -> bytes | memoryview:
        file = handle.file
        if offset >= file.size or size <= 0:
            return b""
        if time.monotonic() - handle.failed_at < FAILED_FOR:
            raise pyfuse3.FUSEError(errno.EIO)
        try:
            return await self._read(handle, offset, size)
        except pyfuse3.FUSEError:
            handle.failed_at = time.monotonic()
            raise

    async def _read(self, handle: "OpenUnreal", offset: int, size: int) -> memoryview:
        file = handle.file
        end = min(file.size, offset + size)
        deadline = time.monotonic() + READ_WITHIN
        listing = self.chunks.known_list(file.blob)
        if listing is None:
            listing = await self._window(file, offset, end, deadline)
        if handle.listing is not listing:
            handle.listing, handle.starts = listing, [o for _, o, _ in listing]
        i = bisect_right(handle.starts, offset) - 1
        needed = []
        while i < len(listing) and listing[i][1] < end:
            needed.append(listing[i])
            i += 1
        ahead = self._ahead(handle, listing, i, offset, end)
        where = {h: (o, n) for h, o, n in needed}
        try:
            parts = await self._get(list(where), file.blob, where, deadline)
        finally:
            # What is read ahead is asked for once this read has its own chunks: asked
            # together, the peer often sent the read-ahead first, and the first byte
            # waited for it.
            for batch in ahead:
                self.nursery.start_soon(self._quietly, batch, file.blob)
        if file.blob in self._windows and file.blob not in self._listing and self.nursery:
            # The whole list next, not before: its parsing would hold back this read.
            self._listing.add(file.blob)
            self.nursery.start_soon(self._whole_list, file)
        if len(self._reply) < end - offset:
            self._reply = bytearray(end - offset)
        return _piece_together(needed, parts, offset, end, self._reply)

    async def _window(
        self, file: UnrealFile, offset: int, end: int, deadline: float
    ) -> list[tuple[bytes, int, int]]:
        """The chunks around [offset, end) while the file's whole list is not here (asked
        for after the read): the first byte of a large file waits for a few of them only."""
        window = self._windows.get(file.blob)
        if window and window[0][1] <= offset and window[-1][1] + window[-1][2] >= end:
            return window
        # The bytes themselves are asked for at the same time, as a span wide enough to
        # hold the chunks around them whatever their bounds: the first byte waits for the
        # slower of the two answers, not for both in turn. One span of a file at a time;
        # other readers wait for it, so that no chunk is fetched twice.
        spanning = self._spans.get(file.blob)
        mine = spanning is None and self.nursery is not None
        if mine:
            spanning = self._spans[file.blob] = trio.Event()
            start = max(0, offset - MAX_CHUNK)
            length = min(file.size, end + MAX_CHUNK) - start
            span: list = []
            spanned = trio.Event()

            async def ask_span() -> None:
                try:
                    span.append(
                        await threads.run(self.chunks.span, file.blob, start, length, deadline)
                    )
                finally:
                    spanned.set()

            self.nursery.start_soon(ask_span)
        try:
            try:
                window = await threads.run(
                    self.chunks.chunk_window, file.blob, file.size, offset,
                    max(end - offset, WINDOW), deadline,
                )  # fmt: skip
            except OSError as exc:
                raise pyfuse3.FUSEError(exc.errno or errno.EIO) from None
            if self.chunks.known_list(file.blob) is None:
                self._windows[file.blob] = window
            if mine:
                with trio.move_on_after(max(0.0, deadline - time.monotonic())):
                    await spanned.wait()
                if span and span[0] is not None:
                    found = await threads.run(
                        self.chunks.accept_span, span[0][0], file.blob, window, start, span[0][1]
                    )
                    for h, data in found.items():
                        self._keep(h, data)
        finally:
            if mine:
                del self._spans[file.blob]
                spanning.set()
        if not mine and spanning is not None:
            with trio.move_on_after(max(0.0, deadline - time.monotonic())):
                await spanning.wait()
        return window

    async def _whole_list(self, file: UnrealFile) -> None:
        try:
            await threads.run(self.chunks.chunk_list, file.blob, file.size)
        except OSError as exc:
            log.info("the chunk list of %s: %s", file.blob.hex()[:16], exc)
        finally:
            self._listing.discard(file.blob)
            self._windows.pop(file.blob, None)

    def _ahead(self, handle, listing, after: int, offset: int, end: int) -> list[dict]:
        """A read that follows the last one: what to fetch next, further each time, as
        large batches (once half of what was asked ahead is read)."""
        if offset == handle.next_offset:
            handle.ahead = min(AHEAD_MOST, max(AHEAD_FIRST, handle.ahead * 2))
        else:
            handle.ahead, handle.asked_until = 0, 0
        handle.next_offset = end
        if not handle.ahead or self.nursery is None:
            return []
        if handle.asked_until - end >= handle.ahead // 2:
            return []
        i = max(after, bisect_right(handle.starts, handle.asked_until) - 1)
        wanted, until = [], end + handle.ahead
        while i < len(listing) and listing[i][1] < until:
            h, chunk_offset, length = listing[i]
            if chunk_offset >= handle.asked_until:
                wanted.append((h, (chunk_offset, length)))
            handle.asked_until = max(handle.asked_until, chunk_offset + length)
            i += 1
        return [dict(wanted[n : n + FETCH_BATCH]) for n in range(0, len(wanted), FETCH_BATCH)]

    async def _quietly(self, where: dict[bytes, tuple[int, int]], blob: bytes) -> None:
        try:
            await self._get(list(where), blob, where)
        except pyfuse3.FUSEError:
            pass  # read ahead: the reader asks again, and learns then
        except Exception:
            log.exception("reading ahead failed")

    async def _get(
        self, wanted: list[bytes], blob: bytes, where: dict, deadline: float | None = None
    ) -> dict[bytes, bytes]:
        """The chunks (`where`: each one's offset and length in the blob, to ask for
        neighbours as ranges of it); EIO for one no peer sent right, by `deadline`
        (time.monotonic()) if given."""
        found: dict[bytes, bytes] = {}
        for h in wanted:
            data = self._memory.get(h)
            if data is not None:
                self._memory.move_to_end(h)
                found[h] = data
        todo = [h for h in dict.fromkeys(wanted) if h not in found]
        if not todo:
            return found
        mine = [h for h in todo if h not in self._flight]
        for h in mine:
            self._flight[h] = trio.Event()
        try:
            if mine:
                found.update(
                    await threads.run(
                        self.chunks.held_or_fetched, blob, {h: where[h] for h in mine}, deadline
                    )
                )
                for h in mine:
                    if h in found:
                        self._keep(h, found[h])
        finally:
            for h in mine:
                self._flight.pop(h).set()  # set by this task alone
        for h in todo:
            if h in found:
                continue
            event = self._flight.get(h)
            if event is not None:  # fetched by another read, or ahead: waited for in time
                left = math.inf if deadline is None else deadline - time.monotonic()
                with trio.move_on_after(max(0.0, left)):
                    await event.wait()
            data = self._memory.get(h)
            if data is None:
                held = await threads.run(self.chunks.cached_many, blob, {h: where[h]})
                data = held.get(h)
            if data is None:
                raise pyfuse3.FUSEError(errno.EIO)  # no peer could send it right
            found[h] = data
        return found

    def _keep(self, h: bytes, data: bytes) -> None:
        if h in self._memory:
            return
        self._memory[h] = data
        self._memory_bytes += len(data)
        while self._memory_bytes > MEMORY_BYTES:
            _, old = self._memory.popitem(last=False)
            self._memory_bytes -= len(old)


def _piece_together(needed: list, parts: dict, offset: int, end: int, into: bytearray):
    """[offset, end) out of the chunks that hold it (`needed`, in order), copied once into
    `into` (at least end - offset long): a view of it.

    A join made a new megabyte for each read. One buffer serves every read: pyfuse3 writes
    the reply from it as soon as the read returns, before the event loop runs another
    request."""
    view, at = memoryview(into), 0
    for h, start, length in needed:
        piece = memoryview(parts[h])[max(offset, start) - start : min(end, start + length) - start]
        view[at : at + len(piece)] = piece
        at += len(piece)
    return view[:at]


@dataclass
class OpenUnreal:
    file: UnrealFile
    next_offset: int = 0
    ahead: int = 0
    asked_until: int = 0  # read ahead up to here
    listing: list | None = None  # the chunk list (or a run of it) its reads go by
    starts: list[int] | None = None  # where each of its chunks starts
    failed_at: float = -math.inf  # when a read through it last failed
