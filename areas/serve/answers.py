"""What this peer answers to other peers about its areas (called by peerd)."""

import asyncio
import logging
import threading
import time
from collections import OrderedDict

from django.db import transaction
from django.utils import timezone

from areas.index import (
    AreaBusy,
    blob_files,
    chunk_list_to_wire,
    chunk_lists,
    chunk_window,
    chunk_window_to_wire,
    entry_to_wire,
    event_row_to_wire,
    held_blobs,
    history,
    index_lock_within,
    local_chunks,
    read_local_chunks,
    read_ranges,
    rows,
    scan_area,
)
from areas.models import Area, Entry, PeerArea
from areas.pull import check_keys, consensus_report, diff, pull_for_peer
from areas.watch import area_states
from peers.daemon import Connection, ConnectionRemote, db, slow, waiting
from peers.models import LocalPeer, Peer
from peers.wire import BufferPool, Parts

log = logging.getLogger(__name__)
HISTORY_LIMIT = 5000
MAX_HASHES = 5000
MAX_CHUNK_BYTES = 12 * 1024 * 1024
# A `history` answer with nothing new waits at most this long for a running scan's next batch.
SCAN_WAIT = 5.0
# A scan a peer asks for waits this long at most for the area (see PeerScan._scan).
PEER_SCAN_WAIT = 5.0
# Scans peers asked for (`begin`), by area id, until a `history` answer sees them over.
_scans: dict[int, "PeerScan"] = {}


def _peer(key: bytes) -> Peer:
    peer = Peer.objects.by_key(key)
    if peer is None:
        raise PermissionError("not a member of this household")
    return peer


def _member(key: bytes) -> None:
    """Raise PermissionError unless the key is a household member's.

    Asked at every chunk request, so a member checked within MEMBER_CHECK_EVERY is trusted;
    peerd drops a removed peer's connections within that time."""
    now = time.monotonic()
    if now - _members_checked.get(key, -MEMBER_CHECK_EVERY) < MEMBER_CHECK_EVERY:
        return
    if Peer.objects.by_key(key) is None:
        raise PermissionError("not a member of this household")
    _members_checked[key] = now


MEMBER_CHECK_EVERY = 2.0
_members_checked: dict[bytes, float] = {}

# Where each blob asked for by range lies (blob_files) is kept this long, for this many
# blobs: a random read of an Unreal file on a peer asks for one range at a time, and the
# query was a quarter of its time. A file changed since it was indexed is not read anyway
# (read_ranges), so what is kept can only be out of date for a file moved or an area
# removed meanwhile: the asker then asks by hash.
FILES_KEPT_FOR = 2.0
FILES_KEPT_MOST = 4096
_files_kept: OrderedDict[bytes, tuple[float, tuple[str, tuple]]] = OrderedDict()
_files_lock = threading.Lock()


def _area(name) -> Area:
    if not isinstance(name, str):
        raise ValueError("bad area name")
    area = Area.objects.filter(name=name).first()
    if area is None:
        raise LookupError(f"no area named {name!r} here")
    return area


def _shared(peer: Peer, area: Area) -> PeerArea:
    """The peer's cursors in the area; LookupError if the area is kept from it."""
    shared, _ = PeerArea.objects.get_or_create(peer=peer, area=area)
    if shared.excluded:
        raise LookupError(f"area {area.name} is not shared with {peer.name} here")
    return shared


def area_names(key: bytes) -> list[str]:
    """The areas shared here with the asker: not one paused, nor one kept from it."""
    return list(Area.objects.shared_with(_peer(key)).values_list("name", flat=True))


def area_states_for(key: bytes) -> dict:
    """What a connecting peer asks to know which runs to start with us (areas.watch.catchup)."""
    return area_states(_peer(key))


def _begin(key: bytes, name) -> int:
    peer, area = _peer(key), _area(name)
    if area.paused:
        raise LookupError(f"area {area.name} is paused here")
    _shared(peer, area)
    return area.pk


