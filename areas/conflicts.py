"""A conflict looked at and resolved by a person: both versions compared, one kept, the
other, or both under two names.

Resolving changes files in the area's directory, as a person would by hand: the copy is
deleted, moved over the path, or renamed. The watcher records that in the history like
any change, and peers take it; a peer whose copy goes that way sees the conflict resolved
too (ConflictQuerySet.settle). The conflict is marked resolved here at once.

In an Unreal area a side may not be on this disk. Deleting an Unreal copy is recorded
in the index at once (delete_unreal). Keeping a copy whose content is not here waits for
it: the mount fetches it (fusemount.realizer), then carries the choice out.
"""

import datetime
import difflib
import os
from dataclasses import dataclass
from pathlib import Path

from django.utils import timezone

from areas.files import check_relative_path, is_ignored
from areas.files.paths import BadPath, local_path
from areas.index import AreaBusy, VersionGone, delete_unreal, index_lock_within
from areas.models import Area, Conflict, Entry
from areas.register import AreaError
from peers.models import LocalPeer, Peer

# Files larger than this are not diffed; nor files that are not UTF-8 text.
DIFF_LIMIT = 1024 * 1024
DIFF_LINES = 2000
BUSY_WAIT = 10.0


class Choice:
    PATH = "path"  # keep what is at the path; the copy goes
    COPY = "copy"  # keep the copy: it replaces what is at the path
    BOTH = "both"  # keep both, the copy under a name of one's choosing
    ALL = (PATH, COPY, BOTH)


@dataclass
class Side:
    """One version of a conflict, as it is now."""

    path: str
    exists: bool
    size: int = 0
    mtime_ns: int = 0
    by: str = ""  # the peer whose version it is
    on_disk: bool = False  # its content is on this disk (an Unreal area's may not be)

    @property
    def modified(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self.mtime_ns / 1e9, tz=datetime.UTC)


@dataclass
class Comparison:
    at_path: Side
    at_copy: Side | None  # None: no copy was made (an edit met a delete)
    diff: list[tuple[str, str]] | None  # (kind, line): "+", "-", " ", "@"; None: no text diff
    why_no_diff: str = ""


def compare(conflict: Conflict) -> Comparison:
    area = conflict.area
    names = _names()
    mine = bytes(conflict.kept_hash) if conflict.kept_hash is not None else None
    theirs = bytes(conflict.other_hash) if conflict.other_hash is not None else None
    other = names.get(bytes(conflict.other_origin), "another peer")

    def side(path: str) -> Side:
        entry = Entry.objects.filter(area=area, path=path, blob_hash__isnull=False).first()
        if entry is None:
            return Side(path, False)
        blob = bytes(entry.blob_hash)
        by = (
            "this peer"
            if blob == mine and blob != theirs
            else other
            if blob == theirs
            else names.get(bytes(entry.origin), "a peer")
        )
        full = local_path(area.path, path)
        return Side(path, True, entry.size, entry.mtime_ns, by, full.is_file())

    at_path = side(conflict.path)
    at_copy = side(conflict.copy_path) if conflict.copy_path else None
    diff, why = None, ""
    if at_copy is None or not (at_path.exists and at_copy.exists):
        why = "one side is gone"
    elif not (at_path.on_disk and at_copy.on_disk):
        why = "the content is not on this disk (an Unreal file)"
    elif max(at_path.size, at_copy.size) > DIFF_LIMIT:
        why = "larger than 1 MiB"
    else:
        a = _text(local_path(area.path, conflict.path))
        b = _text(local_path(area.path, conflict.copy_path))
        if a is None or b is None:
            why = "not text"
        else:
            diff = _diff(a, b, conflict.path, conflict.copy_path)
    return Comparison(at_path, at_copy, diff, why)


def resolve(conflict: Conflict, choice: str, new_name: str = "") -> str:
    """Carry out a person's choice; what was done, as a sentence. AreaError if it cannot
    be done as asked (the files changed since they were shown, say)."""
    if conflict.resolved_at is not None:
        raise AreaError("this conflict is resolved already")
    if choice not in Choice.ALL:
        raise AreaError("choose which version to keep")
    area, new_name = conflict.area, new_name.strip()
    if _waits_for_copy(conflict, choice, new_name):
        Conflict.objects.filter(pk=conflict.pk).update(resolving=choice, resolving_name=new_name)
        return (
            f"The copy {conflict.copy_path} is not on this disk: the mount fetches it, then "
            "carries out your choice (the conflict shows resolved then)."
        )
    try:
        with index_lock_within(area.pk, BUSY_WAIT):
            done = _carry_out(conflict, choice, new_name)
    except AreaBusy:
        raise AreaError("the area is busy (a scan or a consensus): try again in a moment") from None
    except VersionGone as exc:
        raise AreaError(f"{exc}: reload the page in a moment") from None
    Conflict.objects.filter(pk=conflict.pk).update(
        resolved_at=timezone.now(), resolving="", resolving_name=""
    )
    return done


