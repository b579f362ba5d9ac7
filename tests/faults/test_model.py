"""The model check: random interleavings of creates, edits, deletes and renames on three
simulated peers, meeting in random orders (trimming as they ack), then settling.

Invariants: the peers converge; no version a user wrote is lost unless a user edited or
deleted that very version; no deleted version comes back unless another peer touched it
before it knew of the delete (and then as a conflict).
"""

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from areas.index.versions import includes
from tests.faults.conftest import TRIES
from tests.faults.model import Peer, World, meet, settle

PATHS = ["a", "b", "c", "d"]
EXAMPLES = 250 * TRIES
WITHOUT_RENAMES = ["create", "edit", "delete"]
EVERY_KIND = [*WITHOUT_RENAMES, "rename"]


def actions(kinds: list[str], n: int):
    op = st.tuples(
        st.just("op"),
        st.integers(0, n - 1),
        st.sampled_from(kinds),
        st.integers(0, 7),
        st.integers(0, len(PATHS) - 1),
    )
    meeting = st.tuples(st.just("meet"), st.integers(0, n - 1), st.integers(0, n - 1))
    return st.lists(st.one_of(op, meeting), max_size=40)


def play(actions, n: int = 3, known: bool = False) -> tuple[list[Peer], World]:
    """`known`: every peer knows the others from the start (their history waits for all)."""
    world = World()
    peers = [Peer(name, bytes([i + 1]) * 32, world) for i, name in enumerate("ABC"[:n])]
    if known:
        for p in peers:
            p.acked = {q.name: 0 for q in peers if q is not p}
    for action in actions:
        if action[0] == "meet":
            a, b = peers[action[1] % n], peers[action[2] % n]
            if a is not b:
                meet(a, b)
            continue
        _, who, kind, source, target = action
        peer = peers[who % n]
        if kind == "create":
            peer.create(PATHS[target])
            continue
        live = sorted(peer.live())
        if not live:
            continue
        path = live[source % len(live)]
        if kind == "edit":
            peer.edit(path)
        elif kind == "delete":
            peer.delete(path)
        else:
            peer.rename(path, PATHS[target])
    return peers, world


def problems(peers: list[Peer], world: World) -> list[str]:
    found = []
    if not settle(peers):
        found.append("did not settle")
    states = [p.live() for p in peers]
    if any(s != states[0] for s in states):
        shown = [{path: int.from_bytes(blob, "big") for path, blob in s.items()} for s in states]
        found.append(f"diverged: {shown}")
    present = {blob for state in states for blob in state.values()}  # on any peer
    for w in world.written:
        if w.blob not in world.superseded and w.blob not in present:
            found.append(f"lost: {w.blob[-1]} written on {w.peer} at {w.path}")
    for d in world.deletes:
        # The paths the deleted version had: a change made at one of them, not knowing of the
        # delete, meets it as a conflict, and the conflict keeps both.
        lived = {p for o in world.ops if d.blob in o.blobs for p in o.paths}
        touched = [o for o in world.ops if lived & set(o.paths) or d.blob in o.blobs]
        if d.blob in present and not any(
            o.peer != d.peer and not includes(o.versions.get(d.path, ()), (d.identity,))
            for o in touched
        ):
            found.append(f"resurrected: {d.blob[-1]} deleted on {d.peer} at {d.path}")
    return found


CHECK = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples each run: a failure is the code's, not the luck's
    suppress_health_check=[HealthCheck.too_slow],
)


@CHECK
@given(actions(WITHOUT_RENAMES, 3), st.booleans())
def test_three_peers_converge_with_nothing_lost_or_resurrected(steps, known):
    assert problems(*play(steps, n=3, known=known)) == []


@CHECK
@given(actions(EVERY_KIND, 3), st.sampled_from([2, 3]), st.booleans())
def test_peers_with_renames_lose_nothing_and_resurrect_nothing(steps, n, known):
    """Their convergence is counted in the table below: here, what must always hold."""
    found = problems(*play(steps, n=n, known=known))
    assert [p for p in found if not p.startswith("diverged")] == []


def random_actions(rng: random.Random, kinds: list[str], n: int) -> list[tuple]:
    steps = []
    for _ in range(rng.randint(0, 40)):
        if rng.random() < 0.3:
            steps.append(("meet", rng.randrange(n), rng.randrange(n)))
        else:
            kind = rng.choice(kinds)
            steps.append(("op", rng.randrange(n), kind, rng.randint(0, 7), rng.randint(0, 3)))
    return steps


def test_the_model_check_table(fault_table):
    """Each variant counted over the same random interleavings: peers, whether they knew each
    other from the start (else they first meet by snapshot), renames or not."""
    tries = EXAMPLES * 2
    for kinds in (WITHOUT_RENAMES, EVERY_KIND):
        for n in (2, 3):
            for known in (True, False):
                rng = random.Random(23)
                failures: dict[str, int] = {}
                bad = 0
                for _ in range(tries):
                    found = problems(*play(random_actions(rng, kinds, n), n=n, known=known))
                    bad += bool(found)
                    for problem in {p.split(":")[0] for p in found}:
                        failures[problem] = failures.get(problem, 0) + 1
                meetings = "known from the start" if known else "first meetings by snapshot"
                changes = "with renames" if "rename" in kinds else "no renames"
                fault_table.record(
                    f"model check (decide): {n} peers, {changes}, {meetings}",
                    tries,
                    tries - bad,
                    bad,
                    ", ".join(f"{k}: {v}" for k, v in sorted(failures.items())),
                )
                assert not failures.keys() - {"diverged"}  # never lost, never resurrected
                if kinds is WITHOUT_RENAMES:
                    assert failures == {}
