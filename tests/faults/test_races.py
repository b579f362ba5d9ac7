"""Races: peers change the same files before they meet, then sync until quiet.

Each probe runs one household and repeats its race `TRIES` times, with fresh names each try.
A change is made "while a peer is down" by stopping that peer's appliance (a delete or a
rename would otherwise start a consensus at once); creates and edits start none during a try
(races.FOREVER). After the race, consensus runs until a round changes nothing, then the trees
are audited (races.Race.audit): the same on every peer, every version that must survive on
every peer, nothing a user removed back with the content it had, and later changes still go
both ways. A run that fails is recorded; one that fails and is not followed by a good one
leaves the try unsettled.

The `lost` column counts files lost, resurrected or divergent, and files not where the
race's expected outcome puts them.
"""

import contextlib
from pathlib import Path

import pytest

from tests.faults.conftest import TRIES
from tests.faults.races import Race, Vigil, destroy, digest, hold_still
from tests.faults.races import household as make_household
from tests.household import AREA, Member

BOTH_CHANGED = "changed on both sides"
FALSE_DELETE = "deleted on the peer, changed here"


@pytest.fixture
def household(tmp_path):
    made = []

    def make(*names, deaf=()):
        members = make_household(tmp_path, list(names), set(deaf))
        made.extend(members)
        hold_still(members)
        return members

    yield make
    destroy(made)


@contextlib.contextmanager
def away(member: Member):
    """The member's appliance stopped for the block: what happens to its files meanwhile, it
    finds when it starts again."""
    member.stop()
    try:
        yield
    finally:
        member.up()


