"""The areas' data and its behaviour: a consensus run's life, and shared queries."""

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator

from celery import current_app
from django.db import DatabaseError, connection, models, transaction
from django.db.models import Count, Exists, F, IntegerField, OuterRef, Q, Subquery, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from areas import events, windows
from peers.models import LocalPeer, Peer
from realize_site.lib import first_line

log = logging.getLogger(__name__)

# Waiters (`realize consensus`) LISTEN on this channel: a run's end wakes them at once.
FINISHED_CHANNEL = "realize_run_finished"
# Each commit that moves an area's history on NOTIFYs this channel with the area's id: the
# mount LISTENs, to show a consensus's changes at once (areas.index.history.append).
HISTORY_CHANNEL = "realize_history"
# Each change to an area's row (added, removed, its mode or settings changed) NOTIFYs this
# channel: the mount LISTENs, so that an area removed and added again elsewhere does not
# show its old directory until the mount's next look.
AREAS_CHANNEL = "realize_areas"
# The Celery task that carries out a run (areas.tasks), queued by name: the model does not
# import the engine that the task runs.
CONSENSUS_TASK = "areas.consensus"
# A pending run whose task was sent this many seconds ago, or never, may have lost it (a broker
# that was down, a process that died between commit and send): it is sent again. A second send
# is harmless: claim() takes a run once.
REQUEUE_AFTER = 30.0


def _count(queryset: models.QuerySet) -> Coalesce:
    counted = queryset.order_by().values("area").annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


class AreaQuerySet(models.QuerySet):
    def with_counts(self) -> "AreaQuerySet":
        """`files` (entries holding a blob) and `open_conflicts` annotated."""
        return self.annotate(
            files=_count(Entry.objects.filter(area=OuterRef("pk"), blob_hash__isnull=False)),
            open_conflicts=_count(Conflict.objects.filter(area=OuterRef("pk"), resolved_at=None)),
        )

    def shared_with(self, peer: Peer) -> "AreaQuerySet":
        """The areas this peer may sync with us: not paused, nor kept from it."""
        kept = PeerArea.objects.filter(area=OuterRef("pk"), peer=peer, excluded=True)
        return self.filter(paused=False).exclude(Exists(kept))

    def overview(self) -> list["Area"]:
        """Every area with its counts, `last_run` (latest run, or None) and `last_run_at`."""
        latest = ConsensusRun.objects.filter(area=OuterRef("pk")).order_by("-requested_at", "-pk")
        areas = list(self.with_counts().annotate(last_run_id=Subquery(latest.values("pk")[:1])))
        runs = ConsensusRun.objects.in_bulk([a.last_run_id for a in areas if a.last_run_id])
        for area in areas:
            area.last_run = run = runs.get(area.last_run_id)
            area.last_run_at = run and (run.finished_at or run.started_at or run.requested_at)
        return areas


