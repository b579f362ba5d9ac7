"""What peerd serves of the areas: the peers.daemon.server.Handler given by realize_site.peerd."""

import asyncio
import logging
from typing import Any

from django.db import DatabaseError
from django.utils import timezone

from areas.models import ConsensusRun, PeerArea
from areas.serve.answers import blobs, chunks, consensus_now, handle, history_answer
from areas.watch import Watcher, catchup
from peers.daemon import Connection, db
from peers.wire import BufferPool

log = logging.getLogger(__name__)
# How often peerd looks for pending runs whose task may have been lost.
REQUEUE_EVERY = 60.0


class AreaService:
    """Answers peers' requests, catches peers up as they connect, watches the Real."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.watcher: Watcher | None = None
        self._watching: asyncio.Task | None = None
        self._requeuing: asyncio.Task | None = None

    async def start(self, daemon) -> None:
        self.loop = asyncio.get_running_loop()
        # Runs peers asked of a peerd that died are over.
        await db(ConsensusRun.objects.abandon_interrupted, True)
        self.watcher = Watcher(daemon)
        self._watching = asyncio.create_task(self.watcher.run())
        self._requeuing = asyncio.create_task(self._requeue_lost_runs())

    async def _requeue_lost_runs(self) -> None:
        """A run whose task was lost (the broker down when it was sent) is sent again: no
        area and peer stay held by a pending run that nothing will take."""
        while True:
            await asyncio.sleep(REQUEUE_EVERY)
            try:
                await db(ConsensusRun.objects.requeue_pending, True)
            except DatabaseError:
                pass  # the database is away: the next round tries again

    async def stop(self) -> None:
        for task in (self._watching, self._requeuing):
            if task is not None:
                task.cancel()

    async def handle(self, daemon, conn: Connection, op: str, args: dict) -> Any:
        return await handle(daemon, conn, op, args)

    def answer_link(self, key: bytes, op: str, args: dict, buffers: BufferPool) -> Any:
        """A data link's read, in the link's thread; `history`, which may wait, on the loop."""
        if op == "history":
            waiting = history_answer(
                key, args.get("area"), args.get("since"), args.get("limit")
            )
            return asyncio.run_coroutine_threadsafe(waiting, self.loop).result()
        if op == "blobs":
            return blobs(key, args.get("hashes"), args.get("bases"), args.get("window"))
        return chunks(key, args.get("hashes"), buffers, args.get("ranges"))

    async def peer_connected(self, conn: Connection) -> None:
        await db(_mark_seen, conn.peer_key)
        await catchup.peer_connected(conn)

    async def local(self, op: str, args: dict) -> Any:
        if op == "consensus-now":
            return await consensus_now(args)
        raise ValueError(f"unknown request {op!r}")


def _mark_seen(key: bytes) -> None:
    PeerArea.objects.filter(peer__public_key=key).update(last_seen=timezone.now())
