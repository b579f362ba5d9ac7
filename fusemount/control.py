"""`.realize/` at the mount's root: this peer's state as files a shell can read.

Each file is made from the database (and peerd, for connections) when it is opened, so
`cat` shows the state of that moment. Read-only.
"""

import datetime
from collections.abc import Callable

from django.db import close_old_connections
from django.db.models import Count, Max, Q, Sum

from areas.models import Area, Conflict, ConsensusRun, Entry, HistoryEvent, PeerArea
from areas.status import ask_needs
from peers.client import ask_peerd
from peers.identity import peer_id
from peers.models import LocalPeer, Peer

DIRECTORY = ".realize"
FILES = ("status", "peers", "conflicts")
HISTORY = "history"
HISTORY_LINES = 200
# How long peerd may take to say what it is connected to.
PEERD_TIMEOUT = 2.0


def listing(path: str) -> list[str] | None:
    """The names in a directory of `.realize/` ("" is `.realize` itself); None: not one."""
    if path == "":
        return [*FILES, HISTORY]
    if path == HISTORY:
        close_old_connections()
        return list(Area.objects.order_by("name").values_list("name", flat=True))
    return None


def render(path: str, cache_bytes: int = 0) -> bytes | None:
    """A file of `.realize/` (its path under it), made now; None: no such file.
    `cache_bytes`: what the mount's chunk cache holds (it keeps the count)."""
    close_old_connections()
    made: Callable[[], str] | None = {
        "status": lambda: status(cache_bytes),
        "peers": peers,
        "conflicts": conflicts,
    }.get(path)
    if made is not None:
        return made().encode()
    if path.startswith(HISTORY + "/"):
        area = Area.objects.filter(name=path[len(HISTORY) + 1 :]).first()
        return history(area).encode() if area is not None else None
    return None


def status(cache_bytes: int = 0) -> str:
    me = LocalPeer.get()
    lines = []
    if me is not None:
        lines += [f"Peer {me.name}  {me.peer_id}", f"Listening on: {me.listen_address or '-'}"]
    connected = ask_peerd("connections", PEERD_TIMEOUT)
    members = list(Peer.objects.values_list("name", flat=True))
    if connected is None:
        lines.append(f"Peers: {len(members)}; the peer daemon is not running")
    else:
        online = [n for n in members if "since" in connected.get(n, {})]
        lines.append(f"Peers: {len(members)}, {len(online)} connected")
    areas = list(Area.objects.order_by("name"))
    lines.append(f"Chunk cache: {_size(cache_bytes)} (the content of Unreal files read)")
    lines.append(f"Areas: {len(areas)}")
    # How far each connected peer's history of each area is: what this peer still has to
    # take is the part past its cursor (asked now, as `realize status` would).
    heads = {}
    for name, state in (connected or {}).items():
        if "since" in state:
            told = ask_peerd("area-states", PEERD_TIMEOUT, peer=name)
            heads[name] = told if isinstance(told, dict) else {}
    for area in areas:
        lines += ["", *_area_status(area, heads)]
    return "\n".join(lines) + "\n"


def _area_status(area: Area, heads: dict[str, dict]) -> list[str]:
    files = Entry.objects.filter(area=area, blob_hash__isnull=False)
    if area.mode == Area.Mode.REAL:
        real, unreal = files, files.none()
    else:  # Real: the files realized on this disk (areas.index.unreal)
        real, unreal = files.exclude(inode=0), files.filter(inode=0)
    real_n, unreal_n = (q.aggregate(n=Count("pk"), size=Sum("size")) for q in (real, unreal))
    open_conflicts = Conflict.objects.filter(area=area, resolved_at=None).count()
    lines = [
        f"{area.name}  {area.path}  ({area.mode})",
        f"  Real: {real_n['n']} files, {_size(real_n['size'] or 0)}",
        f"  Unreal: {unreal_n['n']} files, {_size(unreal_n['size'] or 0)}",
        f"  Conflicts open: {open_conflicts}",
        f"  History: {area.history_seq} changes made or applied here",
    ]
    for shared in PeerArea.objects.filter(area=area).select_related("peer").order_by("peer"):
        waiting = max(0, area.history_seq - shared.acked_seq)
        run = ConsensusRun.objects.filter(area=area, peer=shared.peer).first()
        if run is None:
            last = "no run yet"
        elif run.status == ConsensusRun.Status.FAILED:
            last = f"last run failed {_when(run.finished_at)}: {run.error.splitlines()[0]}"
        elif run.status == ConsensusRun.Status.DONE:
            last = f"in sync as of {_when(run.finished_at)}"
        else:
            last = f"a run is {run.status}"
        told = heads.get(shared.peer.name, {}).get(area.name)
        if isinstance(told, list) and told and isinstance(told[0], int):
            needed = _needed(shared, area, told[0])
        else:
            needed = "what it has for us is unknown (not connected)"
        lines.append(f"  {shared.peer.name}: {needed}; {waiting} changes of ours to take; {last}")
    return lines