class PeerScan:
    """A scan a peer asked for (`begin`), run in peerd's background.

    Each committed batch is announced to the `history` answers waiting for it."""

    def __init__(self, area_id: int, previous: "PeerScan | None"):
        self.area_id = area_id
        self.batches = 0
        self._changed = asyncio.Event()
        self._loop = asyncio.get_running_loop()
        self.task = asyncio.ensure_future(self._run(previous))
        self.task.add_done_callback(lambda _: self._changed.set())

    async def _run(self, previous: "PeerScan | None") -> None:
        if previous is not None:
            # One already running may have walked past the changes this peer wants.
            await asyncio.wait([previous.task])
        await slow(self._scan)

    def _scan(self) -> None:
        """Skipped if the area stays busy: a pull of ours may hold it, waiting on this very
        peer's history, which would wait on this scan (both sides' consensus at once)."""
        area = Area.objects.get(pk=self.area_id)
        try:
            with index_lock_within(area.pk, PEER_SCAN_WAIT):
                scan_area(area, bytes(LocalPeer.get().public_key), announce=self._announce)
        except AreaBusy:
            log.info("area %s busy: a peer gets its history unscanned", area.name)

    def _announce(self) -> None:  # in the scan's thread

        self._loop.call_soon_threadsafe(self._batch_done)

    def _batch_done(self) -> None:
        self.batches += 1
        self._changed.set()

    @property
    def running(self) -> bool:
        return not self.task.done()

    def failure(self) -> BaseException | None:
        if self.task.done() and not self.task.cancelled():
            return self.task.exception()
        return None

    async def wait_past(self, seen: int, timeout: float) -> None:
        """Until a batch after the `seen`-th is committed, or the scan is over."""
        try:
            async with asyncio.timeout(timeout):
                while self.batches <= seen and self.running:
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass


async def begin(key: bytes, name) -> dict:
    """A peer starts a consensus: scan our area in the background, committing in batches.

    The peer pulls batches as they come; `history` answers say "scanning" until it is over."""
    area_id = await db(_begin, key, name)
    _scans[area_id] = PeerScan(area_id, _scans.get(area_id))
    return {"scanning": True}


async def history_answer(key: bytes, name, since, limit) -> dict:
    """Our history since a cursor.

    While a peer's scan runs, an answer with nothing new waits for its next batch."""
    area_id = await db(_area_id, key, name)
    while True:
        scan = _scans.get(area_id)
        if scan is not None and not scan.running:
            del _scans[area_id]  # over: its batches are all committed (and read below)
            if scan.failure() is not None:
                raise RuntimeError(f"scanning the area failed: {scan.failure()}")
        scanning = scan is not None and scan.running
        seen = scan.batches if scanning else 0
        answer = await db(history_since, key, name, since, limit)
        answer["scanning"] = scanning
        if not scanning or answer["events"] or answer["next"] != since or answer["snapshot"]:
            return answer
        await scan.wait_past(seen, SCAN_WAIT)


def _area_id(key: bytes, name) -> int:
    _peer(key)
    return _area(name).pk


def history_since(key: bytes, name: str, since, limit) -> dict:
    peer, area = _peer(key), _area(name)
    if not isinstance(since, int) or since < 0:
        raise ValueError("bad cursor")
    limit = min(int(limit or HISTORY_LIMIT), HISTORY_LIMIT)
    _shared(peer, area)  # known from now on: history is trimmed only once it has applied it
    head = Area.objects.values_list("history_seq", flat=True).get(pk=area.pk)
    if since < history.floor(area) or since > head:
        # Part of the history the peer needs is trimmed: send the whole state instead.
        with transaction.atomic():
            head = Area.objects.values_list("history_seq", flat=True).get(pk=area.pk)
            # Files and tombstones, each with its version.
            entries = Entry.objects.filter(area=area).exclude(version=b"").order_by("path")
            events = [entry_to_wire(e, head) for e in entries]
        return {"events": events, "next": head, "more": False, "snapshot": True}
    # Asking for a page acknowledges nothing: the asker acks what it has applied (`ack`).
    # Rows, not model objects: a page is thousands of events. The asker's own changes are
    # not sent back, so a page that is not full ends at the head read above.
    found = rows(_EVENTS, [area.pk, since, key, limit])
    events = [event_row_to_wire(row) for row in found]
    more = len(found) == limit
    last = found[-1][0] if found else since
    following = last if more else max(last, head)
    return {"events": events, "next": following, "more": more, "snapshot": False}


