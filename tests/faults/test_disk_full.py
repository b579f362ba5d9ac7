"""Probe: the receiving side's disk fills up during a pull.

Three appliances: alpha has the files; beta's area is on a small tmpfs of its own (its home
is not, so files are staged beside their place in the area); gamma's home and area share one
small tmpfs (files are staged in its home). Each try, alpha gets new files, a filler file
beside each receiver's area leaves room for about half of them, and each receiver runs
`realize consensus`. Then:

- nothing partial is visible under a real name, at any moment (an observer looks);
- the consensus fails, with one clear line on stderr;
- `realize status` shows the failure (noted when it does not: not counted as a loss);
- once the filler is removed, the next consensus brings every file, whole.
"""

import contextlib
import random
import re
import time
from dataclasses import dataclass, field

import pytest

from tests.faults.probes import (
    FULL,
    SEED,
    Command,
    Digests,
    Observer,
    Settling,
    Versions,
    Workload,
    area_digests,
    compare,
    free_bytes,
    last_error,
    make_members,
    one_line_error,
    progress,
    temporary_files,
    tmpfs,
    tmpfs_missing,
    tries_of,
    unfinished_runs,
)
from tests.household import AREA

MiB = 1024 * 1024
DISK = 160 * MiB if FULL else 96 * MiB
LARGE = (10 * MiB, 20 * MiB) if FULL else (6 * MiB, 12 * MiB)
SMALL = 100 if FULL else 40
RECEIVERS = ["beta", "gamma"]
STALL = 90  # seconds without any progress: a command still waiting then is stuck

# A try restarts a service and waits for every process: half as many outside `make faults`.
ROUNDS = tries_of(slow=True)

NO_TMPFS = tmpfs_missing()
pytestmark = pytest.mark.skipif(NO_TMPFS is not None, reason=NO_TMPFS or "")


@dataclass
class Tally:
    tries: int = 0
    survived: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)
    remarks: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


@pytest.fixture
def trio(tmp_path):
    with contextlib.ExitStack() as stack:
        disks = {}

        def configure(m):
            if m.name not in RECEIVERS:
                return
            disk = stack.enter_context(tmpfs(tmp_path / f"disk-{m.name}", DISK))
            disks[m.name] = disk
            m.dir = disk / "area"
            m.dir.mkdir()
            if m.name == "gamma":
                m.home = disk / "home"
                m.env["REALIZE_HOME"] = str(m.home)

        members = make_members(tmp_path, ["alpha", *RECEIVERS], configure)
        stack.callback(lambda: [m.destroy() for m in members])
        yield members, disks


