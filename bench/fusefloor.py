"""The floor under the mount's metadata figures: a pyfuse3 filesystem that does nothing but
answer from a dict, with the mount's timeouts, over the names of a directory read once.

The mount's cold stat is one FUSE lookup per file. Measured beside it in the same round,
this shows how much of that cost is pyfuse3's own request path (the binding DESIGN.md
chose), and how much is the mount's.

    python -m bench.fusefloor MOUNTPOINT SOURCE
"""

import errno
import os
import sys

import pyfuse3
import trio

# As fusemount.fs.TIMEOUT: the kernel keeps names and attributes this long.
TIMEOUT = 1.0
ROOT = pyfuse3.ROOT_INODE


class Floor(pyfuse3.Operations):
    """SOURCE's tree as it was at the start: its names, modes and sizes, from memory."""

    def __init__(self, source: str) -> None:
        super().__init__()
        self.children: dict[int, dict[bytes, int]] = {}
        self.stats: dict[int, os.stat_result] = {ROOT: os.lstat(source)}
        inodes = {source: ROOT}
        for directory, dirs, files in os.walk(source):
            names = self.children[inodes[directory]] = {}
            for name in sorted(dirs + files):
                path = os.path.join(directory, name)
                inode = inodes[path] = ROOT + len(inodes)
                names[os.fsencode(name)] = inode
                self.stats[inode] = os.lstat(path)

    def _attributes(self, inode: int) -> pyfuse3.EntryAttributes:
        st = self.stats[inode]
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.entry_timeout = a.attr_timeout = TIMEOUT
        a.st_mode, a.st_nlink, a.st_size = st.st_mode, st.st_nlink, st.st_size
        return a

    async def getattr(self, inode, ctx=None):
        return self._attributes(inode)

    async def lookup(self, parent_inode, name, ctx=None):
        inode = self.children.get(parent_inode, {}).get(name)
        if inode is None:
            raise pyfuse3.FUSEError(errno.ENOENT)
        return self._attributes(inode)

    async def opendir(self, inode, ctx):
        return inode

    async def readdir(self, fh, start_id, token):
        names = list(self.children.get(fh, {}).items())
        for i in range(start_id, len(names)):
            name, inode = names[i]
            if not pyfuse3.readdir_reply(token, name, self._attributes(inode), i + 1):
                return


def main() -> None:
    where, source = sys.argv[1], sys.argv[2]
    options = set(pyfuse3.default_options) | {"fsname=fusefloor"}
    pyfuse3.init(Floor(source), where, options)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
