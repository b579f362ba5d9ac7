"""Probe: SIGKILL of the worker, peerd or the stager at a random moment of a pull, on the
pulling peer and on the serving one.

Two appliances. Each try changes both sides' files (new small and large files, edits; the
deletes and renames go first, on their own, as they start consensus at once), starts
`realize consensus` on alpha (alpha's worker pulls beta's changes, its stager fetching the
large ones; then beta's peerd pulls alpha's), and kills the chosen process after a random
delay. Meanwhile an observer checks that every file visible in either area is whole: a
version the test wrote at that path. Once `up` has restarted the process, the next
`realize consensus` must succeed and leave both areas equal to what the test wrote, and no
run may stay pending or running.

The stager exists on the pulling side only: the serving peer's own pull (asked by alpha,
run in its peerd) stages files itself.
"""

import random
import time
from dataclasses import dataclass, field

import pytest

from tests.faults.conftest import TRIES
from tests.faults.probes import (
    FULL,
    SEED,
    Digests,
    Observer,
    Settling,
    Versions,
    Workload,
    area_digests,
    compare,
    consensus,
    program_pid,
    progress,
    sigkill,
    stager_pids,
    temporary_files,
    wait_connected,
    wait_restarted,
    writing,
)
from tests.household import make_household

MiB = 1024 * 1024
COMBOS = [
    ("worker", "puller"),
    ("worker", "server"),
    ("peerd", "puller"),
    ("peerd", "server"),
    ("stager", "puller"),
]
# Per try. The large files of the server are new content: the puller's stager fetches them
# (areas.pull.sourcing: new files from 1 MiB, none of their chunks here).
SERVER_SMALL, PULLER_SMALL = (300, 60) if FULL else (80, 20)
LARGE_SIZES = (8 * MiB, 40 * MiB) if FULL else (8 * MiB, 16 * MiB)
LARGE_PER_TRY = (2, 3) if FULL else (1, 2)
STALL = 120  # seconds without any progress: a command still waiting then is stuck
NO_STAGER = "no stager ran during the consensus"


@dataclass
class Tally:
    tries: int = 0
    survived: int = 0
    lost: int = 0
    mid_run: int = 0  # kills that landed while the consensus command was still running
    stager_gave_up: int = 0  # files the puller's worker staged itself: its stager failed
    stager_writing: int = 0  # stager kills while it was writing a file
    problems: list[str] = field(default_factory=list)
    log: list[str] = field(default_factory=list)