def _waits_for_copy(conflict: Conflict, choice: str, new_name: str) -> bool:
    """Whether the choice keeps a copy whose content is not on this disk (Unreal)."""
    if not conflict.copy_path or choice == Choice.PATH:
        return False
    if choice == Choice.BOTH and new_name in ("", conflict.copy_path):
        return False  # nothing moves
    return not local_path(conflict.area.path, conflict.copy_path).is_file()


def _carry_out(conflict: Conflict, choice: str, new_name: str) -> str:
    area = conflict.area
    path = local_path(area.path, conflict.path)
    if not conflict.copy_path:
        # An edit met a delete: the edit was kept. Keeping it is all there is to do.
        if choice != Choice.PATH:
            raise AreaError("there is no copy: only the version at the path was kept")
        return f"Kept {conflict.path}."
    copy = local_path(area.path, conflict.copy_path)
    for full, rel in ((path, conflict.path), (copy, conflict.copy_path)):
        if not _as_indexed(area, rel, full):
            raise AreaError(f"{rel} changed since this page was shown: reload it in a moment")
    if choice == Choice.PATH:
        if copy.is_file():
            os.unlink(copy)
        else:  # an Unreal copy: gone from the index, as a scan records a file gone
            blob = Entry.objects.get(area=area, path=conflict.copy_path).blob_hash
            delete_unreal(area, conflict.copy_path, bytes(blob), _local_key(), BUSY_WAIT)
        return f"Kept {conflict.path}; deleted the copy {conflict.copy_path}."
    if choice == Choice.COPY:
        path.parent.mkdir(parents=True, exist_ok=True)  # an Unreal path's may not be here
        os.replace(copy, path)
        return f"Kept the copy's version at {conflict.path}."
    target_rel = new_name or conflict.copy_path
    try:
        check_relative_path(target_rel)
    except BadPath as exc:
        raise AreaError(f"the new name cannot be used: {exc}") from None
    if is_ignored(Path(target_rel).name):
        raise AreaError("the new name is one Realize keeps for its own files")
    if target_rel == conflict.copy_path:
        return f"Kept both: {conflict.path} and {conflict.copy_path}."
    target = local_path(area.path, target_rel)
    if target.exists() or target.is_symlink():
        raise AreaError(f"{target_rel} exists already: choose another name")
    target.parent.mkdir(parents=True, exist_ok=True)
    os.rename(copy, target)
    return f"Kept both: {conflict.path} and {target_rel}."


def _as_indexed(area: Area, rel: str, full: Path) -> bool:
    """Whether the file is still what the index says (size and time), so the version a
    person chose is the one acted on; in an Unreal area, a file the index knows as not on
    this disk, and that is not."""
    entry = Entry.objects.filter(area=area, path=rel, blob_hash__isnull=False).first()
    if entry is None:
        return False
    try:
        st = full.lstat()
    except FileNotFoundError:
        return area.mode == Area.Mode.UNREAL and entry.inode == 0
    except OSError:
        return False
    return (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)


def _local_key() -> bytes:
    return bytes(LocalPeer.get().public_key)


def _names() -> dict[bytes, str]:
    names = {bytes(key): name for key, name in Peer.objects.values_list("public_key", "name")}
    me = LocalPeer.get()
    if me is not None:
        names[bytes(me.public_key)] = "this peer"
    return names


def _text(full: Path) -> list[str] | None:
    try:
        return full.read_bytes().decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None


def _diff(a: list[str], b: list[str], name_a: str, name_b: str) -> list[tuple[str, str]]:
    lines = []
    for line in difflib.unified_diff(a, b, name_a, name_b, lineterm="", n=3):
        if line.startswith(("---", "+++")):
            continue
        lines.append((line[:1] if line[:1] in "+-@" else " ", line))
        if len(lines) >= DIFF_LINES:
            lines.append(("@", f"... cut at {DIFF_LINES} lines"))
            break
    return lines
