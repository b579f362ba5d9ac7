"""Peers simulated in memory, running the real sync rule (`decide`, `news`) and the real
folding of history (`collapse`), for the model check (tests/faults/test_model.py).

A simulated peer keeps what the index and the history keep: entries (files and tombstones,
each with its version vector), its history (each change with its identity and versions), a
cursor per peer, and the acks that let it trim. The effects of each step mirror
areas.pull.applier; meeting mirrors a consensus (each pulls the other, a snapshot when the
history it needs is trimmed).
"""

from dataclasses import dataclass, field

from areas.index import Kind, RemoteEvent
from areas.index.versions import Vector, bump, merge
from areas.pull import Do, Version, collapse, decide, news

Identity = tuple[bytes, int]


@dataclass
class Ent:
    blob: bytes | None  # None: a tombstone
    deleted: bytes | None = None  # a tombstone's last content
    mtime: int = 0
    origin: bytes = b""
    version: Vector = ()  # the change that made it
    known: Vector = ()  # every change of the path decided here
    deleted_version: Vector = ()  # a tombstone's: the version of the content it deleted
    stamp: tuple = (0, b"")  # the strongest content of its history (areas.pull.rules)
    moved: bool = False  # made by a move


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
    versions: dict  # its peer's version of every path when it was made


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
        self.pulled: dict[str, int] = {}  # of each peer's history, applied here up to
        self.acked: dict[str, int] = {}  # of this history, each known peer applied up to

    # --- what a user does ----------------------------------------------------------------------
    def live(self) -> dict[str, bytes]:
        return {p: e.blob for p, e in self.entries.items() if e.blob is not None}

    def _user(self, paths: tuple[str, ...], blobs: tuple[bytes, ...]) -> None:
        versions = {p: e.known for p, e in self.entries.items()}
        self.world.ops.append(UserOp(self.name, paths, blobs, versions))

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
        self.entries[new].stamp = max(self.entries[new].stamp, self.entries[path].stamp)
        self._record(Kind.RENAME, new, blob, None, old_path=path)

    # --- the index and the history -------------------------------------------------------------
    def _put(self, path: str, blob: bytes, mtime: int, origin: bytes) -> None:
        old = self.entries.get(path) or Ent(None)
        stamp = max(old.stamp, (mtime, blob))  # this peer's change; a peer's sets its own
        self.entries[path] = Ent(blob, None, mtime, origin, old.version, old.known, (), stamp)

    def _bury(self, path: str) -> None:
        e = self.entries[path]
        if e.blob is not None:
            self.entries[path] = Ent(None, e.blob, e.mtime, e.origin, e.version, e.known, e.version,
                                     e.stamp)  # fmt: skip

    def _record(self, kind, path, blob, base, old_path="", relayed: RemoteEvent | None = None,
                copy_version=None, copy_stamp=(0, b"")):  # fmt: skip
        """A change in the history: this peer's own (its version bumped, as
        areas.index.history.append does; a conflict copy's given), or a peer's, relayed
        with its versions."""
        assert kind != Kind.RENAME or old_path, "a rename recorded without its source"
        self.head += 1
        if relayed is None:
            identity = (self.key, self.head)
            for p in (path, old_path):
                if p and copy_version is None:
                    made = bump(self.entries[p].known, *identity)
                    self.entries[p].version = self.entries[p].known = made
            for p in (path, old_path):
                if p:
                    self.entries[p].moved = bool(old_path)
            if copy_version is not None:  # its own version, not a bump (as history._own)
                e = self.entries[path]
                e.version, e.known = copy_version, merge(e.known, copy_version)
                e.stamp = copy_stamp
            version = self.entries[path].version
            old_version = self.entries[old_path].version if old_path else ()
            # What a delete deleted, what a rename moved: buried by now.
            gone = self.entries[old_path or path]
            base_version = gone.deleted_version if kind in (Kind.DELETE, Kind.RENAME) else ()
        else:
            identity = (relayed.origin, relayed.origin_seq)
            version, old_version = _versions_of(relayed, path, old_path)
            base_version = relayed.base_version
        stamp = self.entries[path].stamp
        if relayed is not None:  # a rename's source, relayed as a delete: its own stamp
            moved_from = relayed.kind == Kind.RENAME and path == relayed.old_path
            stamp = relayed.old_stamp if moved_from else relayed.stamp
        old_stamp = self.entries[old_path].stamp if old_path else (0, b"")
        if relayed is not None:
            old_stamp = relayed.old_stamp
        mtime = self.entries[path].mtime if path in self.entries else 0
        # A part of a peer's rename, relayed alone, says it moved content.
        moved = relayed is not None and kind != Kind.RENAME
        moved = moved and (relayed.kind == Kind.RENAME or relayed.moved)
        self.history.append(
            RemoteEvent(self.head, kind, path, old_path, blob, base, 1, mtime, 0o644, *identity,
                        version=version, old_version=old_version,
                        base_version=base_version, stamp=stamp,
                        old_stamp=old_stamp, moved=moved)  # fmt: skip
        )
        return identity

    def version(self, path: str) -> Version | None:
        e = self.entries.get(path)
        if e is None:
            return None
        if e.blob is None:
            return Version(e.deleted, mtime_ns=e.mtime, gone=True, version=e.version,
                           known=e.known, deleted_version=e.deleted_version,
                           stamp=e.stamp, moved=e.moved)  # fmt: skip
        return Version(e.blob, 0o644, e.mtime, e.origin, version=e.version, known=e.known,
                       stamp=e.stamp, moved=e.moved)  # fmt: skip

    # --- answering a peer ------------------------------------------------------------------------
    def history_for(self, asker: "Peer", since: int) -> tuple[list[RemoteEvent], int]:
        self.acked.setdefault(asker.name, 0)  # known from now: trims wait for it
        if since < self.trimmed:
            events = []
            for path, e in sorted(self.entries.items()):
                kind = Kind.DELETE if e.blob is None else Kind.CREATE
                base = e.deleted if e.blob is None else None
                events.append(
                    RemoteEvent(self.head, kind, path, "", e.blob, base, 1, e.mtime, 0o644,
                                e.origin, 0, version=e.version, known=e.known,
                                base_version=e.deleted_version if e.blob is None else (),
                                stamp=e.stamp, moved=e.moved, snapshot=True)
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
        for e in collapse([e for e in received if news(e, self.version)]):
            for step in decide(e, self.version, self.key):
                self._carry_out(step, e)
        self.pulled[other.name] = following
        other.ack(self, following)

    def _carry_out(self, step, e: RemoteEvent) -> None:
        path = step.path
        if step.conflict:
            self.world.conflicts += 1
        if step.do == Do.KEEP:
            if path not in self.entries:
                self.entries[path] = Ent(None)
            self._versioned(path, step.version, step.known, step.deleted, step.stamp, step.moved)
        elif step.do == Do.SET_STATUS:
            self._record(Kind.EDIT, path, e.blob, e.blob, relayed=e)
            self._versioned(path, step.version, step.known, stamp=step.stamp, moved=step.moved)
        elif step.do == Do.WRITE:
            kind = step.kind if e.kind != Kind.RENAME else Kind.CREATE
            self._put(path, e.blob, e.mtime_ns, e.origin)
            self._record(kind, path, e.blob, step.base, relayed=e)
            self._versioned(path, step.version, step.known, stamp=step.stamp, moved=step.moved)
        elif step.do == Do.DELETE:
            if step.copy:
                self._aside(path, step.copy, step.copy_version)
            self._bury(path)
            self._versioned(path, step.version, step.known, step.deleted, step.stamp, step.moved)
            self._record(Kind.DELETE, path, None, step.base, relayed=e)
        elif step.do == Do.MOVE:
            if step.copy:
                self._aside(path, step.copy, step.copy_version)  # then overwritten
            else:
                held = self.live().get(path)
                assert held in (None, e.blob, step.kept, step.base), "a move over another version"
            mtime = self.entries[step.source].mtime
            self._bury(step.source)
            self._put(path, e.blob, mtime, e.origin)
            self._versioned(step.source, step.source_version, step.source_known, step.deleted,
                            moved=True)  # fmt: skip
            if step.own:  # the moved file went to a conflict copy: its source's delete
                self._record(Kind.DELETE, step.source, None, e.blob, relayed=e)
                self._record(Kind.CREATE, path, e.blob, None, copy_version=step.version,
                             copy_stamp=step.stamp)  # fmt: skip
            else:
                self._record(Kind.RENAME, path, e.blob, None, old_path=step.source, relayed=e)
                self._versioned(path, step.version, step.known, stamp=step.stamp, moved=step.moved)
        elif step.do == Do.THEIRS_WIN:
            if step.copy:
                self._aside(path, step.copy, step.copy_version)
            self._put(path, e.blob, e.mtime_ns, e.origin)
            self._record(Kind.CREATE, path, e.blob, None, relayed=e)
            self._versioned(path, step.version, step.known, stamp=step.stamp, moved=step.moved)
        elif step.do == Do.MINE_WIN:
            self._put(step.copy, e.blob, e.mtime_ns, e.origin)
            self._record(Kind.CREATE, step.copy, e.blob, None, copy_version=step.copy_version,
                         copy_stamp=step.copy_stamp)  # fmt: skip
            self._versioned(path, step.version, step.known, step.deleted, step.stamp, step.moved)

    def _versioned(self, path: str, version: Vector, known: Vector, deleted=None,
                   stamp=(0, b""), moved=False) -> None:  # fmt: skip
        e = self.entries[path]
        e.version, e.known, e.stamp, e.moved = version, known, stamp, moved
        if deleted is not None:  # a tombstone's: what it deleted
            e.deleted, e.mtime, e.deleted_version = deleted.blob, deleted.mtime_ns, deleted.version
            e.stamp = deleted.stamp

    def _aside(self, path: str, copy: str, version: Vector) -> None:
        """This peer's version at `path` goes to a conflict copy: a create of its own."""
        mine = self.entries[path]
        held = self.live().get(copy)
        assert held is None or held == mine.blob, "a copy over another version"
        self._put(copy, mine.blob, mine.mtime, mine.origin)
        self._record(Kind.CREATE, copy, mine.blob, None, copy_version=version,
                     copy_stamp=mine.stamp)  # fmt: skip



def _versions_of(e: RemoteEvent, path: str, old_path: str) -> tuple[Vector, Vector]:
    """The versions a relayed change records: those it carried for these paths."""
    def of(p: str) -> Vector:
        return e.old_version if e.kind == Kind.RENAME and p == e.old_path else e.version
    return of(path), (of(old_path) if old_path else ())


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
