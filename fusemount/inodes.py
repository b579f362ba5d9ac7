"""Inode numbers for the mount: one per (area, path), stable while mounted.

The kernel keys its caches and open files by inode number, so a file keeps its number when
it is renamed, and a new file at a deleted file's path gets a new one. Numbers are never
reused while mounted: a stale number can only ever fail, never reach another file.
"""

import pyfuse3

ROOT = pyfuse3.ROOT_INODE

# (area name, path relative to the area's root; "" is the area itself). The root: ("", "").
Key = tuple[str, str]


class Inodes:
    def __init__(self) -> None:
        self._numbers: dict[Key, int] = {("", ""): ROOT}
        self._keys: dict[int, Key] = {ROOT: ("", "")}
        self._next = ROOT + 1

    def number(self, key: Key) -> int:
        """The inode of a path, given one if it has none yet."""
        found = self._numbers.get(key)
        if found is None:
            found = self._numbers[key] = self._next
            self._keys[found] = key
            self._next += 1
        return found

    def known(self, key: Key) -> int | None:
        """The inode of a path, if it has one."""
        return self._numbers.get(key)

    def key(self, inode: int) -> Key | None:
        """The path an inode stands for now; None for one unknown or deleted."""
        return self._keys.get(inode)

    def deleted(self, key: Key) -> None:
        """The path is gone: its inode stands for nothing, and a new file there gets a new
        one. (A file still open keeps working through its handle.)"""
        number = self._numbers.pop(key, None)
        if number is not None:
            self._keys.pop(number, None)

    def forget_area(self, area: str) -> None:
        """The area is gone, or is now another directory: none of its numbers stands for
        anything (the kernel must not serve the old files' cached pages as the new ones)."""
        for key in [k for k in self._numbers if k[0] == area]:
            self.deleted(key)

    def renamed(self, old: Key, new: Key) -> None:
        """A file or directory moved: it and everything under it keep their numbers."""
        self.deleted(new)  # what the rename replaced
        area, path = old
        prefix = path + "/"
        moved = [
            k for k in self._numbers if k[0] == area and (k[1] == path or k[1].startswith(prefix))
        ]
        for k in moved:
            number = self._numbers.pop(k)
            to = (new[0], new[1] + k[1][len(path) :])
            self._numbers[to] = number
            self._keys[number] = to