class Area(models.Model):
    """A named directory tree kept in sync with the peers that have an area of the same name."""

    class Mode(models.TextChoices):
        REAL = "real"
        UNREAL = "unreal"

    name = models.CharField(max_length=64, unique=True)
    path = models.CharField(max_length=4096, unique=True)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.REAL)
    # Seconds of quiet after a local create or edit before consensus starts by itself.
    rest_seconds = models.PositiveIntegerField(default=30)
    # Paused: indexed, but no consensus starts, and peers are told it is not shared here.
    paused = models.BooleanField(default=False, db_default=False)
    # An Unreal area asked to become Real: the mount fetches its files onto the disk, and
    # the mode changes once they are all there (areas.lifecycle.set_mode).
    realizing = models.BooleanField(default=False, db_default=False)
    # The last sequence number given to a local history event of this area.
    history_seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AreaQuerySet.as_manager()

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @staticmethod
    def tell_listeners() -> None:
        """Tell those listening on AREAS_CHANNEL that the areas changed, once the current
        transaction commits (at once outside one)."""
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, '')", [AREAS_CHANNEL])

    def sizes(self) -> dict[str, int]:
        """Files and bytes: `global_*` every file this peer knows of (what the household
        has, as far as it has taken); `local_*` those whose content is on this disk (all
        of a Real area)."""
        live = Q(blob_hash__isnull=False)
        here = live if self.mode == self.Mode.REAL else live & ~Q(inode=0)
        return self.entries.aggregate(
            global_files=Count("pk", filter=live),
            global_bytes=Coalesce(Sum("size", filter=live), 0),
            local_files=Count("pk", filter=here),
            local_bytes=Coalesce(Sum("size", filter=here), 0),
        )

    def is_shared_with(self, peer: Peer) -> bool:
        return not self.paused and not self.peers.filter(peer=peer, excluded=True).exists()

    def sharing(self) -> list[tuple[Peer, bool]]:
        """Every household peer, and whether this area is shared with it (the default)."""
        kept = set(self.peers.filter(excluded=True).values_list("peer_id", flat=True))
        return [(peer, peer.pk not in kept) for peer in Peer.objects.all()]

    def consensus_windows(self) -> list[windows.Window]:
        return [w.rule() for w in self.windows.all()]

    def may_start_consensus(self, now=None) -> bool:
        """Whether an automatic trigger may start consensus now: not paused, and within a
        consensus window if it has any (areas.windows)."""
        return not self.paused and windows.any_open(
            self.consensus_windows(), now or timezone.now()
        )

    def recent_changes(self, limit: int = 100) -> list["HistoryEvent"]:
        """The latest changes, made here or applied from a peer, each with `by`: the name
        of the peer it was made on."""
        changes = list(self.history.order_by("-seq")[:limit])
        keys = {bytes(c.origin) for c in changes}
        names = {bytes(k): n for k, n in Peer.objects.filter(public_key__in=keys)
                 .values_list("public_key", "name")}  # fmt: skip
        local = LocalPeer.get()
        if local is not None:
            names[bytes(local.public_key)] = f"{local.name} (this peer)"
        for change in changes:
            change.by = names.get(bytes(change.origin), "a former peer")
        return changes

    def unresolved_conflicts(self, limit: int = 200) -> list["Conflict"]:
        return list(self.conflicts.filter(resolved_at=None).order_by("-created_at")[:limit])


