"""The floor under the mount's metadata figures: a pyfuse3 filesystem that does nothing but
answer from a dict, with the mount's timeouts, over a tree of the bench's shape.

The mount's cold stat is one FUSE lookup per file. Measured beside it in the same round,
this shows how much of that cost is pyfuse3's own request path (the binding DESIGN.md
chose), and how much is the mount's.

    python -m bench.fusefloor MOUNTPOINT DIRECTORIES FILES_PER_DIRECTORY
"""

import errno
import stat
import sys

import pyfuse3
import trio

# As fusemount.fs.TIMEOUT: the kernel keeps names and attributes this long.
TIMEOUT = 1.0
ROOT = pyfuse3.ROOT_INODE


class Floor(pyfuse3.Operations):
    """/small/dNN/fNNNNN.txt, as bench.mount makes them: every name known, 64 bytes each."""

    def __init__(self, directories: int, per_directory: int) -> None:
        super().__init__()
        small = ROOT + 1
        self.children: dict[int, dict[bytes, int]] = {ROOT: {b"small": small}, small: {}}
        self.directories = {ROOT, small}
        number = small
        for d in range(directories):
            number += 1
            directory = number
            self.children[small][f"d{d:02d}".encode()] = directory
            self.directories.add(directory)
            names = self.children[directory] = {}
            for f in range(d * per_directory, (d + 1) * per_directory):
                number += 1
                names[f"f{f:05d}.txt".encode()] = number

    def _attributes(self, inode: int) -> pyfuse3.EntryAttributes:
        a = pyfuse3.EntryAttributes()
        a.st_ino = inode
        a.entry_timeout = a.attr_timeout = TIMEOUT
        if inode in self.directories:
            a.st_mode, a.st_nlink = stat.S_IFDIR | 0o755, 2
        else:
            a.st_mode, a.st_nlink, a.st_size = stat.S_IFREG | 0o644, 1, 64
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
    where, directories, per_directory = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    options = set(pyfuse3.default_options) | {"fsname=fusefloor"}
    pyfuse3.init(Floor(directories, per_directory), where, options)
    try:
        trio.run(pyfuse3.main)
    finally:
        pyfuse3.close()


if __name__ == "__main__":
    main()
