"""The data the tools move: a tree of random files, a large file and the edits made to it."""

import hashlib
import os
import random
import subprocess
from dataclasses import dataclass
from pathlib import Path

MiB = 1024 * 1024
DELTA_FILE_SIZE = 64 * MiB
# Random (incompressible) bytes, so that no tool gains from compression.
INSERTED = random.Random(4096).randbytes(4096)

# Relative path -> (size, sha256): what a receiver must end up with.
Manifest = dict[str, tuple[int, str]]


@dataclass(frozen=True)
class TreeSpec:
    big_files: int = 200
    big_size: int = 2_500_000
    small_files: int = 5_000
    small_size: int = 2_000

    @property
    def files(self) -> int:
        return self.big_files + self.small_files

    @property
    def bytes(self) -> int:
        return self.big_files * self.big_size + self.small_files * self.small_size

    def describe(self) -> str:
        return (
            f"{self.big_files} x {self.big_size:,} B + {self.small_files:,} x {self.small_size:,} B"
            f" = {self.files:,} files, {self.bytes:,} bytes"
        )


def _layout(spec: TreeSpec) -> list[tuple[str, int]]:
    """(relative path, size) of every file: large files 20 to a directory, small files 100
    to a directory two levels down, as a photo library or a source tree would be."""
    big = [(f"big/d{i // 20:02}/big-{i:03}.bin", spec.big_size) for i in range(spec.big_files)]
    small = [
        (f"small/s{i // 1000}/t{i // 100 % 10}/small-{i:04}.bin", spec.small_size)
        for i in range(spec.small_files)
    ]
    return big + small


def generate(root: Path, spec: TreeSpec) -> Manifest:
    manifest: Manifest = {}
    for relative, size in _layout(spec):
        data = os.urandom(size)
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        manifest[relative] = (size, hashlib.sha256(data).hexdigest())
    os.sync()
    return manifest


def random_file(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
        f.write(os.urandom(size % MiB))
    os.sync()


def stats(root: Path) -> tuple[int, int]:
    """(files, bytes) under root; (0, 0) while it does not exist yet."""
    files = size = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            files += 1
            size += os.lstat(os.path.join(dirpath, name)).st_size
    return files, size


def has_all(root: Path, spec: TreeSpec) -> bool:
    return stats(root) == (spec.files, spec.bytes)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(MiB):
            digest.update(block)
    return digest.hexdigest()


def check(root: Path, manifest: Manifest, who: str) -> None:
    """Every file arrived whole: counting files and bytes does not catch wrong content."""
    found: Manifest = {}
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath, name)
            found[path.relative_to(root).as_posix()] = (path.stat().st_size, sha256_file(path))
    if found != manifest:
        missing = len(manifest.keys() - found.keys())
        extra = len(found.keys() - manifest.keys())
        wrong = sum(1 for k in manifest.keys() & found.keys() if manifest[k] != found[k])
        raise AssertionError(
            f"{who}: tree differs from the original: {missing} missing, {extra} extra, "
            f"{wrong} with other content"
        )


def staged_copy(source: Path, staging: Path) -> Path:
    """A copy of source in staging, flushed to disk, ready to be handed over by one rename.

    The copy is made before the clock starts; flushing it keeps its write-back from
    competing with the transfer being timed."""
    staging.mkdir(parents=True, exist_ok=True)
    copy = staging / source.name
    subprocess.run(["cp", "-a", str(source), str(copy)], check=True, timeout=600)
    os.sync()
    return copy


def hand_over(staged: Path, into: Path) -> Path:
    """Give a staged tree or file to a tool's directory: one rename, so it is instant."""
    target = into / staged.name
    os.rename(staged, target)
    return target


def set_aside(path: Path) -> None:
    """Data a tool is done with stays until the whole benchmark ends (its work directory is
    removed then). Deleting thousands of files just before the next tool's timed transfer
    would slow that tool down: on ext4 without a journal (this machine's root filesystem) the
    inode allocator skips recently deleted inodes one by one, and creating 5,000 files was
    measured at 3 s there instead of 0.2 s."""
    if not path.exists():
        return
    parked = path.parent / f"done-{path.name}"
    n = 0
    while parked.exists():
        n += 1
        parked = path.parent / f"done-{n}-{path.name}"
    os.rename(path, parked)


# --- the edits of the delta measurement: the same bytes for every tool -----------------------
def change_one_byte(path: Path) -> None:
    """Flip one byte in the middle, in place (the file keeps its size and inode)."""
    middle = path.stat().st_size // 2
    with open(path, "r+b") as f:
        f.seek(middle)
        old = f.read(1)
        f.seek(middle)
        f.write(bytes([old[0] ^ 0xFF]))


def insert_in_middle(path: Path, scratch: Path) -> None:
    """Insert INSERTED in the middle: everything after it shifts by 4 KiB.

    Written beside the tool's directory and renamed over the file, as editors save, so
    that no tool sees (or syncs) a half-written file."""
    data = path.read_bytes()
    middle = len(data) // 2
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / path.name
    temporary.write_bytes(data[:middle] + INSERTED + data[middle:])
    os.replace(temporary, path)


EDITS = [
    ("one byte changed", lambda path, scratch: change_one_byte(path)),
    ("4 KiB inserted", insert_in_middle),
]