class ConsensusWindow(models.Model):
    """When an area's automatic consensus may run (areas.windows); run by beat through
    django-celery-beat's schedules (`task`: the periodic task that starts it)."""

    class Kind(models.TextChoices):
        SPAN = windows.SPAN, "a span of time"
        EVERY = windows.EVERY, "a run every few minutes"

    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="windows")
    kind = models.CharField(max_length=8, choices=Kind.choices)
    days = models.CharField(max_length=16, default="*")
    time_zone = models.CharField(max_length=64, default="UTC")
    start = models.TimeField(null=True)
    end = models.TimeField(null=True)
    every_minutes = models.PositiveIntegerField(null=True)
    task = models.OneToOneField(
        "django_celery_beat.PeriodicTask", on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["pk"]

    def delete(self, *args, **kwargs):
        """With its periodic task, deleted as a row of its own: beat is told of it."""
        with transaction.atomic():
            result = super().delete(*args, **kwargs)
            if self.task is not None:
                self.task.delete()
        return result

    def rule(self) -> windows.Window:
        return windows.Window(
            self.kind, self.days, self.time_zone, self.start, self.end, self.every_minutes
        )

    def describe(self) -> str:
        return windows.describe(self.rule())

    def next_start(self, now=None):
        last = self.task.last_run_at if self.task is not None else None
        return windows.next_start(self.rule(), now or timezone.now(), last)


class Blob(models.Model):
    """A file version, named by the BLAKE3 hash of its content; an ordered list of chunks.

    Per-file and per-chunk tables reference blobs and areas without database constraints:
    each would cost a query and a row lock per inserted row. Our code inserts rows only beside
    what they refer to, and deletes through the ORM, which cascades."""

    hash = models.BinaryField(max_length=32, unique=True)
    size = models.BigIntegerField()

    def __str__(self) -> str:
        return bytes(self.hash).hex()[:16]


class BlobChunk(models.Model):
    """Chunk `position` of a blob: where it lies in the content, and its hash."""

    # Not indexed alone: the unique (blob, position) index leads with it.
    blob = models.ForeignKey(
        Blob, on_delete=models.CASCADE, related_name="chunks", db_index=False, db_constraint=False
    )
    position = models.IntegerField()
    hash = models.BinaryField(max_length=32)
    offset = models.BigIntegerField()
    length = models.IntegerField()

    class Meta:
        ordering = ["blob", "position"]
        constraints = [
            models.UniqueConstraint(fields=["blob", "position"], name="blobchunk_position")
        ]
        indexes = [models.Index(fields=["hash"], name="blobchunk_hash")]


class Entry(models.Model):
    """A path of an area and the blob it holds; a tombstone (no blob) once deleted."""

    area = models.ForeignKey(
        Area, on_delete=models.CASCADE, related_name="entries", db_index=False, db_constraint=False
    )  # indexed by the unique (area, path) index; no constraint (see Blob)
    path = models.CharField(max_length=4096)
    blob_hash = models.BinaryField(max_length=32, null=True)
    # A tombstone's last content: a peer told of the delete applies it only to that version.
    deleted_hash = models.BinaryField(max_length=32, null=True)
    size = models.BigIntegerField(default=0)
    mtime_ns = models.BigIntegerField(default=0)
    mode = models.IntegerField(default=0o644)
    # What the file looked like on disk when indexed: a change of any means a rescan.
    inode = models.BigIntegerField(default=0)
    ctime_ns = models.BigIntegerField(default=0)
    # The peer (public key) whose change put this version here.
    origin = models.BinaryField(max_length=32, default=b"")
    # What this version or tombstone descends from (areas.index.versions, areas.pull.rules):
    # the version vector of the change that made it; every change of the path decided here
    # (empty: the same); a tombstone's deleted content's; and the stamp conflicts weigh.
    version = models.BinaryField(default=b"", db_default=b"")
    known = models.BinaryField(default=b"", db_default=b"")
    deleted_version = models.BinaryField(default=b"", db_default=b"")
    stamp = models.BinaryField(default=b"", db_default=b"")
    # Made by a move: the new path of a rename, or the tombstone of its old one.
    moved = models.BooleanField(default=False, db_default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["area", "path"], name="entry_path")]
        # Serving a chunk looks up the files that hold its blob.
        indexes = [models.Index(fields=["blob_hash"], name="entry_blob")]

    def __str__(self) -> str:
        return f"{self.area.name}:{self.path}"

    @property
    def exists(self) -> bool:
        return self.blob_hash is not None

    def bury(self) -> None:
        """Make this entry a tombstone (its file was deleted or moved away)."""
        if self.blob_hash is not None:
            self.deleted_hash = self.blob_hash
        self.blob_hash = None


