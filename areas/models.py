from django.db import models

from peers.models import Peer


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
    # The last sequence number given to a local history event of this area.
    history_seq = models.BigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Blob(models.Model):
    """A file version, named by the BLAKE3 hash of its content; an ordered list of chunks.

    The tables written a row per file or chunk (chunks, entries, history, seen changes) refer
    to their blob or area without a constraint in the database: this project's code inserts
    them only beside what they refer to, and deletes through the ORM (which cascades itself);
    a constraint checked its reference with a query and a row lock for every row inserted,
    tens of thousands per pull."""

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
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["area", "seq"]
        constraints = [models.UniqueConstraint(fields=["area", "seq"], name="history_seq")]


class PeerArea(models.Model):
    """What this peer knows of a household peer's copy of an area."""

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="areas")
    area = models.ForeignKey(Area, on_delete=models.CASCADE, related_name="peers")
    # The peer's history applied here, up to this sequence number of the peer's.
    pulled_seq = models.BigIntegerField(default=0)
    # This peer's history the peer has applied, up to this sequence number of ours.
    acked_seq = models.BigIntegerField(default=0)
    last_seen = models.DateTimeField(null=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["peer", "area"], name="peerarea")]


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

    class Meta:
        ordering = ["-created_at"]


class ConsensusRun(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed"

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

    class Meta:
        ordering = ["-requested_at"]


class SeenChange(models.Model):
    """A change this peer has applied or made, by its identity: the peer it started on and
    its sequence number there. The same change reaching us again through another peer is
    recognised and skipped, whatever the order in which peers pass it on."""

    area = models.ForeignKey(
        Area, on_delete=models.CASCADE, related_name="seen", db_index=False, db_constraint=False
    )  # indexed by the unique (area, origin, origin_seq) index; no constraint (see Blob)
    origin = models.BinaryField(max_length=32)
    origin_seq = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["area", "origin", "origin_seq"], name="seenchange")
        ]
