"""The races probe's tools (test_races.py): a household whose peers change the same files
before they meet, the runs that follow, and an audit of what every peer ends with.

A `Race` writes contents it can recognise (each a label of its own), runs consensus and keeps
every run's outcome, and after each try audits the trees: equal on every peer, the versions
that must survive present on every peer, removed paths not back with the content they had.
"""

import hashlib
import secrets
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tests.household import AREA, Member, tree

# Rest period after a create or edit: no automatic run starts from those while a try runs
# (a delete or a rename still starts one at once: the tries stop a peer to hold it back).
FOREVER = 1_000_000
# How long a consensus may wait for a peer that has just come back to be connected.
RECONNECT_LIMIT = 150.0


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def household(root: Path, names: list[str], deaf: set[str] = frozenset()) -> list[Member]:
    """tests.household.make_household, the members' set-up commands side by side (and each
    peer id asked once): the same household, made in less time."""
    members = [Member(root, name, deaf=name in deaf) for name in names]
    with ThreadPoolExecutor(len(members)) as pool:

        def each(step) -> list:
            return list(pool.map(step, members))

        each(lambda m: m.init(m.listen))
        ids = dict(zip(names, each(lambda m: m.peer_id), strict=True))

        def join(m: Member) -> None:
            for other in members:
                if other is not m:
                    address = ["--address", other.listen] if other.listen else []
                    m.run("peer", "add", other.name, ids[other.name], *address)
            m.run("area", "add", AREA, str(m.dir))

        each(join)
    # Started from this thread: an appliance stops when the thread that started it ends
    # (tests.appliance.stop_with_parent).
    for m in members:
        m.up()
    return members


def destroy(members: list[Member]) -> None:
    """Stop and drop them all, side by side."""
    if members:
        with ThreadPoolExecutor(len(members)) as pool:
            list(pool.map(lambda m: m.destroy(), members))


def hold_still(members: list[Member]) -> None:
    for m in members:
        m.sql("UPDATE areas_area SET rest_seconds = %s", FOREVER)


@dataclass
class Run:
    initiator: str
    other: str
    ok: bool
    error: str
    seconds: float

    def __str__(self) -> str:
        state = "ok" if self.ok else f"FAILED: {self.error}"
        return f"{self.initiator}->{self.other} {state} ({self.seconds:.1f}s)"


