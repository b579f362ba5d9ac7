"""Consensus: two peers exchange their changes of an area, in both directions.

The starting peer scans, asks the other to scan, pulls and applies its history, then asks it
to pull ours. Runs are recorded and shown live; one at a time per area and peer.
"""

import concurrent.futures
import contextlib
import logging
import time
from collections.abc import Iterator

from django.utils import timezone

from areas.index import (
    CONSENSUS,
    BadData,
    event_from_wire,
    index_lock,
    release_advisory_lock,
    scan_area,
    try_advisory_lock,
)
from areas.models import Area, ConsensusRun, PeerArea
from areas.pull.applier import apply_window, prepare_area
from areas.pull.prefetch import PagesAhead
from areas.pull.progress import Progress
from areas.pull.stats import ApplyStats
from areas.pull.unreal import applier_for
from areas.stager import STAGING
from peers.client import PeerdClient, Remote, RemotePeer
from peers.models import LocalPeer, Peer

log = logging.getLogger(__name__)
HISTORY_BATCH = 5000
LINK_TIMEOUT = 600.0


def local_key() -> bytes:
    return bytes(LocalPeer.get().public_key)


def pull(area: Area, peer: Peer, remote: Remote, run: ConsensusRun | None = None) -> ApplyStats:
    """Apply the peer's changes of the area made since we last pulled them (shown on the
    run as they are taken)."""
    stats = ApplyStats()
    me = local_key()
    with index_lock(area.pk), contextlib.closing(Progress(run, stats)) as progress:
        shared, _ = PeerArea.objects.get_or_create(peer=peer, area=area)
        pulled = shared.pulled_seq
        progress.start(remote, area.name, pulled)
        staging = prepare_area(area)
        links = remote.links
        real = area.mode == Area.Mode.REAL
        if real and staging is not None and links is not None and links.usable:
            STAGING.start()
        with (
            contextlib.closing(history_pages(remote, area.name, pulled)) as pages,
            contextlib.closing(PagesAhead(area, remote, me, stats, staging, pages)) as ahead,
        ):
            for page in ahead:
                for i, window in enumerate(page.windows):
                    if i == 0:
                        try:
                            apply_window(page.first, window, prepared=True)
                        finally:
                            page.first.remote.close()
                    else:
                        apply_window(applier_for(area, remote, me, stats, staging), window)
                pulled = page.following
                PeerArea.objects.filter(pk=shared.pk).update(
                    pulled_seq=_cursor(pulled, stats), last_seen=timezone.now()
                )
    remote.call("ack", area=area.name, seq=_cursor(pulled, stats))
    return stats


def history_pages(remote: Remote, area_name: str, since: int) -> Iterator[tuple[list, int]]:
    """The peer's changes since `since`, a page at a time: (events, where the next starts).

    The next page is asked for on its own connection while the caller applies this one."""
    asker = remote.fork()
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="history") as ahead:

        def ask(cursor: int) -> concurrent.futures.Future:
            return ahead.submit(
                asker.call, "history", area=area_name, since=cursor, limit=HISTORY_BATCH
            )

        coming: concurrent.futures.Future | None = None
        try:
            coming = ask(since)
            while coming is not None:
                answer = coming.result()
                if not isinstance(answer, dict) or not isinstance(answer.get("events"), list):
                    raise BadData("bad answer to history")
                following = answer.get("next")
                if not isinstance(following, int) or following < 0:
                    raise BadData("bad history cursor")
                snapshot = answer.get("snapshot") is True
                batch = [event_from_wire(e, snapshot) for e in answer["events"]]
                more = answer.get("more") or answer.get("scanning")
                coming = ask(following) if more else None
                yield batch, following
        finally:
            if coming is not None:
                coming.cancel()
                with contextlib.suppress(Exception):
                    coming.result()  # an answer still on its way is read, then dropped
            asker.close()


def _cursor(pulled: int, stats: ApplyStats) -> int:
    """Where the next pull starts: after what was pulled, or at the first change not applied.

    Later changes that did apply are known as seen, and skipped then."""
    return pulled if stats.retry_from is None else min(pulled, stats.retry_from - 1)


# How long a run asked of us whose end could not be recorded waits for the database.
END_RETRY_FOR = 120.0


def pull_for_peer(key: bytes, area_name, remote: Remote) -> dict:
    """The other peer of a consensus asks us to pull its changes (runs in our peerd)."""
    peer = Peer.objects.by_key(key)
    area = Area.objects.filter(name=area_name).first() if isinstance(area_name, str) else None
    if peer is None or area is None:
        raise LookupError(f"no area named {area_name!r} here")
    if not area.is_shared_with(peer):
        raise LookupError(f"area {area.name} is paused here, or not shared with {peer.name}")
    run = ConsensusRun.objects.asked_by(area, peer)
    try:
        stats = pull(area, peer, remote, run)
        _finish(run, stats)
    except Exception as exc:
        # Its end recorded once the database answers (it may be what failed): a run left
        # 'running' would hold its area and peer until peerd restarts.
        ConsensusRun.objects.end_failed(run.pk, exc, retry_for=END_RETRY_FOR)
        raise
    return {
        "files": stats.files,
        "bytes": stats.bytes,
        "conflicts": stats.conflicts,
        "errors": stats.errors,
    }


def run_consensus(run_id: int) -> ConsensusRun | None:
    """Carry out a queued run (in a worker). Safe to call twice: a run happens once."""
    run = ConsensusRun.objects.claim(run_id)
    if run is None:
        return None
    lock_key = run.area_id * 1_000_003 + (run.peer_id or 0)
    # One run per area and peer at a time: a second waits for the first.
    while not try_advisory_lock(CONSENSUS, lock_key):
        time.sleep(0.2)
    stats_in, out, error = ApplyStats(), None, None
    try:
        if run.peer is None:
            raise LookupError(f"peer {run.peer_name} left the household")
        if not run.area.is_shared_with(run.peer):  # since it was asked for
            raise LookupError(f"area {run.area.name} is paused, or not shared with {run.peer_name}")
        scan_area(run.area, local_key())
        # The bulk reads go straight to the peer when it listens (peers.client.links).
        links = run.peer.links(LINK_TIMEOUT)
        closing = contextlib.closing(links) if links else contextlib.nullcontext()
        with PeerdClient() as client, closing:
            remote = RemotePeer(client, run.peer.name, links)
            remote.call("begin", area=run.area.name)
            stats_in = pull(run.area, run.peer, remote, run)
            out = remote.call("pull", area=run.area.name)
    except Exception as exc:  # noqa: BLE001 - recorded on the run and shown to the user
        error = exc
        log.warning("consensus %s with %s failed: %s", run.area.name, run.peer_name, exc)
    finally:
        release_advisory_lock(CONSENSUS, lock_key)
    _finish(run, stats_in, out, error)
    return run


def _finish(
    run: ConsensusRun, stats: ApplyStats, out: dict | None = None, error=None
) -> None:
    run.finish(stats.files, stats.bytes, stats.conflicts, stats.errors, out, error)