def fill(disk, leave: int) -> int:
    """A filler file beside the area so that `leave` bytes stay free: its size."""
    filler = disk / "filler"
    with contextlib.suppress(FileNotFoundError):
        filler.unlink()
    size = max(0, free_bytes(disk) - leave)
    with open(filler, "wb") as f:
        block = b"\0" * MiB
        for _ in range(size // MiB):
            f.write(block)
    return size


def status_shows_failure(m) -> bool:
    """Whether `realize status` tells of a failed run (paths and ids left out: they could
    spell anything)."""
    output = m.run("status", check=False, timeout=60)
    text = (output.stdout + output.stderr).replace(str(m.dir), "").replace(str(m.home), "")
    text = re.sub(r"\b[A-Z2-7]{7}(-[A-Z2-7]{7}){7}\b", "", text)
    return bool(re.search(r"fail|no space|disk full|error", text, re.IGNORECASE))


@pytest.mark.timeout(600 + ROUNDS * 300)
def test_disk_full_on_the_receiving_side(trio, fault_table):
    members, disks = trio
    alpha = members[0]
    receivers = members[1:]
    versions, cache = Versions(), Digests()
    rng = random.Random(SEED + 2)
    source = Workload(alpha, versions, rng)
    source.additions(SMALL, edits=0, large=[])
    for r in receivers:
        r.consensus(alpha)
    tally = Tally()
    settling = Settling(members)
    try:
        for _ in range(ROUNDS):
            one_try(alpha, receivers, disks, source, versions, cache, rng, tally, settling)
    finally:
        notes = tally.problems[:4] + tally.remarks[:2]
        fault_table.record(
            "disk full on the receiving side (area alone / area and home on a full disk)",
            tally.tries,
            tally.survived,
            tally.lost,
            "; ".join(n.replace("|", "/") for n in notes),
        )
        print("\n".join(tally.log + tally.remarks))
    assert tally.survived == tally.tries, "\n".join(tally.problems)


def one_try(alpha, receivers, disks, source, versions, cache, rng, tally, settling) -> None:
    # Last try's large files go first: deletes travel at once (automatic runs).
    source.removals(deletes=3, renames=1, keep_large=0)
    gone = [rel for rel in versions.known if rel not in versions.current]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        (r.dir / g).exists() for r in receivers for g in gone
    ):
        time.sleep(0.2)
    before = settling.wait(limit=60)

    large = [rng.randrange(*LARGE) for _ in range(4)]
    need = source.additions(SMALL, edits=5, large=large)
    for r in receivers:
        fill(disks[r.name], leave=need // 2)
    tally.tries += 1
    where = f"try {tally.tries}"
    problems = [f"before the fault, left unfinished: {r}" for r in before]
    areas = {r.name: r.dir for r in receivers}
    everyone = [alpha, *receivers]
    stuck = []
    with Observer(areas, versions, cache) as observer:
        commands = {r.name: Command(r, "consensus", AREA, "--peer", alpha.name) for r in receivers}
        for r in receivers:
            command = commands[r.name]
            command.finish(limit=660, progress=lambda: progress(everyone), stall=STALL)
            tally.log.append(f"{where}: {r.name}'s consensus on a full disk: {command.summary()}")
            if command.hung:
                stuck.append(r)
                runs = unfinished_runs(r)
                problems.append(
                    f"{r.name}: `realize consensus` on a full disk never returned "
                    f"(no progress in {STALL} s; runs left {', '.join(x[2] for x in runs)}; "
                    f"worker log: {last_error(r, 'worker')})"
                )
            elif command.returncode == 0:
                problems.append(f"{r.name}: the consensus on a full disk exited 0")
            elif not one_line_error(command.stderr):
                problems.append(
                    f"{r.name}: not one clear line on a full disk: {command.stderr.strip()[:300]!r}"
                )
            elif not re.search(r"space|full", command.stderr, re.IGNORECASE):
                tally.remarks.append(
                    f"{where}: {r.name}'s error does not say the disk is full: "
                    f"{command.stderr.strip()[:200]}"
                )
            if command.returncode and not status_shows_failure(r):
                tally.remarks.append(
                    f"{where}: {r.name}: `realize status` does not show the failed run"
                )
        for r in receivers:
            left = temporary_files(r.dir)
            if left:
                tally.log.append(f"{where}: {r.name}: {len(left)} temporary file(s) after failing")
            (disks[r.name] / "filler").unlink()
        for r in stuck:  # to go on: what a person would do
            r.stop()
            r.up()
            tally.remarks.append(f"{where}: {r.name}: `realize up` restarted by the test to go on")
        for r in receivers:
            command = Command(r, "consensus", AREA, "--peer", alpha.name)
            if command.finish(limit=660, progress=lambda: progress(everyone), stall=STALL) != 0:
                problems.append(
                    f"{r.name}: the consensus once space was freed: {command.summary()}"
                )
    for side, rel, what in observer.sightings[:3]:
        problems.append(f"visible on {side}: {rel}: {what}")
    lost = len(observer.bad_paths())
    for r in receivers:
        d = compare(area_digests(r.dir, cache), versions)
        if d:
            problems.append("once space was freed, " + d.describe(r.name))
            lost += d.lost
        left = temporary_files(r.dir)
        if left:
            tally.remarks.append(f"{where}: {len(left)} temporary file(s) left in {r.name}'s area")
        staging = r.home / "staging"
        if staging.is_dir():
            leftovers = [p for p in staging.rglob("*") if p.is_file() and "probe" not in p.name]
            if leftovers:
                tally.remarks.append(
                    f"{where}: {len(leftovers)} staged file(s) left in {r.name}'s home"
                )
    left = settling.wait(limit=90)
    if left:
        problems.append("left unfinished: " + ", ".join(left))
    tally.lost += lost
    if problems:
        tally.problems += [f"{where}: {p}" for p in problems]
    else:
        tally.survived += 1
