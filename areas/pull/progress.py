"""A running pull's figures, recorded on its run and shown live while it goes on.

The peer says up front what there is to take past our cursor (`needs`); a thread records
what the applier has taken so far every EVERY seconds, so a 300 MB run is not blank until
it ends."""

import logging
import threading

from django.db import DatabaseError, connection

from areas.models import ConsensusRun
from areas.pull.stats import ApplyStats
from peers.client import Remote
from peers.wire import ProtocolError, RemoteError

log = logging.getLogger(__name__)
EVERY = 1.0
# The peer's word on what there is to take is asked within this many seconds, or left out.
NEEDS_TIMEOUT = 30.0


class Progress:
    def __init__(self, run: ConsensusRun | None, stats: ApplyStats) -> None:
        self.run, self.stats = run, stats
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, remote: Remote, area_name: str, since: int) -> None:
        if self.run is None:
            return
        try:
            needs = remote.call("needs", area=area_name, since=since)
            files, size = int(needs["items"]), int(needs["bytes"])
        except (RemoteError, ProtocolError, OSError, KeyError, TypeError, ValueError) as exc:
            log.info("no progress for this run: the peer did not say what it has: %s", exc)
            return
        self.run.files_total, self.run.bytes_total = files, size
        self._record()
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while not self._stop.wait(EVERY):
                self._record()
        finally:
            connection.close()  # this thread's own

    def _record(self) -> None:
        run, stats = self.run, self.stats
        run.files_in, run.bytes_in = stats.files, stats.bytes
        try:
            ConsensusRun.objects.filter(pk=run.pk, status=ConsensusRun.Status.RUNNING).update(
                files_in=run.files_in, bytes_in=run.bytes_in,
                files_total=run.files_total, bytes_total=run.bytes_total,
            )  # fmt: skip
        except DatabaseError as exc:
            log.debug("progress not recorded: %s", exc)
            return
        run.announce()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