def plan(a: Member, b: Member, i: int) -> tuple[Member, Member, Member]:
    """Try i's cast: who makes the first change, who the second, and who is away meanwhile.

    The peer away alternates every try (its change is found by the scan it makes when it
    starts, the other's by its watcher); the changes swap peers every two tries."""
    first, second = (a, b) if (i // 2) % 2 == 0 else (b, a)
    return first, second, second if i % 2 == 0 else first


def back(returning: Member, a: Member, b: Member) -> list[tuple[Member, Member]]:
    """After the race, the peer that comes back runs the consensus."""
    return [(returning, b if returning is a else a)]


@contextlib.contextmanager
def probe(race: Race, fault_table, name: str):
    """The probe's tries; then its row in the fault table, and the verdict. A try the test
    itself could not finish (a file it meant to change was not there) counts as not survived."""
    crash = None
    try:
        yield race
    except Exception as exc:  # noqa: BLE001 - recorded, then raised again below
        crash = exc
        if race.tries:
            race.now.crash = f"{type(exc).__name__}: {exc}"
    print(f"\n== {name}\n{race.report()}")
    fault_table.record(name, len(race.tries), race.survived, race.lost, race.short_notes())
    if crash is not None:
        raise AssertionError(f"{name} crashed\n{race.report()}") from crash
    assert race.clean(), f"{name}: {race.lost} lost\n{race.report()}"


def test_delete_meets_rename(household, fault_table):
    a, b = household("A", "B")
    with probe(Race([a, b]), fault_table, "races: delete/rename") as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            deleter, renamer, gone = plan(a, b, i)
            x, y = f"x{i}.txt", f"y{i}.txt"
            old = race.write(a, x, f"x{i}")
            race.share([(a, b)], {x: old})
            with away(gone):
                (deleter.dir / x).unlink()
                (renamer.dir / x).rename(renamer.dir / y)
            race.settle(back(gone, a, b))
            race.snap()
            # The rename is not undone, its content not lost; the delete is not undone.
            race.audit(keep={"bystander": bystander}, at={x: None, y: old})
            race.later_changes_sync(a, b, str(i))


def test_edit_meets_rename(household, fault_table):
    a, b = household("A", "B")
    with probe(Race([a, b]), fault_table, "races: edit/rename") as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            editor, renamer, gone = plan(a, b, i)
            x, y = f"x{i}.txt", f"y{i}.txt"
            old = race.write(a, x, f"x{i}")
            race.share([(a, b)], {x: old})
            with away(gone):
                edited = race.write(editor, x, f"x{i} edited on {editor.name}")
                (renamer.dir / x).rename(renamer.dir / y)
            race.settle(back(gone, a, b))
            race.snap()
            # The edit at the path, the version it replaced where the rename took it.
            race.audit(keep={"bystander": bystander}, at={x: edited, y: old})
            race.later_changes_sync(a, b, str(i))


def test_rename_meets_rename(household, fault_table):
    a, b = household("A", "B")
    race = Race([a, b], strict_runs=True)
    with probe(race, fault_table, "races: rename/rename (no run may fail)"):
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            first, second, gone = plan(a, b, i)
            x = f"x{i}.txt"
            old = race.write(a, x, f"x{i}")
            race.share([(a, b)], {x: old})
            with away(gone):
                (first.dir / x).rename(first.dir / f"{first.name}{i}.txt")
                (second.dir / x).rename(second.dir / f"{second.name}{i}.txt")
            race.settle(back(gone, a, b))
            race.snap()
            race.audit(keep={"bystander": bystander, x: old}, gone={x: old})
            race.later_changes_sync(a, b, str(i))


def test_delete_meets_edit(household, fault_table):
    a, b = household("A", "B")
    race = Race([a, b], strict_runs=True)
    with probe(race, fault_table, "races: delete/edit (no run may fail)"):
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            deleter, editor, gone = plan(a, b, i)
            x = f"x{i}.txt"
            old = race.write(a, x, f"x{i}")
            race.share([(a, b)], {x: old})
            with away(gone):
                (deleter.dir / x).unlink()
                edited = race.write(editor, x, f"x{i} edited on {editor.name}")
            race.settle(back(gone, a, b))
            race.snap()
            # The change wins, at its path.
            race.audit(keep={"bystander": bystander}, at={x: edited})
            race.later_changes_sync(a, b, str(i))


FILES = 12


def test_concurrent_edits_keep_both_versions_and_one_conflict_each(household, fault_table):
    a, b = household("A", "B")
    false_conflicts = 0
    with probe(Race([a, b]), fault_table, "races: edit/edit") as race:
        for i in range(TRIES):
            race.begin(i)
            names = [f"e{i}/f{n:02}.txt" for n in range(FILES)]
            race.share([(a, b)], {n: race.write(a, n, f"{n} original") for n in names})
            # No peer stopped: edits start no run (races.FOREVER), both sides change first.
            versions = {
                n: {m.name: race.write(m, n, f"{n} by {m.name}") for m in (a, b)} for n in names
            }
            race.settle([(a, b)] if i % 2 == 0 else [(b, a)])
            race.snap(f"e{i}/")
            race.audit(keep={f"{n} by {m}": v for n, by in versions.items() for m, v in by.items()})
            for m in (a, b):
                for name in names:
                    check_conflict_copies(race, m, name, versions[name].values())
                rows = [r for r in race.conflicts(m) if r[0].startswith(f"e{i}/")]
                for name in names:
                    both = [r for r in rows if r[0] == name and r[2].startswith(BOTH_CHANGED)]
                    if len(both) != 1:
                        race.now.records.append(
                            f"{m.name}: {len(both)} '{BOTH_CHANGED}' conflicts for {name}"
                        )
                wrong = [r for r in rows if r[2].startswith(FALSE_DELETE)]
                false_conflicts += len(wrong)
                if wrong:
                    race.now.records.append(
                        f"{m.name}: {len(wrong)} false '{FALSE_DELETE}' conflicts, e.g. {wrong[0]}"
                    )
                kinds = sorted({r[2] for r in rows})
                counted = ", ".join(f"{sum(r[2] == k for r in rows)} x '{k}'" for k in kinds)
                race.note(f"{m.name} conflicts recorded: {counted or 'none'}")
            race.later_changes_sync(a, b, str(i))
            race.extra = f"{false_conflicts} false '{FALSE_DELETE}' conflicts recorded"


def check_conflict_copies(race: Race, m: Member, name: str, versions) -> None:
    """Both versions on the peer: one at the path, the other as its one conflict copy."""
    path = Path(m.dir, name)
    copies = sorted(path.parent.glob(f"{path.stem}.sync-conflict-*"))
    found = sorted(p.read_bytes() for p in [path, *copies] if p.exists())
    if len(copies) != 1 or found != sorted(versions):
        labels = [race.labels.get(digest(d), "?") for d in found]
        race.problem(f"{name} on {m.name}: {len(copies)} conflict copies, versions {labels}")


def test_directory_rename_meets_edit_and_delete_inside(household, fault_table):
    a, b = household("A", "B")
    with probe(Race([a, b]), fault_table, "races: dir rename/edit+delete inside") as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            renamer, editor, gone = plan(a, b, i)
            d, e = f"d{i}", f"e{i}"
            f1 = race.write(a, f"{d}/f1.txt", f"{d}/f1")
            f2 = race.write(a, f"{d}/f2.txt", f"{d}/f2")
            f3 = race.write(a, f"{d}/f3.txt", f"{d}/f3")
            race.share([(a, b)], {f"{d}/f1.txt": f1, f"{d}/f2.txt": f2, f"{d}/f3.txt": f3})
            with away(gone):
                (renamer.dir / d).rename(renamer.dir / e)
                edited = race.write(editor, f"{d}/f1.txt", f"{d}/f1 edited on {editor.name}")
                (editor.dir / d / "f2.txt").unlink()
            race.settle(back(gone, a, b))
            race.snap()
            race.audit(
                keep={"bystander": bystander, "f1 edited": edited, "f3": f3},
                gone={f"{d}/f1.txt": f1, f"{d}/f2.txt": f2, f"{d}/f3.txt": f3},
                at={f"{e}/f3.txt": f3},
            )
            race.later_changes_sync(a, b, str(i))


def test_a_delete_made_on_a_deaf_peer_stays_deleted_everywhere(household, fault_table):
    """C (deaf) syncs with A only, deletes a file all three had, syncs with A, then meets B
    (the first time, then again), then A meets B: the file never comes back (checked after
    every run). On even tries C meets B before B can hear of the delete from A (A is down);
    on odd ones A is up, and B hears of it from whichever reaches it first."""
    a, b, c = household("A", "B", "C", deaf=["C"])
    with probe(Race([a, b, c]), fault_table, "races: deaf peer's delete, 3 peers") as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            f = f"shared{i}.txt"
            old = race.write(a, f, f"shared{i}")
            race.share([(a, b)], {f: old})
            b.stop()
            race.share([(c, a)], {f: old})  # all three have it; C has met A only (then)
            race.checks = [Vigil(race, f, old)]
            (c.dir / f).unlink()
            race.meet(c, a)
            if i % 2 == 0:
                a.stop()
            b.up()
            race.meet(c, b)
            if a.up_process is None:
                a.up()
            race.meet(a, b)
            race.settle([(a, b), (c, a), (c, b)])
            race.snap()
            race.audit(keep={"bystander": bystander}, at={f: None})
            race.later_changes_sync(c, b, f"{i}cb")
            race.later_changes_sync(a, b, f"{i}ab")


def test_a_late_peer_s_delete_stays_deleted_where_history_was_trimmed(
    household, fault_table, tmp_path
):
    """A and B sync and trim; C joins later through A, deletes a file it got from A, then
    meets B (whose history of that file is trimmed) for the first time."""
    a, b = household("A", "B")
    ids = {m.name: m.peer_id for m in (a, b)}
    trimmed = []
    name = "races: late peer's delete vs trimmed history"
    with probe(Race([a, b]), fault_table, name) as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            f = f"shared{i}.txt"
            old = race.write(a, f, f"shared{i}")
            race.share([(a, b)], {f: old})
            race.meet(b, a)
            count = "SELECT count(*) FROM areas_historyevent WHERE path = %s"
            left = {m.name: m.sql(count, f)[0][0] for m in (a, b)}
            trimmed.append(left["B"] == 0)
            race.extra = f"B's history of the file trimmed before C met B: {sum(trimmed)}/{i + 1}"
            race.note(f"history rows of {f} before C joins: {left}")
            c = Member(tmp_path, f"C{i}", deaf=True)
            try:
                c.init(None)
                ids[c.name] = c.peer_id
                c.run("peer", "add", a.name, ids[a.name], "--address", a.listen)
                a.run("peer", "add", c.name, ids[c.name])
                c.run("area", "add", AREA, str(c.dir))
                hold_still([c])
                c.up()
                race.members.append(c)
                race.share([(c, a)], {f: old})
                race.checks = [Vigil(race, f, old)]
                (c.dir / f).unlink()
                race.meet(c, a)
                c.run("peer", "add", b.name, ids[b.name], "--address", b.listen)
                b.run("peer", "add", c.name, ids[c.name])
                race.meet(c, b)  # the first time C and B meet
                race.meet(a, b)
                race.settle([(a, b), (c, a), (c, b)])
                race.snap()
                race.audit(keep={"bystander": bystander}, at={f: None})
                race.later_changes_sync(c, b, f"{i}cb")
                for row in race.conflicts(c):
                    race.note(f"{c.name} conflict: {row}")
                for failed in race.failed_automatic_runs(c):
                    race.note(f"{c.name} automatic run {failed}")
            finally:
                if c in race.members:
                    race.members.remove(c)
                c.destroy()
                for m in (a, b):
                    m.run("peer", "remove", c.name, check=False)


def test_a_change_that_failed_on_the_puller_is_applied_later_and_no_delete_returns(
    household, fault_table
):
    """B has a directory where A makes a file: the change fails on B (run after run) while
    deletes on both sides go through. Once B removes the obstacle, the next run applies A's
    file: A kept the history B still needed, and nothing deleted comes back."""
    a, b = household("A", "B")
    with probe(Race([a, b]), fault_table, "races: failed change, then trim") as race:
        bystander = race.write(a, "bystander.txt", "bystander")
        for i in range(TRIES):
            race.begin(i)
            p, q, s, r = f"p{i}", f"q{i}.txt", f"s{i}.txt", f"r{i}.txt"
            gone_q = race.write(a, q, f"q{i}")
            gone_s = race.write(b, s, f"s{i}")
            race.share([(a, b)], {q: gone_q, s: gone_s})
            race.checks = [Vigil(race, q, gone_q), Vigil(race, s, gone_s)]
            (b.dir / p).mkdir()  # the obstacle, on B
            made = race.write(a, p, f"p{i} made on A")
            other = race.write(a, r, f"r{i} made on A")
            (a.dir / q).unlink()  # starts a run with B at once
            (b.dir / s).unlink()
            for x, y in ((b, a), (a, b), (b, a), (a, b)):
                run = race.meet(x, y, expect_failure=True)
                if run.ok:
                    race.note(f"run {run} succeeded with the obstacle in place")
            history = "SELECT count(*) FROM areas_historyevent WHERE path = %s"
            race.note(f"A's history rows of {p} while it fails on B: {a.sql(history, p)[0][0]}")
            for m in (a, b):
                for path in (q, s):
                    if (m.dir / path).exists():
                        race.problem(f"{path} still on {m.name} while the obstacle is in place")
                if not (m.dir / r).is_file():
                    race.problem(f"{r} not on {m.name} while the obstacle is in place")
            (b.dir / p).rmdir()
            race.meet(b, a)
            if not (b.dir / p).is_file():
                race.problem(f"{p} not applied on B by the first run after the obstacle went")
            race.settle([(a, b)] if i % 2 == 0 else [(b, a)])
            race.snap()
            race.audit(keep={"bystander": bystander, "r": other}, at={p: made, q: None, s: None})
            race.later_changes_sync(a, b, str(i))
