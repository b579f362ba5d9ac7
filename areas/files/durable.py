"""Making writes durable: syncs of files, directories and whole filesystems."""

import os
from pathlib import Path

import areas.files.syscalls as syscalls


def sync_filesystem(path: Path) -> None:
    """syncfs(2) on the filesystem holding path (every dirty file of it reaches the disk)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        syscalls.syncfs(fd)
    finally:
        os.close(fd)


def sync_directories(directories: set[str]) -> None:
    """Make renames and removals in these directories durable."""
    existing = [d for d in directories if os.path.isdir(d)]
    if len(existing) <= 2:
        for d in existing:
            fsync_dir(d)
        return
    devices = {}
    for d in existing:
        devices.setdefault(os.stat(d).st_dev, d)
    for d in devices.values():
        sync_filesystem(d)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_empty_parents(root: Path, full: Path) -> None:
    parent = full.parent
    while parent != root and root in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
