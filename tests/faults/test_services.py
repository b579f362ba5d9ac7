"""Probe: PostgreSQL and Redis restarted under two running appliances, idle and during a
transfer.

The test runs a PostgreSQL cluster (initdb into a temporary directory) and a redis-server of
its own, on free ports, and points both appliances at them. Each try stops one of them and
starts it again (as `systemctl restart` does: a fast shutdown; Redis saves its data), then
checks that every process of both appliances recovered by itself, with no step by hand:

- beat and the worker: the heartbeat beat schedules (every 2 s here) runs again;
- peerd: the peers connect again, and the fast path of `realize consensus` answers;
- the worker: a consensus after the restart succeeds and both areas hold what was written;
- web: the dashboard answers a logged-in browser, and a dashboard's websocket gets the next
  heartbeat event (worker -> Redis -> web);
- the command line: `realize status` works;
- no run is left pending or running (areas_consensusrun).

During a transfer, an observer also checks that no partial file is visible.
"""

import contextlib
import datetime
import random
import shutil
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest

from tests.appliance import Redis, wait_for
from tests.faults.probes import (
    FULL,
    SEED,
    Digests,
    Observer,
    Postgres,
    Settling,
    Versions,
    Web,
    Workload,
    area_digests,
    beat_every,
    compare,
    connected,
    consensus,
    heartbeat,
    heartbeat_after,
    last_error,
    make_members,
    postgres_missing,
    progress,
    tries_of,
)

MiB = 1024 * 1024
PROBES = [("postgres", "idle"), ("postgres", "mid-transfer"), ("redis", "idle"),
          ("redis", "mid-transfer")]  # fmt: skip
SMALL = 150 if FULL else 60
LARGE = (8 * MiB, 24 * MiB) if FULL else (8 * MiB, 12 * MiB)
HEARTBEAT = 2  # seconds between heartbeats, here
STALL = 120  # seconds without any progress: a command still waiting then is stuck

# A try restarts a service and waits for every process: half as many outside `make faults`.
ROUNDS = tries_of(slow=True)

NO_POSTGRES = postgres_missing()
pytestmark = [
    pytest.mark.skipif(NO_POSTGRES is not None, reason=NO_POSTGRES or ""),
    pytest.mark.skipif(
        shutil.which("redis-server") is None,
        reason="no redis-server (Debian package redis-server, see scripts/bootstrap.sh)",
    ),
]


@dataclass
class Tally:
    tries: int = 0
    survived: int = 0
    lost: int = 0
    problems: list[str] = field(default_factory=list)
    remarks: list[tuple[str, str]] = field(default_factory=list)  # (kind, detail)
    log: list[str] = field(default_factory=list)


