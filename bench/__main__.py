"""python -m bench [--keep]: measure, then print the table (progress goes to stderr)."""

import argparse
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench import mount, realize, rsync, syncthing, trees
from bench.report import Results, render
from bench.timing import GaveUp, log


def _check_tools() -> None:
    missing = [tool for tool in ("syncthing", "rsync", "rclone") if shutil.which(tool) is None]
    if missing:
        sys.exit(
            f"bench: {', '.join(missing)} not installed; 'make bench' installs them "
            "(scripts/bootstrap.sh with WITH_TEST_TOOLS=1)"
        )


def _interrupt(signum: int, frame: object) -> None:
    # SIGTERM would end the process without running the clean-ups; make it an interrupt.
    raise KeyboardInterrupt(f"signal {signum}")


def run(root: Path, spec: trees.TreeSpec, rounds: int) -> Results:
    """The tree transfer `rounds` times for each tool (a round each tool in turn, so that
    each meets the machine as it is then), the delta bytes in the first round."""
    staging = root / "staging"
    log(f"generating the tree: {spec.describe()}")
    tree = staging / "tree"
    manifest = trees.generate(tree, spec)
    base = staging / "delta.bin"
    trees.random_file(base, trees.DELTA_FILE_SIZE)

    realize_tree, notes, realize_deltas = realize.measure(
        root / "realize", tree, manifest, base, spec
    )
    syncthing_trees = [syncthing.measure(root / "syncthing", tree, manifest, spec)]
    rsync_tree, rsync_deltas = rsync.measure(root / "rsync", tree, manifest, base)
    realize_trees, rsync_trees = [realize_tree], [rsync_tree]
    for n in range(2, rounds + 1):
        log(f"round {n} of {rounds}: the tree transfer again, for each tool")
        realize_trees.append(realize.tree_only(_made(root / f"realize-{n}"), tree, manifest, spec))
        syncthing_trees.append(
            syncthing.measure(_made(root / f"syncthing-{n}"), tree, manifest, spec)
        )
        rsync_trees.append(rsync.tree_only(_made(root / f"rsync-{n}"), tree, manifest))
    return Results(
        tree=spec.describe(),
        realize_trees=realize_trees,
        syncthing_trees=syncthing_trees,
        rsync_trees=rsync_trees,
        realize_deltas=realize_deltas,
        rsync_deltas=rsync_deltas,
        realize_notes=notes,
    )


def _made(path: Path) -> Path:
    path.mkdir()
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (homes, logs) afterwards"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a tree a tenth the size: to try the benchmark out"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="tree transfers per tool, the median reported (default 3; the delta bytes are "
        "measured once)",
    )
    parser.add_argument(
        "--dir",
        type=Path,
        help="where the work directory is made (default: the temporary directory); about "
        "4 GB are needed, and 3 GB more for each round after the first",
    )
    parser.add_argument(
        "--only",
        choices=["tree", "mount"],
        help="only the tree transfer (Realize, Syncthing, rsync), or only the mount table",
    )
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error("--rounds must be at least 1")
    if options.dir is not None and not options.dir.is_dir():
        parser.error(f"--dir {options.dir}: no such directory")
    _check_tools()
    signal.signal(signal.SIGTERM, _interrupt)
    spec = trees.TreeSpec(big_files=20, small_files=500) if options.quick else trees.TreeSpec()
    root = Path(tempfile.mkdtemp(prefix="realize-bench-", dir=options.dir))
    for part in ("realize", "syncthing", "rsync"):
        (root / part).mkdir()
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    results = mount_table = None
    try:
        if options.only != "mount":
            results = run(root, spec, options.rounds)
        if options.only != "tree":
            (root / "mount").mkdir()
            (root / "unreal").mkdir()
            mount_table = mount.measure(root / "mount", options.rounds)
            mount_table += "\n\n" + mount.measure_unreal(root / "unreal", options.rounds)
    except GaveUp as exc:
        log(f"benchmark stopped: {exc}")
        return 2
    except KeyboardInterrupt as exc:
        log(f"benchmark interrupted ({exc or 'Ctrl-C'}); cleaned up")
        return 130
    finally:
        if options.keep:
            log(f"work directory kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        log(f"whole benchmark: {time.monotonic() - started:.0f} s")
    if results is not None:
        print(render(results, spec.bytes))
    if mount_table is not None:
        print(("\n" if results is not None else "") + mount_table)
    print(
        f"\nWhole benchmark {time.monotonic() - started:.0f} s on {os.cpu_count()} CPUs; "
        f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