def _needed(shared: PeerArea, area: Area, head: int) -> str:
    """What this peer still has to take of the peer's history, as Syncthing counts it:
    items (paths changed there since) and the bytes of their content; Unreal areas take
    the items only."""
    if head <= shared.pulled_seq:
        return "nothing of theirs to take (up to date)"
    told = ask_needs(shared.peer.name, area.name, shared.pulled_seq)
    if told is None:
        return f"up to {head - shared.pulled_seq} changes of theirs to take"
    items = f"{told['items']} item{'' if told['items'] == 1 else 's'}"
    if area.mode == Area.Mode.UNREAL:
        return f"{items} of theirs to take"
    return f"{items}, {_size(told['bytes'])} of theirs to take"


def peers() -> str:
    connected = ask_peerd("connections", PEERD_TIMEOUT) or {}
    traffic = ask_peerd("traffic", PEERD_TIMEOUT) or {}
    lines = []
    for peer in Peer.objects.order_by("name"):
        state = connected.get(peer.name, {})
        moved = traffic.get(peer.name, {})
        if "since" in state:
            where = f"connected since {_when(_epoch(state['since']))} at {state['address']}"
        elif "last_seen" in state:
            where = f"not connected; last seen {_when(_epoch(state['last_seen']))}"
        else:
            seen = PeerArea.objects.filter(peer=peer).aggregate(at=Max("last_seen"))["at"]
            where = f"not connected; last seen {_when(seen)}" if seen else "not connected"
        address = peer.address or "deaf (it connects to us)"
        lines.append(
            f"{peer.name}  {peer.peer_id}  {address}  {where}; "
            f"sent {_size(moved.get('sent', 0))}, received {_size(moved.get('received', 0))}"
        )
    return "\n".join(lines) + "\n" if lines else "No peers yet: realize peer add NAME PEER_ID\n"


def conflicts() -> str:
    lines = []
    found = Conflict.objects.filter(resolved_at=None).select_related("area").order_by("-created_at")
    for c in found[:1000]:
        other = peer_id.encode(bytes(c.other_origin))[:7] if c.other_origin else "?"
        copy = f"; the other version at {c.copy_path}" if c.copy_path else ""
        lines.append(
            f"{_when(c.created_at)}  {c.area.name}/{c.path}: {c.description} (from {other}){copy}"
        )
    return "\n".join(lines) + "\n" if lines else "No open conflicts\n"


def history(area: Area) -> str:
    names = {bytes(k): n for k, n in Peer.objects.values_list("public_key", "name")}
    me = LocalPeer.get()
    if me is not None:
        names[bytes(me.public_key)] = f"{me.name} (here)"
    lines = []
    events = HistoryEvent.objects.filter(area=area).order_by("-seq")[:HISTORY_LINES]
    for e in events:
        by = names.get(bytes(e.origin), peer_id.encode(bytes(e.origin))[:7])
        what = f"{e.old_path} -> {e.path}" if e.kind == HistoryEvent.Kind.RENAME else e.path
        lines.append(f"{_when(e.created_at)}  {e.kind:9}  {what}  by {by}")
    return "\n".join(lines) + "\n" if lines else "No changes kept\n"


def _epoch(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)


def _when(at: datetime.datetime | None) -> str:
    return at.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else "never"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


# Extended attributes the mount gives every file of an area.
STATUS_XATTR = b"user.realize.status"
WHERE_XATTR = b"user.realize.where"
XATTRS = [STATUS_XATTR, WHERE_XATTR]


def in_conflict(area: str, path: str) -> bool:
    """Whether the file is either side of an open conflict (`user.realize.status`)."""
    close_old_connections()
    open_conflicts = Conflict.objects.filter(area__name=area, resolved_at=None)
    return open_conflicts.filter(Q(path=path) | Q(copy_path=path)).exists()


def indexed_blob(area: str, path: str) -> bytes | None:
    """The content the index knows at a Real file's path (None: not indexed yet)."""
    close_old_connections()
    found = Entry.objects.filter(area__name=area, path=path, blob_hash__isnull=False)
    blob = found.values_list("blob_hash", flat=True).first()
    return bytes(blob) if blob is not None else None


def where(area: str, here: bool, holders: list[str], connected: list[str]) -> bytes:
    """`user.realize.where`, as `git annex whereis` answers: the peers holding this version,
    one a line ("here": this peer's Real), then those sharing the area that cannot be asked
    now. `holders`: the connected peers that said they hold it."""
    close_old_connections()
    sharing = PeerArea.objects.filter(area__name=area).values_list("peer__name", flat=True)
    lines = (["here"] if here else []) + sorted(holders)
    lines += [f"{name}: not connected, unknown" for name in sorted(set(sharing) - set(connected))]
    return ("\n".join(lines) + "\n").encode() if lines else b"nowhere known\n"
