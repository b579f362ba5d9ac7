"""Peers simulated in memory, running the real sync rule (`decide`) and the real folding of
history (`collapse`), for the model check (tests/faults/test_model.py).

A simulated peer keeps what the index and the history keep: entries (files and tombstones,
each with the identity of its last change), its history with change identities, the
identities it has seen, a cursor per peer, and the acks that let it trim. The effects of
each step mirror areas.pull.applier; meeting mirrors a consensus (each pulls the other, a
snapshot when the history it needs is trimmed).
"""

from dataclasses import dataclass, field
from pathlib import PurePosixPath

from areas.index import Kind, RemoteEvent
from areas.pull import Do, Version, collapse, decide

Identity = tuple[bytes, int]


@dataclass
class Ent:
    blob: bytes | None  # None: a tombstone
    deleted: bytes | None = None  # a tombstone's last content
    mtime: int = 0
    origin: bytes = b""
    change: Identity = (b"", 0)  # the last change recorded at the path
    moved_to: str = ""  # a tombstone whose content moved: where
    base: bytes | None = None  # the content this version replaced here


@dataclass
class Written:
    """A version a user wrote, and what became of it."""

    blob: bytes
    peer: str
    path: str


@dataclass
class UserDelete:
    peer: str
    path: str
    blob: bytes
    identity: Identity


@dataclass
class UserOp:
    peer: str
    paths: tuple[str, ...]
    blobs: tuple[bytes, ...]
    knew: frozenset  # the identities its peer had seen when it was made


@dataclass
class World:
    clock: int = 0
    written: list[Written] = field(default_factory=list)
    superseded: set[bytes] = field(default_factory=set)  # versions a user edited or deleted
    deletes: list[UserDelete] = field(default_factory=list)
    ops: list[UserOp] = field(default_factory=list)
    conflicts: int = 0

    def tick(self) -> int:
        self.clock += 1
        return self.clock * 1_000_000_000

    def new_blob(self) -> bytes:
        self.clock += 1
        return self.clock.to_bytes(32, "big")


