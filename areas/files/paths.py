"""Paths inside an area: what a peer may send, and where files may be written."""

import os
from pathlib import Path

MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
# Files this appliance writes while it works, named so a person who meets one in an area
# knows it (a file still arriving); never indexed, never watched, never accepted from a peer.
TEMP_PREFIX = ".realize-partial-"
# The name earlier releases gave them: what those left behind stays hidden too.
_IGNORED_PREFIXES = (TEMP_PREFIX, ".realize-tmp-")


class BadPath(ValueError):
    pass


def check_relative_path(path: str) -> str:
    """A peer-supplied area path, refused unless it is a plain relative path inside the area."""
    if not isinstance(path, str) or not path:
        raise BadPath("empty path")
    if "\x00" in path:
        raise BadPath("path contains NUL")
    if len(path.encode("utf-8", "surrogateescape")) > MAX_PATH_BYTES:
        raise BadPath("path too long")
    if path.startswith("/") or path.startswith("\\"):
        raise BadPath(f"absolute path {path!r}")
    parts = path.split("/")
    for part in parts:
        if part in ("", ".", ".."):
            raise BadPath(f"path {path!r} has an empty, '.' or '..' component")
        if len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
            raise BadPath("path component too long")
        if is_ignored(part):
            raise BadPath("reserved name")
    return path


def is_ignored(name: str) -> bool:
    """Whether a file name is one of this appliance's temporary files."""
    return name.startswith(_IGNORED_PREFIXES)


def local_path(root: str | Path, relative: str) -> Path:
    """The file of `relative` under the area root; refuses anything that would leave it."""
    check_relative_path(relative)
    root = Path(root)
    full = root / relative
    # A directory along the way that is a symlink could point out of the area.
    parent = full.parent
    while parent != root:
        if parent.is_symlink():
            raise BadPath(f"{relative!r} goes through a symbolic link")
        parent = parent.parent
    return full


class AreaPaths:
    """local_path for many paths of one area: each directory along the way checked once."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._root = str(self.root)
        self._checked: set[str] = set()  # directories (relative) known not to be symlinks

    def full(self, relative: str) -> Path:
        return Path(self.full_name(relative))

    def full_name(self, relative: str) -> str:
        """As `full`, as a string (the many files of a pull need no Path objects)."""
        check_relative_path(relative)
        directory = relative.rpartition("/")[0]
        if directory and directory not in self._checked:
            along = ""
            for part in directory.split("/"):
                along = f"{along}/{part}" if along else part
                if along in self._checked:
                    continue
                if os.path.islink(f"{self._root}/{along}"):
                    raise BadPath(f"{relative!r} goes through a symbolic link")
                self._checked.add(along)
        return f"{self._root}/{relative}"