_EVENTS = (
    "SELECT seq, kind, path, old_path, blob_hash, base_hash, size, mtime_ns, mode, origin,"
    " origin_seq, version, old_version, base_version, stamp, old_stamp, moved"
    " FROM areas_historyevent"
    " WHERE area_id = %s AND seq > %s AND origin <> %s ORDER BY seq LIMIT %s"
)


def ack(key: bytes, name: str, seq) -> dict:
    peer, area = _peer(key), _area(name)
    if not isinstance(seq, int) or seq < 0:
        raise ValueError("bad sequence number")
    _ack(_shared(peer, area), area, seq)
    return {}


def _ack(shared: PeerArea, area: Area, seq: int) -> None:
    if seq > shared.acked_seq:
        PeerArea.objects.filter(pk=shared.pk).update(acked_seq=seq, last_seen=timezone.now())
        history.trim(area)


def blobs(key: bytes, hashes, bases=None, window=None) -> dict:
    """Chunk lists of blobs, each against its base's list if the asker has one (`bases`).

    With a `window` ([offset, length]), of the first blob only the run of its list that
    holds that range (chunk_window_to_wire): a mount's first read of a large file."""
    _member(key)
    hashes = _hash_list(hashes)
    if window is not None:
        offset, length = _window(window)
        found = chunk_window(hashes[0], offset, length) if hashes else None
        return {} if found is None else {hashes[0]: chunk_window_to_wire(found)}
    bases = bases if isinstance(bases, dict) else {}
    wanted_bases = [b for h, b in bases.items() if h in hashes and isinstance(b, bytes)]
    lists = chunk_lists(hashes + _hash_list(wanted_bases))
    return {
        h: chunk_list_to_wire(lists[h], lists.get(bases.get(h)) if h in bases else None)
        for h in hashes
        if h in lists
    }


def _window(window) -> tuple[int, int]:
    if (
        not isinstance(window, list)
        or len(window) != 2
        or not all(isinstance(n, int) and 0 <= n < 1 << 62 for n in window)
    ):
        raise ValueError("a window is [offset, length]")
    return window[0], window[1]


# Per path, its last change past the cursor: a path to change, and what its content weighs.
_LATEST = """
SELECT DISTINCT ON (path) path, kind, blob_hash, size FROM areas_historyevent
WHERE area_id = %s AND seq > %s AND origin <> %s ORDER BY path, seq DESC
"""
_NEEDS = f"""
SELECT count(*), coalesce(sum(size) FILTER (WHERE blob_hash IS NOT NULL), 0)
FROM ({_LATEST}) AS latest
"""
# The most paths a `needs` answer lists.
NEEDS_LISTED = 200


def needs(key: bytes, name, since, listed=0) -> dict:
    """What the asking peer still has to take of this area's history past its cursor: the
    paths changed since (items) and the bytes of their content, as Syncthing's completion
    counts them; with `listed`, the first so many of them by name ([path, kind, size]).
    Its own changes, which come back through us, are left out."""
    peer, area = _peer(key), _area(name)
    if not isinstance(since, int) or since < 0:
        raise ValueError("a cursor is a number")
    if not isinstance(listed, int) or not 0 <= listed <= NEEDS_LISTED:
        raise ValueError(f"list 0 to {NEEDS_LISTED} paths")
    _shared(peer, area)
    asked = [area.pk, since, bytes(peer.public_key)]
    items, size = rows(_NEEDS, asked)[0]
    answer = {"items": items, "bytes": int(size)}
    if listed:
        found = rows(_LATEST + " LIMIT %s", [*asked, listed])
        answer["paths"] = [[path, kind, int(size)] for path, kind, _, size in found]
    return answer


def holds(key: bytes, hashes) -> list[bytes]:
    """Which of the blobs this peer holds in its Real (`user.realize.where` on a mount)."""
    _member(key)
    return held_blobs(_hash_list(hashes))


