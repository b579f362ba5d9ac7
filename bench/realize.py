"""Realize: two real appliances (alpha, beta) on this machine, sharing the area "docs"."""

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

from bench import trees
from bench.report import Delta, RunDetail
from bench.timing import SETUP_LIMIT, TRANSFER_LIMIT, Deadline, GaveUp, Stopwatch, Timed, log, poll
from tests import household as household_module
from tests.appliance import drop_database
from tests.household import AREA, Member, make_household, transferred

# After a change, a peer starts a consensus by itself once the area has rested this long
# (plus the watcher's quiet second); the delta measurement waits that out between edits so
# that no automatic run of the previous step lands in the next step's byte count.
SETTLE_MARGIN = 5.0


@contextmanager
def household(root: Path) -> Iterator[tuple[Member, Member]]:
    """alpha and beta, up and knowing each other; destroyed on the way out, even when
    make_household fails half-way (it returns nothing then, so the members it made are
    caught as they are made)."""
    made: list[Member] = []

    class Tracked(Member):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    try:
        with mock.patch.object(household_module, "Member", Tracked):
            alpha, beta = make_household(root, ["alpha", "beta"])
        yield alpha, beta
    finally:
        for member in made:
            _destroy(member)


def _destroy(member: Member) -> None:
    try:
        member.destroy()
    except Exception as exc:  # noqa: BLE001 - whatever happened, the rest must be cleaned up
        log(f"stopping {member.name} failed ({exc}); killing it")
        _kill(member)
        drop_database(member.database)


