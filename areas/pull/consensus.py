"""Consensus: two peers exchange their changes of an area, in both directions.

On the peer that starts it (a worker, through peerd): index the Real, ask the other peer to
index its own, pull the other's history since our cursor and apply it, then ask the other
to pull ours the same way. A run is recorded and shown live; one runs at a time per area
and peer.
"""

import asyncio
import concurrent.futures
import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable, Iterator

from django.db import connection, transaction
from django.utils import timezone

from areas import events
from areas.index.locks import CONSENSUS, index_lock, release_advisory_lock, try_advisory_lock
from areas.index.scanner import scan_area
from areas.index.wire import BadData, event_from_wire
from areas.models import Area, ConsensusRun, PeerArea
from areas.pull.applier import Applier, ApplyStats, apply_window, prepare_area
from areas.pull.prefetch import PagesAhead
from areas.stager.launcher import STAGING
from peers.client.links import links_to
from peers.client.peerd import PeerdClient, RemotePeer
from peers.models import LocalPeer, Peer

log = logging.getLogger(__name__)
HISTORY_BATCH = 5000
LINK_TIMEOUT = 600.0


class ConnectionRemote:
    """A peer reached over a connection of this peerd, from one of its worker threads."""

    def __init__(self, conn, loop: asyncio.AbstractEventLoop, daemon=None):
        self.conn = conn
        self.loop = loop
        self.daemon = daemon
        self.name = conn.peer_name

    def others(self) -> list["ConnectionRemote"]:
        """The other peers this peerd is connected to."""
        if self.daemon is None:
            return []
        connections = list(self.daemon.connections.values())
        return [ConnectionRemote(c, self.loop) for c in connections if c is not self.conn]

    def close(self) -> None:
        pass

    def fork(self) -> "ConnectionRemote":
        """The same peer, for another thread (calls go through the event loop anyway)."""
        return ConnectionRemote(self.conn, self.loop, self.daemon)

    def call(self, op: str, **args):
        return asyncio.run_coroutine_threadsafe(self.conn.call(op, args), self.loop).result()

    def call_many(self, op: str, arg_list: Iterable[dict], depth: int) -> Iterator:
        """Pipelined calls, results in order, up to `depth` on their way at once."""
        waiting: deque[concurrent.futures.Future] = deque()
        try:
            for args in arg_list:
                call = self.conn.call(op, args)
                waiting.append(asyncio.run_coroutine_threadsafe(call, self.loop))
                if len(waiting) >= depth:
                    yield waiting.popleft().result()
            while waiting:
                yield waiting.popleft().result()
        finally:
            for future in waiting:
                future.cancel()


def local_key() -> bytes:
    return bytes(LocalPeer.get().public_key)


def pull(area: Area, peer: Peer, remote) -> ApplyStats:
    """Apply the peer's changes of the area made since we last pulled them."""
    stats = ApplyStats()
    me = local_key()
    with index_lock(area.pk):
        shared, _ = PeerArea.objects.get_or_create(peer=peer, area=area)
        pulled = shared.pulled_seq
        staging = prepare_area(area)
        links = getattr(remote, "links", None)
        if staging is not None and links is not None and links.usable:
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
                        apply_window(Applier(area, remote, me, stats, staging), window)
                pulled = page.following
                PeerArea.objects.filter(pk=shared.pk).update(
                    pulled_seq=_cursor(pulled, stats), last_seen=timezone.now()
                )
    remote.call("ack", area=area.name, seq=_cursor(pulled, stats))
    return stats


def history_pages(remote, area_name: str, since: int) -> Iterator[tuple[list, int]]:
    """The peer's changes since `since`, a page at a time: (events, where the next page
    starts). The next page is asked for (on a connection of its own, by a thread) while the
    caller applies this one, so the peer prepares it meanwhile."""
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
                batch = [event_from_wire(e) for e in answer["events"]]
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
    """Where the next pull starts: after what was pulled, or at the first change that could
    not be applied (the ones after it that did apply are known as seen and skipped then)."""
    return pulled if stats.retry_from is None else min(pulled, stats.retry_from - 1)