def chunks(key: bytes, hashes, buffers: BufferPool | None = None, ranges=None) -> Parts:
    """Chunk contents read from our Real files, checked; None for one we cannot give.

    Sent after the answer's message, not inside it (peers.wire.Parts).

    `ranges` ([blob, offset, length] each) are read from files still as indexed: one read per
    range, None where no such file holds it (the asker checks every chunk). A range with a
    signature ([blob, offset, length, keys]) is sent as a patch (areas.pull.patches)."""
    _member(key)
    if ranges is not None:
        ranges, signatures = _range_list(ranges)
        found = read_ranges(ranges, _blob_files({blob for blob, _, _ in ranges}), buffers)
        for i, keys in signatures.items():
            if found[i] is not None:
                found[i] = diff(found[i], keys)
        return Parts(found)
    hashes = _hash_list(hashes)
    where = local_chunks(set(hashes))
    if sum(where[h][2] for h in hashes if h in where) > MAX_CHUNK_BYTES:
        raise ValueError("too many chunk bytes asked at once")
    found = read_local_chunks(hashes, where, buffers)
    return Parts(found.get(h) for h in hashes)


def _blob_files(blobs: set[bytes]) -> dict[bytes, tuple[str, tuple]]:
    """blob_files, from what was found within FILES_KEPT_FOR where it can be."""
    now, found = time.monotonic(), {}
    with _files_lock:
        for blob in blobs:
            kept = _files_kept.get(blob)
            if kept is not None and now - kept[0] < FILES_KEPT_FOR:
                found[blob] = kept[1]
    missing = blobs - found.keys()
    fresh = blob_files(missing) if missing else {}
    with _files_lock:
        for blob, where in fresh.items():
            _files_kept[blob] = (now, where)
            _files_kept.move_to_end(blob)
        while len(_files_kept) > FILES_KEPT_MOST:
            _files_kept.popitem(last=False)
    return found | fresh


def _range_list(ranges) -> tuple[list[tuple[bytes, int, int]], dict[int, bytes]]:
    """The ranges asked for, and the signatures some came with (by index)."""
    if not isinstance(ranges, list) or len(ranges) > MAX_HASHES:
        raise ValueError("bad range list")
    checked, signatures = [], {}
    for item in ranges:
        if not isinstance(item, list) or len(item) not in (3, 4):
            raise ValueError("bad range")
        if len(item) == 4:
            signatures[len(checked)] = check_keys(item[3])
        blob, offset, length = item[:3]
        if not (isinstance(blob, bytes) and len(blob) == 32):
            raise ValueError("bad hash")
        if type(offset) is not int or type(length) is not int or offset < 0 or length <= 0:
            raise ValueError("bad range")
        checked.append((blob, offset, length))
    if sum(length for _, _, length in checked) > MAX_CHUNK_BYTES:
        raise ValueError("too many chunk bytes asked at once")
    return checked, signatures


def _hash_list(hashes) -> list[bytes]:
    if not isinstance(hashes, list) or len(hashes) > MAX_HASHES:
        raise ValueError("bad hash list")
    if not all(isinstance(h, bytes) and len(h) == 32 for h in hashes):
        raise ValueError("bad hash")
    return hashes


async def consensus_now(args: dict) -> dict:
    """`realize consensus` from this peer's own command line (realize_site.fast_consensus)."""
    area, peer = args.get("area"), args.get("peer")
    if not isinstance(area, str) or not isinstance(peer, str | None):
        raise ValueError("bad consensus request")
    return await waiting(consensus_report, area, peer)


async def handle(daemon, conn: Connection, op: str, args: dict):
    """A peer's request over its connection with this peerd."""
    key = conn.peer_key
    if op == "areas":
        return await db(area_names, key)
    if op == "area-states":
        return await db(area_states_for, key)
    if op == "begin":
        return await begin(key, args.get("area"))
    if op == "history":
        return await history_answer(key, args.get("area"), args.get("since"), args.get("limit"))
    if op == "ack":
        return await db(ack, key, args.get("area"), args.get("seq"))
    if op == "blobs":
        return await db(blobs, key, args.get("hashes"), args.get("bases"), args.get("window"))
    if op == "needs":
        return await db(needs, key, args.get("area"), args.get("since"), args.get("listed", 0))
    if op == "holds":
        return await db(holds, key, args.get("hashes"))
    if op == "chunks":
        return await db(chunks, key, args.get("hashes"), None, args.get("ranges"))
    if op == "pull":
        remote = ConnectionRemote(conn, asyncio.get_running_loop(), daemon)
        return await slow(pull_for_peer, key, args.get("area"), remote)
    raise ValueError(f"unknown request {op!r}")
