"""rsync between two local directories: the floor for copying and for delta transfer."""

import re
import subprocess
import time
from pathlib import Path

from bench import trees
from bench.report import Delta
from bench.timing import TRANSFER_LIMIT, Stopwatch, Timed, log


def _rsync(*args: str) -> str:
    result = subprocess.run(
        ["rsync", *args],
        capture_output=True,
        text=True,
        timeout=TRANSFER_LIMIT,
        env={"LC_ALL": "C", "PATH": "/usr/bin:/bin"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"rsync {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result.stdout


def tree_transfer(source: Path, destination: Path) -> Timed:
    watch = Stopwatch()
    _rsync("-a", f"{source}/", f"{destination}/")
    return watch.stop()


def wire_bytes(stats: str) -> int:
    """'Total bytes sent' + 'Total bytes received' of --stats (digits may be grouped)."""
    total = 0
    for field in ("sent", "received"):
        found = re.search(rf"^Total bytes {field}: ([\d,.]+)", stats, re.MULTILINE)
        if found is None:
            raise RuntimeError(f"no 'Total bytes {field}' in rsync --stats output:\n{stats}")
        total += int(re.sub(r"[,.]", "", found.group(1)))
    return total


def _measured_sync(source: Path, destination: Path, label: str) -> Delta:
    started = time.monotonic()
    # Between local directories rsync copies whole files unless told not to.
    stats = _rsync("-a", "--no-whole-file", "--stats", f"{source}/", f"{destination}/")
    seconds = time.monotonic() - started
    for path in source.iterdir():
        if trees.sha256_file(path) != trees.sha256_file(destination / path.name):
            raise AssertionError(f"rsync, {label}: the copy differs")
    return Delta(label, wire_bytes(stats), seconds)


def deltas(base: Path, root: Path) -> list[Delta]:
    """The 64 MiB file copied, then each edit of trees.EDITS, one rsync each."""
    source, destination = root / "src", root / "dst"
    destination.mkdir(parents=True)
    file = trees.staged_copy(base, source)
    results = [_measured_sync(source, destination, "initial copy")]
    for label, edit in trees.EDITS:
        edit(file, root / "scratch")
        results.append(_measured_sync(source, destination, label))
        log(f"  rsync: {results[-1]}")
    return results


def tree_only(root: Path, tree: Path, manifest: trees.Manifest) -> Timed:
    log("rsync: tree transfer")
    destination = root / "tree"
    timed = tree_transfer(tree, destination)
    log(f"rsync: tree transfer took {timed.seconds:.1f} s; checking content")
    trees.check(destination, manifest, "rsync")
    trees.set_aside(destination)
    return timed


def measure(
    root: Path, tree: Path, manifest: trees.Manifest, base: Path
) -> tuple[Timed, list[Delta]]:
    timed = tree_only(root, tree, manifest)
    log("rsync: delta bytes")
    return timed, deltas(base, root / "delta")
