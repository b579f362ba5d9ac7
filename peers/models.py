from django.db import models

from peers.client import Links
from peers.identity import IdentityMissing, load_identity, peer_id


class LocalPeer(models.Model):
    """This appliance as a member of the household: one row, written by `realize init`."""

    name = models.CharField(max_length=64)
    public_key = models.BinaryField(max_length=32)
    listen_address = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Set by the heartbeat task, which beat schedules and a worker runs: a recent value
    # shows that both are alive.
    worker_seen_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def peer_id(self) -> str:
        return peer_id.encode(bytes(self.public_key))

    @classmethod
    def get(cls) -> "LocalPeer | None":
        return cls.objects.order_by("id").first()


class PeerQuerySet(models.QuerySet):
    def by_key(self, key: bytes) -> "Peer | None":
        return self.filter(public_key=key).first()


class Peer(models.Model):
    """Another member of the household, known by its key; deaf when it has no address."""

    objects = PeerQuerySet.as_manager()

    name = models.CharField(max_length=64, unique=True)
    public_key = models.BinaryField(max_length=32, unique=True)
    address = models.CharField(max_length=300, blank=True)
    added_at = models.DateTimeField(auto_now_add=True)
    # Paused: kept in the household, but neither dialled nor answered until resumed.
    paused = models.BooleanField(default=False, db_default=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def peer_id(self) -> str:
        return peer_id.encode(bytes(self.public_key))

    @property
    def is_deaf(self) -> bool:
        return not self.address

    def links(self, timeout: float) -> Links | None:
        """Data links to this peer, if it listens (a deaf peer cannot be dialled) and is not
        paused."""
        if self.is_deaf or self.paused:
            return None
        try:
            identity = load_identity()
        except IdentityMissing:
            return None
        return Links(
            self.address,
            bytes(self.public_key),
            identity,
            LocalPeer.get().name,
            timeout,
            peer=self.name,
        )


class Stranger(models.Model):
    """A key that tried to connect (or that answered at a peer's address) and was refused."""

    public_key = models.BinaryField(max_length=32, unique=True)
    address = models.CharField(max_length=300, blank=True)
    # "incoming": it connected to us; "outgoing": it answered where we expected a peer.
    direction = models.CharField(max_length=10)
    attempts = models.IntegerField(default=1)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-last_seen"]

    @property
    def peer_id(self) -> str:
        return peer_id.encode(bytes(self.public_key))