class HistoryEvent(models.Model):
    """One change of an area, in the order this peer saw it: its own, or applied from a peer."""

    class Kind(models.TextChoices):
        CREATE = "create"
        EDIT = "edit"
        OVERWRITE = "overwrite"
        DELETE = "delete"
        RENAME = "rename"

    area = models.ForeignKey(
        Area, on_delete=models.CASCADE, related_name="history", db_index=False, db_constraint=False
    )  # indexed by the unique (area, seq) index; no constraint (see Blob)
    seq = models.BigIntegerField()
    kind = models.CharField(max_length=10, choices=Kind.choices)
    path = models.CharField(max_length=4096)
    # For a rename, the path the blob left.
    old_path = models.CharField(max_length=4096, blank=True)
    blob_hash = models.BinaryField(max_length=32, null=True)
    # The blob this change replaced (none for a create).
    base_hash = models.BinaryField(max_length=32, null=True)
    size = models.BigIntegerField(default=0)
    mtime_ns = models.BigIntegerField(default=0)
    mode = models.IntegerField(default=0o644)
    # The change's identity: the peer it started on (public key), its number there.
    origin = models.BinaryField(max_length=32)
    origin_seq = models.BigIntegerField()
    # The version vectors (areas.index.versions) the change gave its path and a rename its
    # source, and that of the content a delete or a rename took away; the stamps of the
    # path and of a rename's source.
    version = models.BinaryField(null=True)
    old_version = models.BinaryField(null=True)
    base_version = models.BinaryField(null=True)
    stamp = models.BinaryField(null=True)
    old_stamp = models.BinaryField(null=True)
    # A part of a peer's rename, recorded alone (its delete, or its put).
    moved = models.BooleanField(default=False, db_default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["area", "seq"]
        constraints = [models.UniqueConstraint(fields=["area", "seq"], name="history_seq")]


class PeerAreaQuerySet(models.QuerySet):
    def synced(self) -> "PeerAreaQuerySet":
        """Where the two peers have exchanged history at least once."""
        return self.filter(Q(pulled_seq__gt=0) | Q(acked_seq__gt=0))


class PeerArea(models.Model):
    """What this peer knows of a household peer's copy of an area."""

    objects = PeerAreaQuerySet.as_manager()

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="areas")
    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="peers")
    # The peer's history applied here, up to this sequence number of the peer's.
    pulled_seq = models.BigIntegerField(default=0)
    # This peer's history the peer has applied, up to this sequence number of ours.
    acked_seq = models.BigIntegerField(default=0)
    last_seen = models.DateTimeField(null=True)
    # Not shared with this peer: the area is neither offered to it nor synced with it.
    excluded = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["peer", "area"], name="peerarea")]


class ConflictQuerySet(models.QuerySet):
    def settle(self, area: Area, changes, when) -> int:
        """Conflicts whose copy these changes delete or move away (Kind.DELETE, RENAME),
        made here or by a peer, are resolved: however and wherever the copy was dealt
        with, every peer sees the conflict so. How many."""
        copies = set(
            self.filter(area=area, resolved_at=None)
            .exclude(copy_path="")
            .values_list("copy_path", flat=True)
        )
        if not copies:
            return 0
        gone = {
            c.old_path if c.kind == "rename" else c.path
            for c in changes
            if c.kind in ("delete", "rename")
        }
        settled = copies & gone
        if not settled:
            return 0
        return self.filter(area=area, resolved_at=None, copy_path__in=settled).update(
            resolved_at=when
        )


class Conflict(models.Model):
    """Two versions of one path met; both are kept, the other under `copy_path`."""

    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="conflicts")
    path = models.CharField(max_length=4096)
    copy_path = models.CharField(max_length=4096, blank=True)
    kept_hash = models.BinaryField(max_length=32, null=True)
    other_hash = models.BinaryField(max_length=32, null=True)
    other_origin = models.BinaryField(max_length=32)
    description = models.CharField(max_length=300)
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    # A choice waiting for the copy's content (an Unreal file): the mount fetches it, then
    # carries the choice out (areas.conflicts.resolve, fusemount.realizer).
    resolving = models.CharField(max_length=8, blank=True, default="", db_default="")
    resolving_name = models.CharField(max_length=4096, blank=True, default="", db_default="")

    objects = ConflictQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]


class AreaPaused(RuntimeError):
    """A consensus asked for an area paused here, or kept from that peer."""