class Setup:
    def __init__(self, pg: Postgres, redis: Redis, members):
        self.pg, self.redis = pg, redis
        self.alpha, self.beta = members
        self.members = members
        self.versions = Versions()
        self.cache = Digests()
        self.rng = random.Random(SEED + 1)
        self.work = {m.name: Workload(m, self.versions, self.rng) for m in members}
        self.web = {m.name: Web(m) for m in members}
        self.estimate = 1.0
        self.remarks: list[tuple[str, str]] = []  # of the checks, moved to the try's tally
        self.settling = Settling(members)

    def service(self, name: str):
        return self.pg if name == "postgres" else self.redis

    def change(self) -> None:
        self.work["beta"].additions(
            SMALL, edits=5, large=[self.rng.randrange(*LARGE) for _ in range(2)]
        )
        self.work["alpha"].additions(SMALL // 4, edits=2, large=[])
        for w in self.work.values():
            while len(w.large) > 2:
                w.delete(w.large.pop(0))

    def differences(self) -> list:
        return [
            (m.name, d)
            for m in self.members
            if (d := compare(area_digests(m.dir, self.cache), self.versions))
        ]

    def restart_appliances(self) -> None:
        for m in self.members:
            m.stop()
        for m in self.members:
            m.up()


@pytest.fixture
def setup(tmp_path):
    pg = Postgres()
    redis = Redis(tmp_path)
    dbs = iter(range(1, 15))

    def configure(m):
        m.env["DATABASE_URL"] = pg.url(m.database)
        m.env["REDIS_URL"] = redis.url(next(dbs))

    def faster_heartbeat(m):
        beat_every(m, HEARTBEAT)

    members = []
    try:
        members = make_members(tmp_path, ["alpha", "beta"], configure, faster_heartbeat)
        yield Setup(pg, redis, members)
    finally:
        for m in members:
            try:
                m.stop()
            except Exception:  # noqa: BLE001 - the services go anyway
                m.up_process.kill()
        redis.destroy()
        pg.destroy()


def restarts(m) -> dict[str, int]:
    state = m.up_state() or {"programs": {}}
    return {name: p["restarts"] for name, p in state["programs"].items()}


def check_recovered(s: Setup, since: datetime.datetime, problems: list[str]) -> None:
    """Every process of both appliances answers again (problems noted, nothing repaired)."""
    for m in s.members:
        try:
            wait_for(
                lambda m=m: (h := heartbeat(m)) is not None and h > since,
                f"{m.name}'s heartbeat",
                limit=90,
            )
        except AssertionError:
            problems.append(f"{m.name}: no heartbeat (beat -> worker) within 90 s")
        except Exception as exc:  # noqa: BLE001 - the database itself did not answer
            problems.append(f"{m.name}: its database did not answer ({exc})")
    for m in s.members:
        others = {o.name for o in s.members if o is not m}
        try:
            wait_for(lambda m=m, o=others: o <= set(connected(m) or []), "peers", limit=120)
        except AssertionError:
            problems.append(f"{m.name}: peerd not connected to its peer within 120 s")
    for m in s.members:
        failure = None
        try:
            wait_for(lambda m=m: s.web[m.name].dashboard() is None, "the dashboard", limit=60)
        except AssertionError:
            failure = s.web[m.name].dashboard()
        if failure:
            problems.append(f"{m.name}: web: {failure}")
        # A browser's page opens its websocket again when it fails: so do we, for a minute.
        failures = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            failure = s.web[m.name].live_event("appliance.heartbeat", limit=10)
            if failure is None:
                break
            failures.append(failure)
            time.sleep(1)
        if failure:
            problems.append(f"{m.name}: web: {failure} ({len(failures)} tries in 60 s)")
        elif failures:
            why = failures[0].removeprefix("the dashboard's websocket failed: ")
            why = why.replace("handshake refused: HTTP/1.1 ", "HTTP ")
            s.remarks.append(("web failed new websockets after the restart, then served", why))
        result = m.run("status", check=False, timeout=60)
        if result.returncode != 0:
            problems.append(f"{m.name}: `realize status` exit {result.returncode}: "
                            f"{result.stderr.strip()[:160]}")  # fmt: skip


def one_try(s: Setup, service: str, when: str, tally: Tally) -> None:
    problems: list[str] = []
    before = {m.name: restarts(m) for m in s.members}
    areas = {m.name: m.dir for m in s.members}
    command = None
    running = False
    with contextlib.ExitStack() as watching:
        if when == "mid-transfer":
            s.change()
            observer = watching.enter_context(Observer(areas, s.versions, s.cache))
            command = consensus(s.alpha, s.beta)
            time.sleep(s.rng.uniform(0.0, s.estimate))
            running = command.running()
            if not running:  # the transfer was over: aim earlier
                s.estimate = max(0.3, s.estimate * 0.85)
        else:
            time.sleep(s.rng.uniform(0.0, 1.0))
        # Pages open across the restart, as a person's browser has them.
        pages = {m.name: s.web[m.name].open_dashboard() for m in s.members}
        for ws in pages.values():
            if ws is not None:
                watching.callback(ws.sock.close)
        s.service(service).stop()
        time.sleep(s.rng.uniform(0.5, 3.0))
        s.service(service).start()
        since = datetime.datetime.now(datetime.UTC)
        tally.tries += 1
        if command is not None:
            command.finish(limit=660, progress=lambda: progress(s.members), stall=STALL)
            if command.hung:
                problems.append(
                    f"the interrupted `realize consensus` never returned ({command.summary()})"
                )
        for name, ws in pages.items():
            if ws is None:
                s.remarks.append(("a dashboard could not be opened before the restart", name))
                continue
            fate = heartbeat_after(ws, since, limit=30)
            if fate == "silent":
                problems.append(
                    f"{name}: a dashboard open across the restart stayed open but got no "
                    "live event after it (its page would never update again)"
                )
            elif fate == "closed":
                s.remarks.append(
                    ("an open dashboard's websocket was closed (its page reconnects)", name)
                )
        check_recovered(s, since, problems)
        if when == "idle":
            s.change()  # something for the consensus after the restart to carry
            observer = watching.enter_context(Observer(areas, s.versions, s.cache))
        recovery = consensus(s.alpha, s.beta)
        if recovery.finish(limit=660, progress=lambda: progress(s.members), stall=STALL) != 0:
            problems.append(f"the consensus after the restart failed ({recovery.summary()})")
    for where, rel, what in observer.sightings[:3]:
        problems.append(f"visible on {where}: {rel}: {what}")
    diffs = s.differences()
    for name, d in diffs:
        problems.append("after the consensus, " + d.describe(name))
    stuck = s.settling.wait(limit=90)
    if stuck:
        problems.append("left unfinished: " + ", ".join(stuck))
    tally.lost += len(observer.bad_paths()) + sum(d.lost for _, d in diffs)
    crashed = [
        (m, name)
        for m in s.members
        for name, n in restarts(m).items()
        if n != before[m.name].get(name, 0)
    ]
    where = f"{service} {when} try {tally.tries}"
    tally.remarks += s.remarks
    s.remarks.clear()
    # Recovered, by `up`: noted.
    for m, program in crashed:
        why = (last_error(m, program) or "?")[:120]
        tally.remarks.append((f"{program} exited, restarted by `up`", f"{m.name}: {why}"))
    tally.log.append(
        f"{where}: restart {'during' if running else 'outside'} the command"
        f"{f' ({command.summary()})' if command else ''}; restarted by up: "
        f"{[f'{m.name} {p}' for m, p in crashed] or 'none'}; "
        f"next consensus {recovery.summary()}"
    )
    if not problems:
        tally.survived += 1
        return
    tally.problems += [f"{where}: {p}" for p in problems]
    # Start the next try from appliances that work, if this one left them broken.
    if diffs or any("heartbeat" in p or "peerd" in p or "web" in p for p in problems):
        s.restart_appliances()
        for m in s.members:
            m.consensus(s.alpha if m is s.beta else s.beta, check=False)
        tally.problems.append(f"    ({where}: `realize up` restarted by the test to go on)")


def counted(remarks: list[tuple[str, str]]) -> list[str]:
    """Each kind of remark once: how many times, and its details."""
    kinds = Counter(kind for kind, _ in remarks)
    return [
        f"{kind}: {n}x ({', '.join(sorted({d for k, d in remarks if k == kind}))})"
        for kind, n in kinds.items()
    ]


@pytest.mark.timeout(600 + ROUNDS * len(PROBES) * 300)
def test_postgres_and_redis_restarts(setup, fault_table):
    s = setup
    s.change()
    started = time.monotonic()
    command = consensus(s.alpha, s.beta)
    assert command.finish() == 0, command.summary()
    s.estimate = max(0.3, time.monotonic() - started)
    assert not s.differences()

    tallies = {probe: Tally() for probe in PROBES}
    try:
        for _ in range(ROUNDS):
            order = list(PROBES)
            s.rng.shuffle(order)
            for service, when in order:
                one_try(s, service, when, tallies[(service, when)])
    finally:
        for (service, when), t in tallies.items():
            fault_table.record(
                f"{'PostgreSQL' if service == 'postgres' else 'Redis'} restarted, {when}",
                t.tries,
                t.survived,
                t.lost,
                "; ".join(p.replace("|", "/") for p in t.problems[:4] + counted(t.remarks)),
            )
        print("\n".join(line for t in tallies.values() for line in t.log))
    problems = [p for t in tallies.values() for p in t.problems]
    assert all(t.survived == t.tries for t in tallies.values()), "\n".join(problems)