@dataclass
class Try:
    number: int
    problems: list[str] = field(default_factory=list)
    # What each problem is about (a path, or a version's label): `lost` counts each once.
    lost: set[str] = field(default_factory=set)
    runs: list[Run] = field(default_factory=list)
    unsettled: bool = False
    # Failures of runs the try expected to fail (an obstacle in place): not held against it.
    expected_failures: list[Run] = field(default_factory=list)
    # Wrong records with the files all right (e.g. a conflict recorded that did not happen).
    records: list[str] = field(default_factory=list)
    pictures: dict[str, dict[str, str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    crash: str = ""  # the try ended early: what the test itself ran into

    @property
    def failed_runs(self) -> list[Run]:
        return [r for r in self.runs if not r.ok]

    def clean(self, strict_runs: bool) -> bool:
        if self.problems or self.unsettled or self.records or self.crash:
            return False
        return not (strict_runs and self.failed_runs)


class Race:
    """One household's race, try after try (fresh file names each try)."""

    def __init__(self, members: list[Member], strict_runs: bool = False):
        self.members = members
        self.strict_runs = strict_runs  # no run may fail at all (not even one that recovers)
        self.labels: dict[str, str] = {}  # digest -> label
        self.tries: list[Try] = []
        self.token = secrets.token_hex(3)
        self.extra = ""  # a note of the probe's own, for its row
        # Versions that must stay on every peer from now on: all an audit required so far.
        self.standing: dict[str, bytes] = {}
        # Called after every run of the current try (Vigil).
        self.checks: list[Callable[[], None]] = []

    # --- writing -----------------------------------------------------------------------------
    def data(self, label: str) -> bytes:
        content = f"{label} ({self.token})\n".encode()
        self.labels[digest(content)] = label
        return content

    def write(self, member: Member, path: str, label: str) -> bytes:
        content = self.data(label)
        target = member.dir / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        return content

    # --- a try --------------------------------------------------------------------------------
    def begin(self, number: int) -> Try:
        self.tries.append(Try(number))
        self.checks = []
        return self.tries[-1]

    @property
    def now(self) -> Try:
        return self.tries[-1]

    def problem(self, text: str, about: str | None = None) -> None:
        """A file lost, resurrected or divergent (`about`: which one; None: not a file's)."""
        self.now.problems.append(text)
        if about is not None:
            self.now.lost.add(about)

    def note(self, text: str) -> None:
        self.now.notes.append(text)

    # --- runs ---------------------------------------------------------------------------------
    def meet(self, x: Member, y: Member, expect_failure: bool = False) -> Run:
        """`realize consensus` on x with y. A peer just back may take a while to connect."""
        started = time.monotonic()
        while True:
            result = x.consensus(y, check=False)
            error = (result.stderr.strip().splitlines() or [""])[-1]
            waiting = result.returncode != 0 and "is not connected" in error
            if not waiting or time.monotonic() - started > RECONNECT_LIMIT:
                break
        run = Run(x.name, y.name, result.returncode == 0, error, time.monotonic() - started)
        (self.now.expected_failures if expect_failure else self.now.runs).append(run)
        for check in self.checks:
            check()
        return run

    def settle(self, pairs: list[tuple[Member, Member]], rounds: int = 5) -> bool:
        """Consensus over each pair, round after round, until a round succeeds everywhere and
        changes nothing, with the trees of the peers involved equal (at least two rounds).
        False if it never does."""
        involved = list({m.name: m for pair in pairs for m in pair}.values())
        for i in range(rounds):
            before = self.trees(involved)
            ok = all([self.meet(x, y).ok for x, y in pairs])
            after = self.trees(involved)
            same = all(t == next(iter(after.values())) for t in after.values())
            if i >= 1 and ok and before == after and same:
                return True
        self.now.unsettled = True
        self.problem(f"not settled after {rounds} rounds")
        return False

    # --- looking ------------------------------------------------------------------------------
    def trees(self, members: list[Member] | None = None) -> dict[str, dict]:
        return {m.name: tree(m.dir) for m in members or self.members}

    def label(self, found: tuple[str, int] | None) -> str:
        if found is None:
            return "-"
        return self.labels.get(found[0], "?" + found[0][:8])

    def picture(self, member: Member, under: str = "") -> dict[str, str]:
        """Path -> label of what it holds, for the report (only paths starting with `under`)."""
        return {
            p: self.label(v) for p, v in sorted(tree(member.dir).items()) if p.startswith(under)
        }

    def snap(self, under: str = "") -> None:
        self.now.pictures = {m.name: self.picture(m, under) for m in self.members}

    def conflicts(self, member: Member) -> list[tuple[str, str, str]]:
        return member.sql("SELECT path, copy_path, description FROM areas_conflict ORDER BY id")

    def failed_automatic_runs(self, member: Member) -> list[str]:
        rows = member.sql(
            "SELECT trigger, peer_name, error FROM areas_consensusrun"
            " WHERE status = 'failed' AND trigger <> 'command' ORDER BY id"
        )
        return [f"{member.name}->{peer} ({trigger}): {error}" for trigger, peer, error in rows]

    # --- the audit ----------------------------------------------------------------------------
    def audit(
        self,
        keep: dict[str, bytes] | None = None,
        gone: dict[str, bytes] | None = None,
        at: dict[str, bytes | None] | None = None,
        members: list[Member] | None = None,
        prefix: str = "",
        lasting: bool = True,
    ) -> int:
        """Problems found now (each also kept on the try):
        - a path that differs between peers (missing on some, or other content);
        - `keep`: a content (by label) missing from some peer's tree; so is one that an
          earlier audit required (kept or at a path), or a later change that went through;
        - `gone`: a path back with the content it had when a user removed it;
        - `at`: a path not holding what it must (None: no file there) on some peer.
        With `lasting`, what this audit requires stays required in later audits."""
        members = members or self.members
        keep = {**self.standing, **(keep or {})}
        trees = self.trees(members)
        problems = []  # (text, what it is about)
        for path in sorted(set().union(*trees.values())):
            held = {name: t.get(path) for name, t in trees.items()}
            if len(set(held.values())) > 1:
                seen = ", ".join(f"{n}: {self.label(v)}" for n, v in held.items())
                problems.append((f"{path} differs ({seen})", path))
        for content in keep.values():
            d = digest(content)
            missing = [n for n, t in trees.items() if d not in {v[0] for v in t.values()}]
            if missing:
                problems.append((f"'{self.labels[d]}' lost on {','.join(missing)}", d))
        for path, content in (gone or {}).items():
            back = [n for n, t in trees.items() if t.get(path, ("",))[0] == digest(content)]
            if back:
                label = self.labels[digest(content)]
                problems.append((f"{path} came back ('{label}') on {','.join(back)}", path))
        for path, content in (at or {}).items():
            want = None if content is None else digest(content)
            wrong = [n for n, t in trees.items() if (t[path][0] if path in t else None) != want]
            if wrong:
                what = "exists" if content is None else f"is not '{self.labels[want]}'"
                held = ", ".join(f"{n}: {self.label(trees[n].get(path))}" for n in wrong)
                problems.append((f"{path} {what} ({held})", path))
        for text, about in problems:
            self.problem(prefix + text, about)
        if lasting:
            self.standing.update(keep)
            self.standing.update({p: c for p, c in (at or {}).items() if c is not None})
        return len(problems)

    def share(self, pairs: list[tuple[Member, Member]], files: dict[str, bytes]) -> None:
        """Before the race: a consensus over each pair, and the files on every peer involved."""
        for x, y in pairs:
            self.meet(x, y)
        involved = list({m.name: m for pair in pairs for m in pair}.values())
        self.audit(at=files, members=involved, prefix="before the race: ", lasting=False)

    def later_changes_sync(self, a: Member, b: Member, tag: str) -> None:
        """A file made on each side afterwards reaches the other."""
        on_a = self.write(a, f"later-{tag}-{a.name}.txt", f"later {tag} on {a.name}")
        on_b = self.write(b, f"later-{tag}-{b.name}.txt", f"later {tag} on {b.name}")
        self.meet(a, b)
        for m in (a, b):
            for path, content in (
                (f"later-{tag}-{a.name}.txt", on_a),
                (f"later-{tag}-{b.name}.txt", on_b),
            ):
                file = Path(m.dir, path)
                if not file.is_file() or file.read_bytes() != content:
                    self.problem(f"later change {path} did not reach {m.name}", path)
        self.standing.update({f"later {tag} on {m.name}": c for m, c in ((a, on_a), (b, on_b))})

    # --- the outcome --------------------------------------------------------------------------
    @property
    def survived(self) -> int:
        return sum(t.clean(self.strict_runs) for t in self.tries)

    @property
    def lost(self) -> int:
        return sum(len(t.lost) for t in self.tries)

    def short_notes(self) -> str:
        parts = []
        runs = [r for t in self.tries for r in t.runs]
        failed = [r for r in runs if not r.ok]
        if failed:
            errors = sorted({r.error for r in failed})
            parts.append(f"{len(failed)}/{len(runs)} runs failed: " + "; ".join(errors))
        crashes = [t.crash for t in self.tries if t.crash]
        if crashes:
            parts.append(f"crashed: {crashes[0]}")
        unsettled = sum(t.unsettled for t in self.tries)
        if unsettled:
            parts.append(f"{unsettled} tries never settled")
        problems = [p for t in self.tries for p in t.problems if not p.startswith("not settled")]
        if problems:
            parts.append(f"{len(problems)} problems, e.g. " + "; ".join(problems[:3]))
        records = [r for t in self.tries for r in t.records]
        if records:
            parts.append(f"{len(records)} wrong records, e.g. " + "; ".join(records[:2]))
        if self.extra:
            parts.append(self.extra)
        text = ". ".join(parts) or "all converged"
        text = text.replace("|", "/").replace("\n", " ")
        return text if len(text) <= 600 else text[:597] + "..."

    def report(self) -> str:
        """Everything seen, try by try: for the assertion's message and the -s output."""
        lines = []
        for t in self.tries:
            lines.append(f"try {t.number}: {'clean' if t.clean(self.strict_runs) else 'BAD'}")
            lines += [f"  run {r}" for r in t.runs]
            lines += [f"  run {r} (obstacle in place)" for r in t.expected_failures]
            lines += [f"  problem: {p}" for p in t.problems]
            lines += [f"  wrong record: {r}" for r in t.records]
            lines += [f"  note: {n}" for n in t.notes]
            if t.crash:
                lines.append(f"  CRASHED: {t.crash}")
            for name, picture in t.pictures.items():
                lines.append(f"  {name}: {picture}")
        for m in self.members:
            rows = self.conflicts(m)
            kinds = sorted({r[2] for r in rows})
            counted = ", ".join(f"{sum(r[2] == k for r in rows)} x '{k}'" for k in kinds)
            lines.append(f"{m.name} conflicts recorded: {counted or 'none'}")
            lines += [f"  {row}" for row in rows[:8]]
            lines += [f"{m.name} automatic run {f}" for f in self.failed_automatic_runs(m)]
        return "\n".join(lines)

    def clean(self) -> bool:
        return self.survived == len(self.tries)


class Vigil:
    """A path a user removed, watched after every run: once gone from a peer, it must not
    come back there with the content it had."""

    def __init__(self, race: Race, path: str, content: bytes):
        self.race, self.path, self.content = race, path, content
        self.absent: set[str] = set()
        self.back: set[str] = set()

    def __call__(self) -> None:
        for m in self.race.members:
            try:
                present = (m.dir / self.path).read_bytes() == self.content
            except OSError:
                present = False
            if not present:
                self.absent.add(m.name)
            elif m.name in self.absent and m.name not in self.back:
                self.back.add(m.name)
                run = self.race.now.runs[-1] if self.race.now.runs else "?"
                self.race.problem(
                    f"{self.path} came back on {m.name} (seen after run {run})", self.path
                )