class ConsensusRunQuerySet(models.QuerySet):
    def request(self, area: Area, peer: Peer, trigger: str, countdown: float = 0) -> "ConsensusRun":
        """Queue a run for the worker, or join one pending for the same area and peer.

        The task is sent once the run is committed. A joined run whose task may be lost is
        sent again, so a lost send cannot hold the area and peer for good. AreaPaused for
        an area paused here."""
        if area.paused:
            raise AreaPaused(f"area {area.name} is paused: resume it to sync it")
        if not area.is_shared_with(peer):
            raise AreaPaused(f"area {area.name} is not shared with {peer.name}")
        with transaction.atomic():
            waiting = (
                self.select_for_update()
                .filter(area=area, peer=peer, status=ConsensusRun.Status.PENDING)
                .first()
            )
            if waiting is not None:
                if waiting.send_is_stale():
                    transaction.on_commit(waiting.queue)
                return waiting
            run = self.create(area=area, peer=peer, peer_name=peer.name, trigger=trigger)
            run.announce()
            transaction.on_commit(lambda: run.queue(countdown))
        return run

    def requeue_pending(self, stale_only: bool = False) -> int:
        """Send pending runs' tasks again: how many were sent. All of them at the worker's
        start; `stale_only`, those sent REQUEUE_AFTER seconds ago or never (peerd, every
        minute). Their tasks may have been lost with the broker, or never sent."""
        sent = 0
        for run in self.filter(status=ConsensusRun.Status.PENDING).order_by("pk"):
            if not stale_only or run.send_is_stale():
                sent += run.queue()
        return sent

    def claim(self, run_id: int) -> "ConsensusRun | None":
        """Take a pending run to carry it out; None if taken or not pending (safe to repeat)."""
        claimed = self.filter(pk=run_id, status=ConsensusRun.Status.PENDING).update(
            status=ConsensusRun.Status.RUNNING, started_at=timezone.now(), worker_pid=os.getpid()
        )
        if not claimed:
            return None
        run = self.select_related("area", "peer").get(pk=run_id)
        run.announce()
        return run

    def asked_by(self, area: Area, peer: Peer) -> "ConsensusRun":
        """A run the other peer asked of this one (it pulls here): running from the start."""
        run = self.create(
            area=area,
            peer=peer,
            peer_name=peer.name,
            trigger=ConsensusRun.ASKED_BY_PEER,
            status=ConsensusRun.Status.RUNNING,
            started_at=timezone.now(),
            worker_pid=os.getpid(),
        )
        run.announce()
        return run

    def abandon_interrupted(self, by_peer: bool) -> int:
        """Runs left 'running' by a process that died are over: mark them failed.

        Called at start by the worker (its runs) and peerd (runs peers asked of it); runs
        of the other kind whose process is gone end too. The next run starts from the cursors.
        """
        runs = self.filter(status=ConsensusRun.Status.RUNNING)
        if by_peer:
            runs = runs.filter(trigger=ConsensusRun.ASKED_BY_PEER)
        else:
            runs = runs.exclude(trigger=ConsensusRun.ASKED_BY_PEER)
        return self._abandon(runs) + self.abandon_orphaned()

    def abandon_orphaned(self) -> int:
        """Runs 'running' in a process that is gone are over: mark them failed.

        A worker's child killed mid-run is replaced without the worker restarting, so
        abandon_interrupted never sees its run."""
        running = self.filter(status=ConsensusRun.Status.RUNNING, worker_pid__isnull=False)
        gone = [pk for pk, pid in running.values_list("pk", "worker_pid") if not _alive(pid)]
        return self._abandon(self.filter(pk__in=gone, status=ConsensusRun.Status.RUNNING))

    def _abandon(self, runs: "ConsensusRunQuerySet") -> int:
        """Mark these running runs failed, and tell dashboards and waiters."""
        ended = list(runs.values_list("pk", flat=True))
        count = self.filter(pk__in=ended, status=ConsensusRun.Status.RUNNING).update(
            status=ConsensusRun.Status.FAILED,
            finished_at=timezone.now(),
            error="interrupted: the process running it stopped",
        )
        for run in self.select_related("area").filter(pk__in=ended):
            run.announce()
            run.notify_finished()
        return count

    def end_failed(self, run_id: int, error: BaseException, retry_for: float) -> bool:
        """End as failed the run this process claimed, if it is still 'running'.

        For a run whose own end could not be recorded (the database went away): retried on a
        fresh connection until the database is back, for up to `retry_for` seconds. Whether
        this ended it."""
        deadline = time.monotonic() + retry_for
        delay = 0.5
        while True:
            try:
                connection.close()  # a broken connection is not reused
                run = (
                    self.select_related("area")
                    .filter(pk=run_id, status=ConsensusRun.Status.RUNNING, worker_pid=os.getpid())
                    .first()
                )
                if run is None:
                    return False
                run.finish(0, 0, 0, [], error=error)
                return True
            except DatabaseError as exc:
                if time.monotonic() + delay > deadline:
                    log.error("consensus run %s left running: %s", run_id, first_line(exc))
                    return False
                time.sleep(delay)
                delay = min(delay * 2, 10.0)

    def failing(self, area: Area | None = None) -> list["ConsensusRun"]:
        """For each area and peer, its last run to end, if that failed (a full disk, a peer
        that refuses): what stays wrong until a later run succeeds."""
        over = self.filter(status__in=[ConsensusRun.Status.DONE, ConsensusRun.Status.FAILED])
        if area is not None:
            over = over.filter(area=area)
        last = (
            over.select_related("area")
            .order_by("area__name", "peer_name", F("finished_at").desc(nulls_last=True), "-pk")
            .distinct("area__name", "peer_name")
        )
        return [run for run in last if run.status == ConsensusRun.Status.FAILED]

    def recent(self, area: Area | None = None, limit: int = 20) -> list["ConsensusRun"]:
        runs = self.select_related("area").order_by("-requested_at", "-pk")
        if area is not None:
            runs = runs.filter(area=area)
        return list(runs[:limit])