class Peer:
    def __init__(self, name: str, key: bytes, world: World):
        self.name, self.key, self.world = name, key, world
        self.entries: dict[str, Ent] = {}
        self.history: list[RemoteEvent] = []  # seq is the index + 1 + trimmed
        self.trimmed = 0  # the highest seq trimmed
        self.head = 0
        self.seen: set[Identity] = set()
        # Of each origin, every change up to this number is seen (what a snapshot reflects).
        self.seen_upto: dict[bytes, int] = {}
        self.pulled: dict[str, int] = {}  # of each peer's history, applied here up to
        self.acked: dict[str, int] = {}  # of this history, each known peer applied up to

    # --- what a user does ----------------------------------------------------------------------
    def live(self) -> dict[str, bytes]:
        return {p: e.blob for p, e in self.entries.items() if e.blob is not None}

    def _user(self, paths: tuple[str, ...], blobs: tuple[bytes, ...]) -> None:
        self.world.ops.append(UserOp(self.name, paths, blobs, frozenset(self.seen)))

    def create(self, path: str) -> None:
        if path in self.live():
            return
        blob = self.world.new_blob()
        self.world.written.append(Written(blob, self.name, path))
        self._user((path,), (blob,))
        self._put(path, blob, self.world.tick(), self.key)
        self._record(Kind.CREATE, path, blob, None)

    def edit(self, path: str) -> None:
        old = self.live().get(path)
        if old is None:
            return
        blob = self.world.new_blob()
        self.world.written.append(Written(blob, self.name, path))
        self.world.superseded.add(old)
        self._user((path,), (old, blob))
        self._put(path, blob, self.world.tick(), self.key)
        self._record(Kind.EDIT, path, blob, old)

    def delete(self, path: str) -> None:
        old = self.live().get(path)
        if old is None:
            return
        self.world.superseded.add(old)
        self._user((path,), (old,))
        self._bury(path)
        identity = self._record(Kind.DELETE, path, None, old)
        self.world.deletes.append(UserDelete(self.name, path, old, identity))

    def rename(self, path: str, new: str) -> None:
        live = self.live()
        if path not in live or new in live or new == path:
            return
        blob = live[path]
        self._user((path, new), (blob,))
        self._bury(path)
        self._put(new, blob, self.entries[path].mtime, self.key)
        self._record(Kind.RENAME, new, blob, None, old_path=path)

    # --- the index and the history -------------------------------------------------------------
    def _put(self, path: str, blob: bytes, mtime: int, origin: bytes) -> None:
        old = self.entries.get(path) or Ent(None)
        self.entries[path] = Ent(blob, None, mtime, origin, old.change, old.moved_to, old.base)

    def _bury(self, path: str) -> None:
        e = self.entries[path]
        self.entries[path] = Ent(None, e.blob, e.mtime, e.origin, e.change, e.moved_to, e.base)

    def _record(self, kind, path, blob, base, old_path="", identity: Identity | None = None,
                also=()):  # fmt: skip
        assert kind != Kind.RENAME or old_path, "a rename recorded without its source"
        self.head += 1
        identity = identity or (self.key, self.head)
        mtime = self.entries[path].mtime if path in self.entries else 0
        self.history.append(
            RemoteEvent(self.head, kind, path, old_path, blob, base, 1, mtime, 0o644, *identity,
                        also=tuple(also))  # fmt: skip
        )
        self.seen.add(identity)
        for p in (path, old_path):
            if p in self.entries:
                self.entries[p].change = identity
                if p == old_path:
                    self.entries[p].moved_to = path
                if p == path and blob is not None:
                    self.entries[p].base = base  # a delete keeps the deleted version's
        return identity

    def version(self, path: str) -> Version | None:
        e = self.entries.get(path)
        if e is None:
            return None
        if e.blob is None:
            if e.deleted is None:
                return None
            return Version(e.deleted, gone=True, moved_to=e.moved_to, base=e.base,
                           change=e.change)  # fmt: skip
        return Version(e.blob, 0o644, e.mtime, e.origin, moved_to=e.moved_to, base=e.base,
                       change=e.change)  # fmt: skip

    # --- answering a peer ------------------------------------------------------------------------
    def history_for(self, asker: "Peer", since: int) -> tuple[list[RemoteEvent], int]:
        self.acked.setdefault(asker.name, 0)  # known from now: trims wait for it
        if since < self.trimmed:
            events = []
            for path, e in sorted(self.entries.items()):
                if e.blob is None and e.deleted is None:
                    continue
                kind = Kind.DELETE if e.blob is None else Kind.CREATE
                base = e.deleted if e.blob is None else None
                events.append(
                    RemoteEvent(self.head, kind, path, "", e.blob, base, 1, e.mtime, 0o644,
                                e.change[0] or e.origin, e.change[1], snapshot=True)
                )  # fmt: skip
            return events, self.head
        return [e for e in self.history if e.seq > since and e.origin != asker.key], self.head

    def ack(self, asker: "Peer", seq: int) -> None:
        self.acked[asker.name] = max(self.acked.get(asker.name, 0), seq)
        low = min(self.acked.values())
        if low > self.trimmed:
            self.history = [e for e in self.history if e.seq > low]
            self.trimmed = low

    # --- pulling ---------------------------------------------------------------------------------
    def pull(self, other: "Peer") -> None:
        received, following = other.history_for(self, self.pulled.get(other.name, 0))
        fresh = [e for e in received if not (e.origin_seq and self._seen(e))]
        events, gone = collapse(fresh)
        self.seen.update(gone)
        for e in events:
            for step in decide(e, self.version, self.key):
                self._carry_out(step, e)
            if e.origin_seq:
                self.seen.add((e.origin, e.origin_seq))
            self.seen.update(e.also)
        for e in received if received and received[0].snapshot else []:
            if e.origin_seq > self.seen_upto.get(e.origin, 0):
                self.seen_upto[e.origin] = e.origin_seq
        self.pulled[other.name] = following
        other.ack(self, following)

    def _seen(self, e: RemoteEvent) -> bool:
        if e.origin == self.key or (e.origin, e.origin_seq) in self.seen:
            return True
        return e.origin_seq <= self.seen_upto.get(e.origin, 0)

    def _carry_out(self, step, e: RemoteEvent) -> None:
        identity = None if step.own or not e.origin_seq else (e.origin, e.origin_seq)
        also = e.also if identity else ()  # folded identities travel with the change
        path = step.path
        if step.conflict:
            self.world.conflicts += 1
        if step.do == Do.SET_STATUS:
            self._record(Kind.EDIT, path, e.blob, e.blob, identity=identity, also=also)
        elif step.do == Do.WRITE:
            self._put(path, e.blob, e.mtime_ns, e.origin)
            self._record(step.kind, path, e.blob, step.base, identity=identity, also=also)
        elif step.do == Do.DELETE:
            self._bury(path)
            self._record(Kind.DELETE, path, None, step.base, identity=identity, also=also)
        elif step.do == Do.REMEMBER:
            change = (e.origin, e.origin_seq)
            self.entries[path] = Ent(None, step.base, e.mtime_ns, e.origin, change)
        elif step.do == Do.MOVE:
            if step.copy:
                self._aside(path, step.copy)
            held = self.live().get(path)
            assert held is None or held == e.blob, "a move over another version"
            mtime = self.entries[e.old_path].mtime
            self._bury(e.old_path)
            self._put(path, e.blob, mtime, e.origin)
            self._record(Kind.RENAME, path, e.blob, None, old_path=e.old_path,
                         identity=identity, also=also)  # fmt: skip
        elif step.do == Do.THEIRS_WIN:
            self._aside(path, step.copy)
            self._put(path, e.blob, e.mtime_ns, e.origin)
            self._record(Kind.CREATE, path, e.blob, None, identity=identity, also=also)
        elif step.do == Do.MINE_WIN:
            self._put(step.copy, e.blob, e.mtime_ns, e.origin)
            self._record(Kind.CREATE, step.copy, e.blob, None)  # the copy: its own change

    def _aside(self, path: str, copy: str) -> None:
        """This peer's version at `path` moves aside to a conflict copy (its own change)."""
        copy = self._free(copy)
        mine = self.entries[path]
        self._bury(path)
        self._put(copy, mine.blob, mine.mtime, mine.origin)
        self._record(Kind.RENAME, copy, mine.blob, None, old_path=path)

    def _free(self, copy: str) -> str:
        n, name, p = 0, copy, PurePosixPath(copy)
        while name in self.live():  # as the applier names it (Applier._move_aside)
            n += 1
            name = str(p.with_name(f"{p.stem}-{n}{p.suffix}"))
        return name


def meet(a: Peer, b: Peer) -> None:
    """A consensus: each applies the other's changes."""
    a.pull(b)
    b.pull(a)


def settle(peers: list[Peer], rounds: int = 8) -> bool:
    """Every pair meets until nothing changes; whether it settled."""
    for _ in range(rounds):
        before = [(p.head, dict(p.live())) for p in peers]
        for a in peers:
            for b in peers:
                if a is not b:
                    meet(a, b)
        if [(p.head, p.live()) for p in peers] == before:
            return True
    return False