def _kill(member: Member) -> None:
    """Kill `realize up` and its programs: each runs in its own process group, which killing
    the supervisor alone would leave running."""
    if member.up_process is None:
        return
    programs = (member.up_state() or {}).get("programs", {})
    member.up_process.kill()
    member.up_process.wait(timeout=30)
    for program in programs.values():
        if program.get("pid"):
            try:
                os.killpg(program["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def consensus(member: Member, other: Member, deadline: Deadline) -> tuple[float, str]:
    """Run `realize consensus docs --peer OTHER` on member: (seconds, its output)."""
    started = time.monotonic()
    try:
        result = member.run(
            "consensus", AREA, "--peer", other.name, check=False, timeout=deadline.remaining()
        )
    except subprocess.TimeoutExpired as exc:
        raise GaveUp(f"{deadline.what}: realize consensus still running, killed") from exc
    seconds = time.monotonic() - started
    if result.returncode != 0:
        raise RuntimeError(
            f"realize consensus on {member.name} exited {result.returncode}:\n"
            f"{result.stdout}{result.stderr}"
        )
    return seconds, result.stdout


def traffic(member: Member, peer: str) -> int:
    """Frame bytes member's peerd has sent to and received from peer since it started, over
    its connection to the peer and the data links the peer's worker opened to it."""
    state = json.loads(member.run("status", "--json").stdout)
    if state.get("traffic") is None:
        raise RuntimeError(f"{member.name}'s peerd is not running (status: {state})")
    counts = state["traffic"].get(peer, {"sent": 0, "received": 0})
    return counts["sent"] + counts["received"]


def tree_transfer(
    alpha: Member, beta: Member, staged: Path, spec: trees.TreeSpec
) -> tuple[Timed, list[str]]:
    """From the tree appearing in alpha's area to beta having all of it, and notes."""
    notes: list[str] = []
    deadline = Deadline(TRANSFER_LIMIT, "Realize tree transfer")
    window_start = datetime.now(UTC)
    trees.hand_over(staged, alpha.dir)
    watch = Stopwatch()
    _, output = consensus(beta, alpha, deadline)
    arrived = beta.dir / staged.name
    if not trees.has_all(arrived, spec):
        files, size = trees.stats(arrived)
        notes.append(
            f"consensus exited 0 with {files} files / {size:,} bytes on beta, "
            f"not {spec.files} / {spec.bytes:,}: {output.strip()}"
        )
        poll(
            lambda: trees.has_all(arrived, spec),
            "the rest of the tree on beta",
            deadline.remaining(),
        )
    timed = watch.stop()
    ended = datetime.now(UTC)
    notes.append(f"command output: {output.strip()}")
    recorded = runs(beta, window_start) + runs(alpha, window_start)
    notes += [str(run) for run in recorded]
    own = next((r for r in recorded if r.trigger == "command" and r.finished_at), None)
    if own is not None:
        notes.append(
            f"the command itself: {(own.requested_at - window_start).total_seconds():.1f} s "
            f"from start to its run queued, {(ended - own.finished_at).total_seconds():.1f} s "
            "from the run's end to exit"
        )
    return timed, notes


def runs(member: Member, since: datetime) -> list[RunDetail]:
    """The consensus runs member recorded since a moment: where a transfer's time went."""
    rows = member.sql(
        "SELECT trigger, status, requested_at, started_at, finished_at, files_in, bytes_in,"
        " files_out, bytes_out FROM areas_consensusrun WHERE requested_at >= %s"
        " ORDER BY requested_at",
        since,
    )
    return [RunDetail(member.name, *row) for row in rows]


def settle(alpha: Member, beta: Member, last_change: float) -> None:
    """Wait until no automatic consensus is still due, and none is queued or running."""
    rest = alpha.sql("SELECT rest_seconds FROM areas_area WHERE name = %s", AREA)[0][0]
    due = last_change + rest + SETTLE_MARGIN - time.monotonic()
    if due > 0:
        log(f"  waiting {due:.0f} s for automatic consensus runs to pass")
        time.sleep(due)
    busy = "SELECT count(*) FROM areas_consensusrun WHERE status IN ('pending', 'running')"
    poll(
        lambda: alpha.sql(busy)[0][0] == 0 and beta.sql(busy)[0][0] == 0,
        "consensus runs to finish",
        SETUP_LIMIT,
        every=0.5,
    )


def _measured_consensus(alpha: Member, beta: Member, label: str, file: Path) -> Delta:
    """One consensus, beta asking alpha: traffic before and after, and the file checked.
    Counted by alpha, the side that serves: beta's worker fetches over data links of its own,
    which beta's peerd does not see."""
    window_start = datetime.now(UTC)
    before = traffic(alpha, beta.name)
    seconds, output = consensus(beta, alpha, Deadline(TRANSFER_LIMIT, f"Realize, {label}"))
    wire = traffic(alpha, beta.name) - before
    received, _sent = transferred(output)
    if trees.sha256_file(beta.dir / file.name) != trees.sha256_file(file):
        raise AssertionError(f"Realize, {label}: beta's copy differs after consensus")
    others = [r for r in runs(beta, window_start) if r.trigger != "command"]
    note = f"{len(others)} other run(s) overlapped the count" if others else ""
    return Delta(label, wire, seconds, payload=received, note=note)


def deltas(alpha: Member, beta: Member, base: Path, scratch: Path) -> list[Delta]:
    """The 64 MiB file synced, then each edit of trees.EDITS, one consensus each."""
    staged = trees.staged_copy(base, scratch / "staged")
    file = trees.hand_over(staged, alpha.dir)
    results = [_measured_consensus(alpha, beta, "initial copy", file)]
    log(f"  Realize: {results[-1]}")
    for label, edit in trees.EDITS:
        settle(alpha, beta, time.monotonic())
        log(f"  Realize: {label}")
        edit(file, scratch)
        results.append(_measured_consensus(alpha, beta, label, file))
        log(f"  Realize: {results[-1]}")
    return results


def tree_only(root: Path, tree: Path, manifest: trees.Manifest, spec: trees.TreeSpec) -> Timed:
    """One more tree transfer, on a household of its own (a fresh beta)."""
    log("Realize: starting alpha and beta")
    try:
        with household(root) as (alpha, beta):
            staged = trees.staged_copy(tree, root / "staged")
            consensus(beta, alpha, Deadline(SETUP_LIMIT, "Realize warm-up consensus"))
            log("Realize: tree transfer")
            timed, _ = tree_transfer(alpha, beta, staged, spec)
            log(f"Realize: tree transfer took {timed.seconds:.1f} s; checking content")
            trees.check(beta.dir / tree.name, manifest, "Realize")
            return timed
    finally:
        for data in [*root.glob("area-*"), root / "staged"]:
            trees.set_aside(data)


def measure(
    root: Path, tree: Path, manifest: trees.Manifest, base: Path, spec: trees.TreeSpec
) -> tuple[Timed, list[str], list[Delta]]:
    """Both Realize measurements on one household: (tree transfer, notes, deltas)."""
    log("Realize: starting alpha and beta")
    try:
        with household(root) as (alpha, beta):
            staged = trees.staged_copy(tree, root / "staged")
            # As for Syncthing, the clock starts on peers ready to work: an empty consensus
            # is done only once both are connected and beta's worker takes tasks.
            idle, _ = consensus(beta, alpha, Deadline(SETUP_LIMIT, "Realize warm-up consensus"))
            log("Realize: tree transfer")
            timed, notes = tree_transfer(alpha, beta, staged, spec)
            notes.append(f"for comparison, a consensus with nothing to do took {idle:.1f} s")
            log(f"Realize: tree transfer took {timed.seconds:.1f} s; checking content")
            trees.check(beta.dir / tree.name, manifest, "Realize")
            # alpha's own automatic consensus for the tree is still due: let it pass first.
            settle(alpha, beta, time.monotonic())
            log("Realize: delta bytes")
            return timed, notes, deltas(alpha, beta, base, root / "scratch")
    finally:
        # Stopped appliances no longer watch it; it is removed at the end of the run.
        for data in [*root.glob("area-*"), root / "staged", root / "scratch"]:
            trees.set_aside(data)