class ConsensusRun(models.Model):
    """One exchange of an area's changes with one peer: pending, running, then done or failed."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

    # The trigger of a run another peer asked of this one.
    ASKED_BY_PEER = "peer"

    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="runs")
    peer = models.ForeignKey(Peer, on_delete=models.SET_NULL, null=True, related_name="runs")
    peer_name = models.CharField(max_length=64)
    trigger = models.CharField(max_length=20, default="manual")
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    requested_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    files_in = models.IntegerField(default=0)
    bytes_in = models.BigIntegerField(default=0)
    files_out = models.IntegerField(default=0)
    bytes_out = models.BigIntegerField(default=0)
    conflicts = models.IntegerField(default=0)
    error = models.TextField(blank=True)
    # While it runs: what the pull has to take (the peer's word, as Syncthing's completion
    # counts it: the paths changed, and their content's bytes); files_in and bytes_in grow.
    files_total = models.IntegerField(null=True)
    bytes_total = models.BigIntegerField(null=True)
    # When its task was last sent to the worker (None: never, the broker was unreachable).
    queued_at = models.DateTimeField(null=True)
    # The process carrying it out, while running: a run whose process is gone is over.
    worker_pid = models.IntegerField(null=True)

    objects = ConsensusRunQuerySet.as_manager()
    # Why this process's last send of the task failed (None if it did not).
    queue_error: str | None = None

    class Meta:
        ordering = ["-requested_at"]

    @property
    def is_over(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    def progress(self, now=None) -> events.Progress | None:
        """How far a running pull is: percent of files and bytes, rate, seconds left."""
        if self.status != self.Status.RUNNING or self.started_at is None:
            return None
        if self.files_total is None or self.bytes_total is None:
            return None
        elapsed = ((now or timezone.now()) - self.started_at).total_seconds()
        return events.progress(
            self.files_in, self.files_total, self.bytes_in, self.bytes_total, elapsed
        )

    def progress_text(self) -> str:
        shown = self.progress()
        if shown is None:
            return ""
        return events.progress_text(
            self.files_in, self.files_total, self.bytes_in, self.bytes_total, shown
        )

    def finish(
        self,
        files_in: int,
        bytes_in: int,
        conflicts_in: int,
        problems: list[str],
        out: dict | None = None,
        error: BaseException | None = None,
    ) -> None:
        """Record how the run ended, tell the dashboards and wake waiters.

        `out`: what the other peer reported of its own pull."""
        out = out or {}
        problems = [*problems, *(out.get("errors") or [])]
        self.files_in, self.bytes_in = files_in, bytes_in
        self.files_out = int(out.get("files") or 0)
        self.bytes_out = int(out.get("bytes") or 0)
        self.conflicts = conflicts_in + int(out.get("conflicts") or 0)
        if error is not None:
            self.error = (str(error).strip().splitlines() or [type(error).__name__])[0]
        elif problems:
            self.error = "; ".join(problems[:5])
        failed = error is not None or bool(problems)
        self.status = self.Status.FAILED if failed else self.Status.DONE
        self.finished_at = timezone.now()
        self.save()
        self.announce()
        self.notify_finished()

    def announce(self) -> None:
        """Tell open dashboards, once committed."""
        events.run_changed(events.run_row(self))

    def notify_finished(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_notify(%s, %s)", [FINISHED_CHANNEL, str(self.pk)])

    def send_is_stale(self) -> bool:
        """Whether its task was never sent (as far as we know), or REQUEUE_AFTER seconds ago."""
        if self.queued_at is None:
            return True
        return (timezone.now() - self.queued_at).total_seconds() >= REQUEUE_AFTER

    def queue(self, countdown: float = 0) -> bool:
        """Send its task to the worker; whether the broker took it.

        A failed send is logged, and the run stays pending: a later request, a waiter or the
        worker's start sends it again."""
        try:
            current_app.send_task(CONSENSUS_TASK, (self.pk,), countdown=countdown)
        except Exception as exc:  # noqa: BLE001 - kombu's and redis' errors alike
            self.queue_error = first_line(exc)
            log.warning("consensus run %s not queued yet: %s", self.pk, self.queue_error)
            return False
        self.queue_error = None
        self.queued_at = timezone.now()
        ConsensusRun.objects.filter(pk=self.pk, status=self.Status.PENDING).update(
            queued_at=self.queued_at
        )
        return True

    def wait(
        self, pickup_wait: float, check_every: float, resend_after: float = REQUEUE_AFTER
    ) -> "ConsensusRun":
        """This run once over, woken by its end's notice or polled every `check_every` seconds.

        A run still pending is sent again after `resend_after` seconds, then less and less
        often. RuntimeError if no worker picked it up within `pickup_wait` seconds."""
        requested = time.monotonic()
        resend_at = requested + resend_after
        queued = self.queue_error is None
        with finished_notices() as wait:
            while True:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT status FROM areas_consensusrun WHERE id = %s", [self.pk])
                    row = cursor.fetchone()
                status = row[0] if row else self.Status.FAILED
                if status in (self.Status.DONE, self.Status.FAILED):
                    self.refresh_from_db()
                    return self
                pending = status == self.Status.PENDING
                now = time.monotonic()
                if pending and now - requested > pickup_wait:
                    if not queued:
                        raise RuntimeError(
                            f"cannot queue the run: the broker (Redis) is unreachable "
                            f"({self.queue_error})"
                        )
                    raise RuntimeError("no worker picked up the run: is 'realize up' running?")
                if pending and now >= resend_at:
                    queued = self.queue() or queued
                    resend_after *= 2
                    resend_at = now + resend_after
                wait(check_every)


def _alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie (on this machine)."""
    if pid <= 0:  # not a process (kill would reach a group)
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(") ")[2][:1] != "Z"
    except OSError:
        return True


@contextlib.contextmanager
def finished_notices() -> Iterator[Callable[[float], bool]]:
    """A function waiting up to its argument (seconds) for a run's end notice; whether one came.

    It listens on this thread's database connection meanwhile."""
    with connection.cursor() as cursor:
        cursor.execute(f"LISTEN {FINISHED_CHANNEL}")
    listening = connection.connection

    def wait(seconds: float) -> bool:
        return any(True for _ in listening.notifies(timeout=seconds, stop_after=1))

    try:
        yield wait
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"UNLISTEN {FINISHED_CHANNEL}")
