"""The figures of a run, and the table they are printed as."""

import os
import statistics
from dataclasses import dataclass, field
from datetime import datetime

from bench.timing import Timed

# What Realize is aiming for, against the tools it is compared with.
TARGET_VS_SYNCTHING = 0.33
TARGET_DELTA_VS_RSYNC = 1.5


@dataclass
class Delta:
    """One step of the delta measurement, for one tool."""

    label: str
    wire_bytes: int
    seconds: float
    payload: int | None = None  # content bytes the tool says it moved, when it says
    note: str = ""

    def __str__(self) -> str:
        return f"{self.label}: {self.wire_bytes:,} bytes on the wire, {self.seconds:.2f} s"


@dataclass
class RunDetail:
    """A consensus run as an appliance recorded it."""

    member: str
    trigger: str
    status: str
    requested_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    files_in: int
    bytes_in: int
    files_out: int
    bytes_out: int

    def __str__(self) -> str:
        def gap(a: datetime | None, b: datetime | None) -> str:
            return f"{max(0.0, (b - a).total_seconds()):.1f} s" if a and b else "-"

        return (
            f"run on {self.member} ({self.trigger}, {self.status}): "
            f"queued {gap(self.requested_at, self.started_at)}, "
            f"ran {gap(self.started_at, self.finished_at)}, "
            f"in {self.files_in} files / {self.bytes_in:,} B, "
            f"out {self.files_out} files / {self.bytes_out:,} B"
        )


@dataclass
class Results:
    """The tree transfers, one per round for each tool (the median seconds are what is
    compared), and the delta bytes."""

    tree: str
    realize_trees: list[Timed]
    syncthing_trees: list[Timed]
    rsync_trees: list[Timed]
    realize_deltas: list[Delta]
    rsync_deltas: list[Delta]
    realize_notes: list[str] = field(default_factory=list)

    @property
    def realize_tree(self) -> float:
        return _median_seconds(self.realize_trees)

    @property
    def syncthing_tree(self) -> float:
        return _median_seconds(self.syncthing_trees)

    @property
    def rsync_tree(self) -> float:
        return _median_seconds(self.rsync_trees)


def _median_seconds(rounds: list[Timed]) -> float:
    return statistics.median(t.seconds for t in rounds)


def _busy(rounds: list[Timed], cores: int) -> str:
    """The median busy CPU-seconds of the rounds and the median share of the machine."""
    busy = [t.busy for t in rounds if t.busy is not None]
    shares = [s for s in (t.share(cores) for t in rounds) if s is not None]
    if not busy or not shares:
        return "-"
    return f"{statistics.median(busy):.1f} ({statistics.median(shares):.0%})"


def _verdict(ratio: float, target: float) -> str:
    return f"target < {target}: {'met' if ratio < target else 'MISSED'}"


def render(results: Results, tree_bytes: int, cores: int | None = None) -> str:
    cores = cores or os.cpu_count() or 1
    rounds = len(results.realize_trees)
    lines = [f"Tree transfer ({results.tree}), median of {rounds} round(s)", ""]
    lines.append(f"  {'tool':<38}{'seconds':>9}{'MB/s':>8}{'busy CPU-s':>16}   each round (s)")
    for name, seconds, each in [
        ("Realize   alpha -> beta (consensus)", results.realize_tree, results.realize_trees),
        ("Syncthing A -> B (send/receive-only)", results.syncthing_tree, results.syncthing_trees),
        ("rsync -a  (two local directories)", results.rsync_tree, results.rsync_trees),
    ]:
        rate = tree_bytes / seconds / 1e6
        rounds_text = ", ".join(f"{t.seconds:.2f}" for t in each)
        lines.append(
            f"  {name:<38}{seconds:>9.2f}{rate:>8.1f}{_busy(each, cores):>16}   {rounds_text}"
        )
    lines.append(
        f"  (busy CPU-s: what the whole machine, {cores} cores, spent not idle during the "
        "transfer, and its share"
    )
    lines.append("  of the machine's time then; medians of the rounds)")
    # Compared round by round (the tools of a round meet the machine in the same state: here
    # every tool slowed down by half or more from one round to the next), the median of those.
    by_round = [
        r.seconds / s.seconds
        for r, s in zip(results.realize_trees, results.syncthing_trees, strict=True)
    ]
    vs_syncthing = statistics.median(by_round)
    vs_rsync = results.realize_tree / results.rsync_tree
    each_round = ", ".join(f"{ratio:.2f}" for ratio in by_round)
    lines.append("")
    lines.append(
        f"  Realize / Syncthing = {vs_syncthing:.2f}   "
        f"({_verdict(vs_syncthing, TARGET_VS_SYNCTHING)}; median of the rounds' ratios)"
    )
    lines.append(
        f"  (round by round: {each_round}; median seconds over median seconds: "
        f"{results.realize_tree / results.syncthing_tree:.2f})"
    )
    lines.append(f"  Realize / rsync     = {vs_rsync:.2f}")
    lines += ["", "Delta bytes (64 MiB random file; bytes on the wire, both directions)", ""]
    lines.append(
        f"  {'step':<18}{'Realize B':>12}{'payload B':>12}{'rsync B':>12}{'ratio':>8}"
        f"{'Realize s':>11}{'rsync s':>9}"
    )
    for mine, theirs in zip(results.realize_deltas, results.rsync_deltas, strict=True):
        ratio = mine.wire_bytes / theirs.wire_bytes
        payload = f"{mine.payload:,}" if mine.payload is not None else "-"
        lines.append(
            f"  {mine.label:<18}{mine.wire_bytes:>12,}{payload:>12}{theirs.wire_bytes:>12,}"
            f"{ratio:>8.2f}{mine.seconds:>11.2f}{theirs.seconds:>9.2f}"
            + (f"  ({mine.note})" if mine.note else "")
        )
    lines.append("")
    for mine, theirs in zip(results.realize_deltas[1:], results.rsync_deltas[1:], strict=True):
        ratio = mine.wire_bytes / theirs.wire_bytes
        lines.append(
            f"  {mine.label}: Realize / rsync = {ratio:.2f}   "
            f"({_verdict(ratio, TARGET_DELTA_VS_RSYNC)})"
        )
    lines += [
        "",
        "  Realize B: frame bytes beta exchanged with alpha during `realize consensus` (TLS",
        "  overhead, ~0.1%, not counted); payload B: content bytes the command reports it",
        "  received; rsync B: 'Total bytes sent' + 'Total bytes received' of rsync --stats",
        "  with --no-whole-file. Realize s: seconds of the consensus command.",
    ]
    if results.realize_notes:
        lines += ["", "Realize tree transfer, as the appliances recorded it:"]
        lines += [f"  {note}" for note in results.realize_notes]
    return "\n".join(lines)