def pull_for_peer(key: bytes, area_name, remote) -> dict:
    """The other peer of a consensus asks us to pull its changes (runs in our peerd)."""
    peer = Peer.objects.filter(public_key=key).first()
    area = Area.objects.filter(name=area_name).first() if isinstance(area_name, str) else None
    if peer is None or area is None:
        raise LookupError(f"no area named {area_name!r} here")
    run = ConsensusRun.objects.create(
        area=area,
        peer=peer,
        peer_name=peer.name,
        trigger="peer",
        status=ConsensusRun.Status.RUNNING,
        started_at=timezone.now(),
    )
    events.run_changed(run)
    try:
        stats = pull(area, peer, remote)
    except Exception as exc:
        _finish(run, ApplyStats(), None, exc)
        raise
    _finish(run, stats, None, None)
    return {
        "files": stats.files,
        "bytes": stats.bytes,
        "conflicts": stats.conflicts,
        "errors": stats.errors,
    }


def request_consensus(area: Area, peer: Peer, trigger: str, countdown: float = 0) -> ConsensusRun:
    """Queue a run for the worker, or join one already waiting for the same area and peer."""
    from areas.tasks import consensus_task

    with transaction.atomic():
        waiting = (
            ConsensusRun.objects.select_for_update()
            .filter(area=area, peer=peer, status=ConsensusRun.Status.PENDING)
            .first()
        )
        if waiting is not None:
            return waiting
        run = ConsensusRun.objects.create(
            area=area, peer=peer, peer_name=peer.name, trigger=trigger
        )
        events.run_changed(run)
    consensus_task.apply_async((run.pk,), countdown=countdown)
    return run


def run_consensus(run_id: int) -> ConsensusRun | None:
    """Carry out a queued run (in a worker). Safe to call twice: a run happens once."""
    claimed = ConsensusRun.objects.filter(pk=run_id, status=ConsensusRun.Status.PENDING).update(
        status=ConsensusRun.Status.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return None
    run = ConsensusRun.objects.select_related("area", "peer").get(pk=run_id)
    events.run_changed(run)
    lock_key = run.area_id * 1_000_003 + (run.peer_id or 0)
    # One run per area and peer at a time: a second waits for the first.
    while not try_advisory_lock(CONSENSUS, lock_key):
        time.sleep(0.2)
    stats_in, out, error = ApplyStats(), None, None
    try:
        if run.peer is None:
            raise LookupError(f"peer {run.peer_name} left the household")
        scan_area(run.area, local_key())
        # The bulk reads go straight to the peer when it listens (peers.client.links).
        links = links_to(run.peer, LINK_TIMEOUT)
        closing = contextlib.closing(links) if links else contextlib.nullcontext()
        with PeerdClient() as client, closing:
            remote = RemotePeer(client, run.peer.name, links)
            remote.call("begin", area=run.area.name)
            stats_in = pull(run.area, run.peer, remote)
            out = remote.call("pull", area=run.area.name)
    except Exception as exc:  # noqa: BLE001 - recorded on the run and shown to the user
        error = exc
        log.warning("consensus %s with %s failed: %s", run.area.name, run.peer_name, exc)
    finally:
        release_advisory_lock(CONSENSUS, lock_key)
    _finish(run, stats_in, out, error)
    return run


def _finish(run: ConsensusRun, stats: ApplyStats, out: dict | None, error) -> None:
    problems = list(stats.errors) + list((out or {}).get("errors") or [])
    run.files_in, run.bytes_in = stats.files, stats.bytes
    run.files_out = int((out or {}).get("files") or 0)
    run.bytes_out = int((out or {}).get("bytes") or 0)
    run.conflicts = stats.conflicts + int((out or {}).get("conflicts") or 0)
    if error is not None:
        run.error = (str(error).strip().splitlines() or [type(error).__name__])[0]
    elif problems:
        run.error = "; ".join(problems[:5])
    failed = error is not None or bool(problems)
    run.status = ConsensusRun.Status.FAILED if failed else ConsensusRun.Status.DONE
    run.finished_at = timezone.now()
    run.save()
    events.run_changed(run)
    notify_finished(run)


# Waiters (`realize consensus`) LISTEN on this channel: a run's end wakes them at once.
FINISHED_CHANNEL = "realize_run_finished"


def notify_finished(run: ConsensusRun) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, %s)", [FINISHED_CHANNEL, str(run.pk)])


def abandon_interrupted_runs(by_peer: bool) -> int:
    """Runs left 'running' by a process that died are over: mark them failed.

    The worker calls this as it starts (runs it carries out), peerd too (runs a peer asked of
    it). The next run picks up where the cursors are; nothing half-written is ever visible.
    """
    runs = ConsensusRun.objects.filter(status=ConsensusRun.Status.RUNNING)
    runs = runs.filter(trigger="peer") if by_peer else runs.exclude(trigger="peer")
    return runs.update(
        status=ConsensusRun.Status.FAILED,
        finished_at=timezone.now(),
        error="interrupted: the process running it stopped",
    )
