"""The mount against the disk it passes through: reads of Real files and metadata.

One appliance with one area, mounted by `realize mount`. Each round reads the same files
directly and through the mount, in turn, with the page cache dropped before every cold
read, so each meets the machine as it is then. Ratios: the mount's speed over the disk's.
"""

import contextlib
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import trees
from bench.timing import log
from tests.appliance import REALIZE, Appliance, free_port

BIG_FILE = 256 * 1024 * 1024
SMALL_FILES = 10_000
READ_BLOCK = 1024 * 1024
FLOOR_ROW = "stat cold, bare pyfuse3 (files/s)"


def measure(root: Path, rounds: int) -> str:
    area = root / "area"
    (area / "small").mkdir(parents=True)
    log("mount: generating a 256 MiB file and 10,000 small files")
    trees.random_file(area / "big.bin", BIG_FILE)
    for n in range(SMALL_FILES):
        sub = area / "small" / f"d{n // 500:02d}"
        sub.mkdir(exist_ok=True)
        (sub / f"f{n:05d}.txt").write_bytes(os.urandom(64))
    appliance = Appliance(root, "mountbench").init()
    where, floor = root / "mnt", root / "floor"
    where.mkdir()
    floor.mkdir()
    process = floor_process = None
    try:
        appliance.run("area", "add", "bench", str(area))
        process = subprocess.Popen(
            [REALIZE, "mount", str(where)], env=appliance.env,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        floor_process = subprocess.Popen(
            [sys.executable, "-m", "bench.fusefloor", str(floor), str(area)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_mounted(where, process)
        _wait_mounted(floor, floor_process)
        mounted = where / "bench"
        rows: dict[str, list[tuple[float, float]]] = {
            "read 256 MiB, cold (MB/s)": [],
            "read 256 MiB, warm (MB/s)": [],
            "stat 10,000 files, cold (files/s)": [],
            FLOOR_ROW: [],
            "stat 10,000 files, warm (files/s)": [],
            "ls -lR of 10,000 files, cold (s)": [],
        }
        for n in range(1, rounds + 1):
            log(f"mount: round {n} of {rounds}")
            for name, direct, through in _round(area, mounted, floor):
                rows[name].append((direct, through))
        return _table(rows)
    finally:
        for running in (process, floor_process):
            if running is not None and running.poll() is None:
                running.send_signal(signal.SIGTERM)
                running.wait(timeout=30)
        subprocess.run(["fusermount3", "-uz", str(floor)], capture_output=True)
        appliance.destroy()


def _round(area: Path, mounted: Path, floor: Path) -> list[tuple[str, float, float]]:
    out = []
    cold = [_read_rate(p / "big.bin", cold=True) for p in (area, mounted)]
    out.append(("read 256 MiB, cold (MB/s)", *cold))
    warm = [_read_rate(p / "big.bin", cold=False) for p in (area, mounted)]
    out.append(("read 256 MiB, warm (MB/s)", *warm))
    stats = [_stat_rate(p / "small") for p in (area, mounted, floor)]
    out.append(("stat 10,000 files, cold (files/s)", stats[0], stats[1]))
    out.append((FLOOR_ROW, stats[0], stats[2]))
    stats = [_stat_rate(p / "small", cold=False) for p in (area, mounted)]
    out.append(("stat 10,000 files, warm (files/s)", *stats))
    listing = [_ls_seconds(p / "small") for p in (area, mounted)]
    out.append(("ls -lR of 10,000 files, cold (s)", *listing))
    return out


def _drop_caches() -> None:
    os.sync()
    try:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
    except OSError:
        log("mount: cannot drop the page cache (not root?): cold figures are warm")


def _read_rate(path: Path, cold: bool) -> float:
    if cold:
        _drop_caches()
    else:
        _read(path)
    started = time.perf_counter()
    size = _read(path)
    return size / (time.perf_counter() - started) / 1e6


def _read(path: Path) -> int:
    total = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(READ_BLOCK):
            total += len(chunk)
    return total


def _stat_rate(directory: Path, cold: bool = True) -> float:
    """Cold: the caches dropped, and past the mount's attribute timeout (the kernel asks it
    again); warm: just after a first pass, as a second `ls -l` or `find` is."""
    names = [d / f for d in sorted(directory.iterdir()) for f in sorted(os.listdir(d))]
    if cold:
        _drop_caches()
        time.sleep(1.5)
    else:
        for name in names:
            os.stat(name)
    started = time.perf_counter()
    for name in names:
        os.stat(name)
    return len(names) / (time.perf_counter() - started)


def _ls_seconds(directory: Path) -> float:
    _drop_caches()
    time.sleep(1.5)
    started = time.perf_counter()
    subprocess.run(["ls", "-lR", str(directory)], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def _table(rows: dict[str, list[tuple[float, float]]]) -> str:
    lines = ["Mount: Real files through the mount vs the disk directly, every round", ""]
    lines.append(f"  {'measure':<36}{'direct':>10}{'mount':>10}{'ratio':>8}   each round's ratio")
    for name, pairs in rows.items():
        seconds = name.endswith("(s)")
        # A speed's ratio is mount/direct; a time's is direct/mount: above 1 is the mount ahead.
        ratios = [(d / m) if seconds else (m / d) for d, m in pairs]
        direct = statistics.median(d for d, _ in pairs)
        through = statistics.median(m for _, m in pairs)
        each = ", ".join(f"{r:.2f}" for r in ratios)
        shown = ".3f" if seconds else ".1f"
        lines.append(
            f"  {name:<36}{direct:>10{shown}}{through:>10{shown}}"
            f"{statistics.median(ratios):>8.2f}   {each}"
        )
    lines.append("  (ratio: the mount's speed as a share of the disk's; medians of the rounds;")
    lines.append("   bare pyfuse3: bench.fusefloor, a pyfuse3 filesystem answering from a dict,")
    lines.append("   the same names and timeouts: the binding's own ceiling, in the mount column)")
    return "\n".join(lines)


# --- Unreal files against rclone's VFS mount ----------------------------------------------------
UNREAL_FILE = 256 * 1024 * 1024
RANDOM_FILE = 64 * 1024 * 1024
RANDOM_READS = 1000
RANDOM_SIZE = 4096
# Seconds between the household's connecting and the first read: the mount dials its data
# links to a peer within seconds of its connecting, as a user's first read finds them.
SETTLE = 5.0


def measure_unreal(root: Path, rounds: int) -> str:
    """beta's Unreal area reads alpha's files through the mount; rclone mounts the same
    files from a loopback `rclone serve http` with --vfs-cache-mode full. Each round reads
    files neither has read before (cold), then one again from its cache; then appends a
    byte to a file neither has (Realize realizes it first; rclone, mounting a loopback
    `rclone serve webdav` of a directory of its own, fetches it into its cache first)."""
    from tests.household import AREA, make_household

    alpha, beta = make_household(root, ["alpha", "beta"], unreal={"beta"})
    rclone_serve = rclone_mount = webdav_serve = webdav_mount = None
    ours, theirs, writable = root / "mnt-beta", root / "mnt-rclone", root / "mnt-rclone-rw"
    # rclone writes its appended files back a few seconds later: outside alpha's area, so
    # that alpha is not indexing them while the next tool is measured.
    uploaded = root / "rclone-rw"
    uploaded.mkdir()
    try:
        for n in range(1, rounds + 1):
            trees.random_file(alpha.dir / f"seq{n}.bin", UNREAL_FILE)
            trees.random_file(alpha.dir / f"rand{n}.bin", RANDOM_FILE)
            trees.random_file(alpha.dir / f"grow{n}.bin", RANDOM_FILE)
            trees.random_file(uploaded / f"grow-rclone{n}.bin", RANDOM_FILE)
        log("mount: beta pulls the Unreal area's metadata")
        beta.stop()
        ours.mkdir()
        beta.up("--mount", str(ours))
        _wait_mounted(ours, beta.up_process)
        beta.consensus(alpha)
        # Read-only over HTTP for the reads; over WebDAV, writable, for the append.
        caches = root / "rclone-cache", root / "rclone-cache-rw"
        rclone_serve, rclone_mount = _rclone("http", alpha.dir, theirs, caches[0], "--read-only")
        webdav_serve, webdav_mount = _rclone("webdav", uploaded, writable, caches[1])
        time.sleep(SETTLE)  # as a user's first read comes: not as the peers just connected
        where = {"Realize": ours / AREA, "rclone": theirs}
        growing = {"Realize": (ours / AREA, "grow"), "rclone": (writable, "grow-rclone")}
        rows: dict[str, dict[str, list[float]]] = {}
        for n in range(1, rounds + 1):
            log(f"mount: Unreal round {n} of {rounds}")
            for tool in (["Realize", "rclone"] if n % 2 else ["rclone", "Realize"]):
                for name, value in _unreal_round(where[tool], n):
                    rows.setdefault(name, {}).setdefault(tool, []).append(value)
                directory, prefix = growing[tool]
                name, value = _append_round(directory / f"{prefix}{n}.bin")
                rows.setdefault(name, {}).setdefault(tool, []).append(value)
                if tool == "rclone":  # its upload, seconds later, not under the next measure
                    _wait_size(uploaded / f"{prefix}{n}.bin", RANDOM_FILE + 1)
            for state in ("cold", "warm"):
                native = _read_rate(alpha.dir / f"seq{n}.bin", cold=state == "cold")
                rows.setdefault(f"cached read, {state} (MB/s)", {}).setdefault(
                    "native", []
                ).append(native)
        return _unreal_table(rows)
    finally:
        for process in (webdav_mount, webdav_serve, rclone_mount, rclone_serve):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=30)
        for mounted in (writable, theirs):
            subprocess.run(["fusermount3", "-uz", str(mounted)], capture_output=True)
        for member in (alpha, beta):
            member.destroy()
        subprocess.run(["fusermount3", "-uz", str(ours)], capture_output=True)


def _rclone(backend: str, served: Path, where: Path, cache: Path, *options: str):
    """`rclone serve BACKEND` of `served` on loopback, mounted at `where` with its cache in
    full mode: (the server, the mount), both started and the mount up."""
    port = free_port()
    server = subprocess.Popen(
        ["rclone", "serve", backend, str(served), "--addr", f"127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    where.mkdir()
    mount = subprocess.Popen(
        ["rclone", "mount", f":{backend}:", str(where), f"--{backend}-url",
         f"http://127.0.0.1:{port}", "--vfs-cache-mode", "full", "--cache-dir", str(cache),
         "--dir-cache-time", "1h", *options],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        _wait_mounted(where, mount)
    except BaseException:
        for process in (mount, server):
            process.terminate()
            process.wait(timeout=30)
        raise
    return server, mount


def _wait_mounted(where: Path, process) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            if os.path.ismount(where) and os.listdir(where):
                return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"no mount at {where}")
        time.sleep(0.1)


def _unreal_round(where: Path, n: int) -> list[tuple[str, float]]:
    seq, rand = where / f"seq{n}.bin", where / f"rand{n}.bin"
    _drop_caches()
    busy = _busy_seconds()
    started = time.perf_counter()
    with open(seq, "rb", buffering=0) as f:
        total = len(f.read(RANDOM_SIZE))
        first = time.perf_counter() - started
        while chunk := f.read(READ_BLOCK):
            total += len(chunk)
    rate = total / (time.perf_counter() - started) / 1e6
    busy = _busy_seconds() - busy
    rng = random.Random(n)
    offsets = [rng.randrange(0, RANDOM_FILE - RANDOM_SIZE) for _ in range(RANDOM_READS)]
    started = time.perf_counter()
    with open(rand, "rb", buffering=0) as f:
        for offset in offsets:
            f.seek(offset)
            f.read(RANDOM_SIZE)
    per_second = RANDOM_READS / (time.perf_counter() - started)
    cached = _read_rate(seq, cold=True)  # the page cache dropped: from the tool's own cache
    warm = _read_rate(seq, cold=False)  # read again at once: what the kernel keeps
    return [
        ("uncached read (MB/s)", rate),
        ("uncached read, CPU busy (s)", busy),
        ("first byte, uncached (ms)", first * 1000),
        ("random 4 KiB reads, uncached (/s)", per_second),
        ("cached read, cold (MB/s)", cached),
        ("cached read, warm (MB/s)", warm),
    ]


def _busy_seconds() -> float:
    """CPU time the whole machine has spent busy since boot, all cores: the tool's server,
    its client and the reader's kernel work alike (on 2 cores, what a read may use)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def _append_round(path: Path) -> tuple[str, float]:
    """A byte appended to a file not fetched before: the whole comes first, at this rate."""
    _drop_caches()
    size = os.stat(path).st_size
    started = time.perf_counter()
    with open(path, "ab") as f:
        f.write(b"x")
    return "append a byte, uncached (MB/s)", size / (time.perf_counter() - started) / 1e6


def _wait_size(path: Path, size: int) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            if os.stat(path).st_size == size:
                return
        time.sleep(0.2)
    log(f"mount: {path.name} never reached {size} bytes: the next figures may be disturbed")


def _unreal_table(rows: dict[str, dict[str, list[float]]]) -> str:
    lines = ["Mount: Unreal files from a peer on loopback, Realize vs rclone's VFS mount", ""]
    lines.append(f"  {'measure':<36}{'tool':<14}{'median':>10}   each round")
    for name, tools in rows.items():
        shown = ".2f" if name.endswith("(s)") else ".1f"
        for tool, values in tools.items():
            each = ", ".join(f"{v:{shown}}" for v in values)
            lines.append(f"  {name:<36}{tool:<14}{statistics.median(values):>10{shown}}   {each}")
    lines.append(
        "  (rclone: `rclone serve http` of alpha's directory, mounted with --vfs-cache-mode "
        "full;\n   CPU busy: all cores of the machine, during the uncached read;\n"
        "   cached, cold: the file read again with the page cache dropped (native: "
        "alpha's file so);\n   cached, warm: read once more at once;\n   append: Realize "
        "fetches and checks the whole file before the write returns; rclone,\n   mounting "
        "`rclone serve webdav`, returns at once and fetches and uploads it after)"
    )
    return "\n".join(lines)
