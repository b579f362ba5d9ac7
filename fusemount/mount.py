"""`realize mount MOUNTPOINT`: the mount process, in the foreground until Ctrl-C or SIGTERM.

A mount left behind by a killed process (its directory answers "transport endpoint is not
connected") is unmounted lazily first, so `realize up` can mount again after a crash.
"""

import errno
import logging
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import TextIO

import pyfuse3
import trio
from django.db import close_old_connections

from areas.models import Area
from fusemount.fs import Filesystem
from fusemount.realizer import Realizer
from fusemount.unreal import Chunks
from peers.client import DIALLED
from realize_site.lib import collector
from realize_site.sampling import Sampler

log = logging.getLogger("realize.mount")

FUSE_DEVICE = "/dev/fuse"
# peerd is asked this often, seconds, which peers are connected (reads use its last answer:
# Chunks.connected), and their data links are warmed (Chunks.warm_links): a peer that just
# connected has them before its first read.
WARM_CHECK_EVERY = 2.0
# How long a thread keeps the interpreter when others want it, seconds (Python's default
# is 0.005). The loop and the fetching threads take it back after each system call or
# hash; at the default they waited for it.
SWITCH_INTERVAL = 0.0001
# The kernel's read-ahead window through the mount, KiB (_widen_read_ahead).
READ_AHEAD_KB = 4096


class MountError(RuntimeError):
    """A mount that cannot start: one line for the user."""


def register(commands) -> None:
    mount = commands.add_parser("mount", help="show every area as one tree at MOUNTPOINT")
    mount.add_argument("mountpoint", metavar="MOUNTPOINT")
    mount.set_defaults(run=run_mount)


def run_mount(options: dict, out: TextIO) -> None:
    areas = [path for path, _ in area_paths().values()]
    serve(prepare(options["mountpoint"], areas), out)


def area_paths() -> dict[str, tuple[str, str]]:
    """{area name: (its directory, its mode)}; read by the mount in a thread."""
    close_old_connections()  # a connection lost to a database restart is opened again
    return {
        name: (path, mode) for name, path, mode in Area.objects.values_list("name", "path", "mode")
    }


def fuse_available() -> bool:
    return os.path.exists(FUSE_DEVICE)


def prepare(where: str, areas) -> Path:
    """The mountpoint, checked: FUSE here, a stale mount cleared, apart from the areas
    (their directories), an empty directory."""
    if not fuse_available():
        raise MountError(f"{FUSE_DEVICE} is missing: this machine cannot mount (load the fuse "
                         "module, or give the container the device)")  # fmt: skip
    path = Path(os.path.abspath(where))
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno != errno.ENOTCONN:
            if exc.errno == errno.ENOENT:
                raise MountError(f"mountpoint {where} does not exist") from None
            raise MountError(f"mountpoint {where}: {exc.strerror}") from None
        unmount(path, lazy=True)  # left by a mount process that died
    check_apart(path, areas)
    if os.path.ismount(path):
        raise MountError(f"mountpoint {where} is busy: something is mounted there already")
    if not path.is_dir():
        raise MountError(f"mountpoint {where} is not a directory")
    if any(path.iterdir()):
        raise MountError(f"mountpoint {where} is not empty")
    return path


def check_apart(mountpoint: Path, areas) -> None:
    """The mount may be neither inside an area nor around one: the watcher would see the
    mount's own files, or the mount would show itself."""
    for area in areas:
        root = Path(os.path.abspath(area))
        if mountpoint == root or root in mountpoint.parents:
            raise MountError(f"mountpoint {mountpoint} is inside the area at {root}")
        if mountpoint in root.parents:
            raise MountError(f"mountpoint {mountpoint} holds the area at {root}")


def unmount(path: Path, lazy: bool = False) -> None:
    tool = shutil.which("fusermount3") or shutil.which("fusermount")
    if tool is None:
        raise MountError("fusermount3 is missing: install the fuse3 package")
    flags = "-uz" if lazy else "-u"
    subprocess.run([tool, flags, str(path)], check=False, capture_output=True)


def serve(mountpoint: Path, out: TextIO) -> None:
    fs = Filesystem(area_paths)
    options = set(pyfuse3.default_options)
    options |= {"fsname=realize", "subtype=realize", "default_permissions"}
    try:
        pyfuse3.init(fs, str(mountpoint), options)
    except RuntimeError as exc:
        raise MountError(f"cannot mount at {mountpoint}: {exc}") from None
    # Django's start-up heap, out of the collector's full passes: they paused the loop, and
    # every request with it, 47-132 ms each, several times a benchmark run.
    collector.settle()
    sys.setswitchinterval(SWITCH_INTERVAL)
    out.write(f"mounted at {mountpoint}\n")
    out.flush()
    # The cache's use and the data links' traffic, each minute, for the activity charts.
    cache = fs.reader.chunks.cache
    sampling = Sampler("mount").start(lambda: (DIALLED.totals(), (cache.size, cache.limit)))
    realizing = Realizer(fs.reader.chunks, fs.unreal_stale).start()
    try:
        trio.run(_main, fs, mountpoint)
    finally:
        realizing.set()
        sampling.set()
        pyfuse3.close(unmount=True)
    out.write(f"unmounted {mountpoint}\n")
    out.flush()


async def _widen_read_ahead(mountpoint: Path) -> None:
    """Let the kernel read ahead READ_AHEAD_KB through this mount, not its 128 KiB default.

    The kernel asks for at most its read-ahead window at once, so every read of a file not
    in the page cache came as 128 KiB requests, each a turn of pyfuse3's loop. With this
    they come as 1 MiB requests (the most libfuse takes) and several are under way.
    The kernel sets the window when it has the mount's first answer (FUSE's INIT), so this
    waits for a stat of the root, which comes after it.
    """
    try:
        device = (await trio.to_thread.run_sync(os.stat, mountpoint)).st_dev
        knob = Path(f"/sys/class/bdi/{os.major(device)}:{os.minor(device)}/read_ahead_kb")
        knob.write_text(f"{READ_AHEAD_KB}\n")
    except OSError as exc:  # not root, say: the kernel's default stays
        log.info("read-ahead stays at the kernel's default: %s", exc.strerror)


async def _main(fs: Filesystem, mountpoint: Path) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        nursery.start_soon(fs.watch_changes)
        nursery.start_soon(fs.watch_database)
        fs.nursery = fs.reader.nursery = nursery
        nursery.start_soon(_warm_links, fs.reader.chunks)
        nursery.start_soon(_widen_read_ahead, mountpoint)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()


async def _warm_links(chunks: Chunks) -> None:
    while True:
        await trio.to_thread.run_sync(chunks.warm_links, abandon_on_cancel=True)
        await trio.sleep(WARM_CHECK_EVERY)


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            log.info("stopping: unmounting")
            pyfuse3.terminate()
            return