class Pair:
    def __init__(self, puller, server):
        self.puller, self.server = puller, server
        self.members = [puller, server]
        self.versions = Versions()
        self.cache = Digests()
        self.rng = random.Random(SEED)
        self.work = {
            "puller": Workload(puller, self.versions, self.rng),
            "server": Workload(server, self.versions, self.rng),
        }
        self.estimate = 1.0  # seconds a try's consensus takes, as last seen
        self.settling = Settling(self.members)

    def side(self, name: str):
        return self.puller if name == "puller" else self.server

    def large(self) -> list[int]:
        return [self.rng.randrange(*LARGE_SIZES) for _ in range(self.rng.randint(*LARGE_PER_TRY))]

    def differences(self) -> list:
        return [
            (m.name, compare(area_digests(m.dir, self.cache), self.versions)) for m in self.members
        ]

    def change(self) -> list[str]:
        """This try's changes: removals first (they start consensus at once), then let the
        automatic runs they start carry them before the new content comes. Runs that did
        not finish then are returned."""
        # Files come faster than they go, up to a few tries' worth.
        server, puller = self.work["server"], self.work["puller"]
        server.removals(max(4, len(server.small) - 3 * SERVER_SMALL), renames=2, keep_large=2)
        puller.removals(max(2, len(puller.small) - 3 * PULLER_SMALL), renames=1, keep_large=1)
        gone = [rel for rel in self.versions.known if rel not in self.versions.current]

        def carried():
            return not any((m.dir / rel).exists() for m in self.members for rel in gone)

        deadline = time.monotonic() + 60
        while not carried() and time.monotonic() < deadline:
            time.sleep(0.2)
        stuck = self.settling.wait(limit=60)
        self.work["server"].additions(SERVER_SMALL, edits=10, large=self.large())
        self.work["puller"].additions(PULLER_SMALL, edits=3, large=[self.large()[0] // 2])
        return [f"before the fault, left unfinished: {r}" for r in stuck]


def one_try(pair: Pair, process: str, side: str, tally: Tally) -> None:
    """Change, pull, kill, recover; count it in tally. Raises if the pair cannot go on."""
    victim = pair.side(side)
    problems = pair.change()
    # The stager is killed when it writes (below), the others at a random moment.
    delay = pair.rng.uniform(0.0, pair.estimate) if process != "stager" else 0.0
    old = None
    stager_before = stager_failures(pair.puller)
    areas = {m.name: m.dir for m in pair.members}
    with Observer(areas, pair.versions, pair.cache) as observer:
        command = consensus(pair.puller, pair.server)
        time.sleep(delay)
        if process == "stager":
            # Killed while it writes a file (it has a staging file open), if it does before
            # the command ends; else whatever stager there is.
            targets = []
            while command.running() and not targets:
                targets = [pid for pid in stager_pids(victim) if writing(pid)]
                time.sleep(0.01)
            if targets:
                time.sleep(pair.rng.uniform(0.0, 0.1))
                tally.stager_writing += 1
            else:
                targets = stager_pids(victim)
            if not targets:
                problems.append(NO_STAGER)
        else:
            old = program_pid(victim, process)
            targets = [old] if old else []
        running = command.running()
        killed = sigkill(targets)
        tally.tries += 1
        tally.mid_run += running
        command.finish(limit=660, progress=lambda: progress(pair.members), stall=STALL)
        if command.hung:
            problems.append(
                f"the interrupted `realize consensus` never returned ({command.summary()})"
            )
        if not running:  # the pull was over before the kill: aim earlier
            pair.estimate = max(0.3, pair.estimate * 0.85)
        if old is not None and killed:
            wait_restarted(victim, process, old)
        wait_connected(pair.members)
        recovery = consensus(pair.puller, pair.server)
        if recovery.finish(limit=660, progress=lambda: progress(pair.members), stall=STALL) != 0:
            problems.append(f"the next consensus failed ({recovery.summary()})")
    sightings = observer.sightings
    for where, rel, what in sightings[:3]:
        problems.append(f"visible on {where}: {rel}: {what}")
    diffs = [(name, d) for name, d in pair.differences() if d]
    lost = len(observer.bad_paths()) + sum(d.lost for _, d in diffs)
    for name, d in diffs:
        problems.append("after the next consensus, " + d.describe(name))
    stuck = pair.settling.wait(limit=90)
    if stuck:
        problems.append("left unfinished: " + ", ".join(stuck))
    tally.lost += lost
    if not problems or problems == [NO_STAGER]:
        tally.survived += 1
    # Not lost, not under a real name, but left in a person's folder.
    for m in pair.members:
        left = temporary_files(m.dir)
        if left:
            problems.append(
                f"(remark) {len(left)} temporary file(s) left in {m.name}'s area: "
                f"{', '.join(left[:2])}"
            )
    stager_gave_up = stager_failures(pair.puller) - stager_before
    tally.stager_gave_up += stager_gave_up
    where = f"{process}@{side} try {tally.tries} (kill at {delay:.2f} s)"
    tally.log.append(
        f"{where}: killed {killed or 'nothing'} {'during' if running else 'after'} the command "
        f"({command.summary()}); stager jobs given back: {stager_gave_up}; "
        f"next consensus {recovery.summary()}"
    )
    for p in problems:
        tally.problems.append(f"{where}: {p}")
    if diffs:
        repair(pair, tally)


def stager_failures(member) -> int:
    """Files the worker staged itself since it started logging: its stager did not."""
    try:
        return (member.home / "logs" / "worker.log").read_text().count("the stager did not")
    except FileNotFoundError:
        return 0


def repair(pair: Pair, tally: Tally) -> None:
    """Bring the pair back together for the next tries (noted), or give up."""
    for attempt in range(1, 4):
        pair.puller.consensus(pair.server, check=False)
        pair.server.consensus(pair.puller, check=False)
        if not any(d for _, d in pair.differences()):
            tally.problems.append(f"    (converged after {attempt} more round(s) of consensus)")
            return
    raise AssertionError("the peers do not converge any more:\n" + "\n".join(tally.problems))


@pytest.fixture
def pair(tmp_path):
    members = make_household(tmp_path, ["alpha", "beta"])
    yield Pair(*members)
    for m in members:
        m.destroy()


@pytest.mark.timeout(600 + TRIES * len(COMBOS) * 150)
def test_sigkill_mid_pull(pair, fault_table):
    # A first content, and how long a pull of a try's size takes here.
    pair.work["server"].additions(SERVER_SMALL, edits=0, large=pair.large())
    pair.work["puller"].additions(PULLER_SMALL, edits=0, large=[LARGE_SIZES[0]])
    started = time.monotonic()
    command = consensus(pair.puller, pair.server)
    assert command.finish() == 0, command.summary()
    pair.estimate = max(0.3, time.monotonic() - started)
    assert not any(d for _, d in pair.differences())

    tallies = {combo: Tally() for combo in COMBOS}
    try:
        for _ in range(TRIES):
            # Each program is killed once a round: `up`'s backoff for it starts afresh.
            order = list(COMBOS)
            pair.rng.shuffle(order)
            for process, side in order:
                one_try(pair, process, side, tallies[(process, side)])
    finally:
        for (process, side), t in tallies.items():
            notes = [f"{t.mid_run}/{t.tries} kills mid-consensus"]
            if process == "stager":
                notes[0] += (
                    f", {t.stager_writing} while it wrote a file; "
                    f"{t.stager_gave_up} of its files then staged by the worker"
                )
            notes[0] += f"; seed {SEED}"
            notes += [p.replace("|", "/") for p in t.problems[:4]]
            fault_table.record(
                f"SIGKILL {process} on the {side}", t.tries, t.survived, t.lost, "; ".join(notes)
            )
    problems = [p for t in tallies.values() for p in t.problems]
    print("\n".join(line for t in tallies.values() for line in t.log))
    assert all(t.survived == t.tries for t in tallies.values()), "\n".join(problems)
