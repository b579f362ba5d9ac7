"""An area's tree one directory at a time, from the index: what the file browser (the
pages and the API) shows.

Directories are not indexed: they are the paths' leading parts, found by the database, which
groups the entries under a directory by the next part of their path. A page of a directory
costs three queries (its children, their files, their conflicts) and the cache records of
its Unreal files, however large the area.
"""

import datetime
from dataclasses import dataclass, field
from enum import StrEnum

from django.conf import settings
from django.db import connection
from django.db.models import Q

from areas.files import blob_cache_directory, cached_share, check_relative_path, held_bytes
from areas.models import Area, Conflict, Entry

# Entries (directories, then files) on a page.
PAGE = 200
EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


class FileState(StrEnum):
    REAL = "real"  # its content is on this disk
    UNREAL = "unreal"  # known by its metadata; its content elsewhere, some of it cached
    CONFLICT = "conflict"  # a side of an open conflict


def describe_state(state: FileState, cached: float | None = None) -> str:
    """A file's state in words, as the mount's `user.realize.status` gives it."""
    if state == FileState.UNREAL:
        return f"unreal {cached or 0:.0%} cached"
    return str(state)


class NoSuchDirectory(LookupError):
    """Nothing of the area lies under this path."""


@dataclass(frozen=True)
class Directory:
    name: str
    path: str
    files: int  # under it, at any depth
    size: int


@dataclass(frozen=True)
class File:
    name: str
    path: str
    size: int
    mtime: datetime.datetime
    mode: int
    state: FileState
    # An Unreal file's share in the cache (None: Real, on this disk).
    cached: float | None = None
    # The open conflict it is a side of.
    conflict_id: int | None = None

    @property
    def status(self) -> str:
        return describe_state(self.state, self.cached)


@dataclass(frozen=True)
class Listing:
    area: Area
    directory: str  # "" for the area's root
    offset: int
    limit: int
    total: int  # entries of the directory, directories and files
    directories: list[Directory] = field(default_factory=list)
    files: list[File] = field(default_factory=list)

    @property
    def breadcrumb(self) -> list[tuple[str, str]]:
        """(name, path) of each directory from the root (the area's name) to this one."""
        crumbs = [(self.area.name, "")]
        along = ""
        for part in self.directory.split("/") if self.directory else []:
            along = f"{along}/{part}" if along else part
            crumbs.append((part, along))
        return crumbs

    @property
    def parent(self) -> str | None:
        return self.directory.rpartition("/")[0] if self.directory else None

    @property
    def page(self) -> int:
        return self.offset // self.limit + 1

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.limit))

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def previous_offset(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None


def check_directory(path: str) -> str:
    """A directory of an area as a URL gives it ("" or "/" the root; a trailing slash
    allowed); BadPath unless it is a plain relative path."""
    if path in ("", "/"):
        return ""
    return check_relative_path(path[:-1] if path.endswith("/") else path)


# The directory's children: each next part of the paths under it, a directory if more
# follows, with the count and size of the files it holds; the number of children beside.
_CHILDREN = f"""
SELECT name, is_dir, count(*), coalesce(sum(size), 0), count(*) OVER ()
FROM (
    SELECT split_part(substr(path, %(start)s), '/', 1) AS name,
           strpos(substr(path, %(start)s), '/') > 0 AS is_dir,
           size
    FROM {Entry._meta.db_table}
    WHERE area_id = %(area)s AND blob_hash IS NOT NULL AND starts_with(path, %(prefix)s)
) AS children
GROUP BY name, is_dir
ORDER BY is_dir DESC, name
OFFSET %(offset)s LIMIT %(limit)s
"""


def list_directory(area: Area, directory: str, offset: int = 0, limit: int = PAGE) -> Listing:
    """A page of a directory of the area: its directories, then its files, each by name.

    BadPath for a path no area can hold; NoSuchDirectory for one under which nothing is
    indexed (but the root). Deleted files (tombstones) are not shown."""
    directory = check_directory(directory)
    offset, limit = max(0, offset), max(1, limit)
    prefix = f"{directory}/" if directory else ""
    args = {"area": area.pk, "prefix": prefix, "start": len(prefix) + 1}
    with connection.cursor() as cursor:
        cursor.execute(_CHILDREN, {**args, "offset": offset, "limit": limit})
        rows = cursor.fetchall()
        if not rows and offset > 0:  # past the end: how many there are
            cursor.execute(_CHILDREN, {**args, "offset": 0, "limit": 1})
            rows_total = cursor.fetchall()
            total = rows_total[0][4] if rows_total else 0
        else:
            total = rows[0][4] if rows else 0
    if total == 0 and directory:
        if Entry.objects.filter(area=area, path=directory, blob_hash__isnull=False).exists():
            raise NoSuchDirectory(f"path {directory} is a file, not a directory")
        raise NoSuchDirectory(f"no directory {directory} in area {area.name}")
    directories = [
        Directory(name, prefix + name, files, size)
        for name, is_dir, files, size, _ in rows
        if is_dir
    ]
    names = [name for name, is_dir, *_ in rows if not is_dir]
    files = _files(area, [prefix + name for name in names])
    return Listing(area, directory, offset, limit, total, directories, files)


def _files(area: Area, paths: list[str]) -> list[File]:
    """These files of the area, with their state, in this order."""
    if not paths:
        return []
    entries = {
        e.path: e
        for e in Entry.objects.filter(area=area, path__in=paths, blob_hash__isnull=False).only(
            "path", "blob_hash", "size", "mtime_ns", "mode", "inode"
        )
    }
    conflicts: dict[str, int] = {}
    open_conflicts = Conflict.objects.filter(area=area, resolved_at=None).filter(
        Q(path__in=paths) | Q(copy_path__in=paths)
    )
    for pk, path, copy_path in open_conflicts.order_by("created_at", "pk").values_list(
        "pk", "path", "copy_path"
    ):  # the newest last, so kept
        conflicts[path] = pk
        if copy_path:
            conflicts[copy_path] = pk
    cache = blob_cache_directory(settings.REALIZE_HOME)
    files = []
    for path in paths:
        entry = entries.get(path)
        if entry is None:  # deleted since the directory was read
            continue
        # In an Unreal area, a file realized here is on this disk (areas.index.unreal).
        unreal = area.mode == Area.Mode.UNREAL and entry.inode == 0
        cached = (
            cached_share(held_bytes(cache, bytes(entry.blob_hash)), entry.size) if unreal else None
        )
        conflict = conflicts.get(path)
        if conflict is not None:
            state = FileState.CONFLICT
        else:
            state = FileState.UNREAL if unreal else FileState.REAL
        files.append(
            File(
                name=path.rpartition("/")[2],
                path=path,
                size=entry.size,
                mtime=_time(entry.mtime_ns),
                mode=entry.mode,
                state=state,
                cached=cached,
                conflict_id=conflict,
            )
        )
    return files


def _time(ns: int) -> datetime.datetime:
    return EPOCH + datetime.timedelta(microseconds=ns // 1000)
