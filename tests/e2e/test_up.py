"""`realize up` runs the appliance's processes, restarts one that dies, and stops cleanly."""

import json
import os
import signal
import urllib.request

import pytest

from tests.appliance import wait_for


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too: it only waits to be reaped.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[1][0] != "Z"


def child_pids(appliance) -> dict[str, int]:
    state = wait_for(appliance.up_state, "up's state file")
    return {name: info["pid"] for name, info in state["programs"].items()}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_up_serves_runs_celery_and_stops_cleanly(appliances, sig):
    alpha = appliances("alpha").up()
    with urllib.request.urlopen(alpha.url + "/") as response:  # redirected to the login page
        assert response.url.startswith(alpha.url + "/login/")
        assert b"Log in" in response.read()

    # Beat schedules the heartbeat and a worker runs it: both are alive and on Redis.
    def worker_seen():
        return json.loads(alpha.run("status", "--json").stdout)["worker_seen_at"]

    wait_for(worker_seen, "the heartbeat task to run", limit=120)

    pids = child_pids(alpha)
    assert set(pids) == {"web", "peerd", "worker", "beat"} and all(pids.values())
    assert alpha.stop(sig) == 0
    for name, pid in pids.items():
        assert not alive(pid), f"{name} still running"
    assert alpha.up_state() is None
    assert "[up] stopped" in (alpha.home / "up.out").read_text()
    # peerd stopped its hashing processes itself: nothing was left for multiprocessing's
    # resource tracker to clean up (and warn of).
    peerd_log = (alpha.home / "logs" / "peerd.log").read_text()
    assert "leaked" not in peerd_log and "Traceback" not in peerd_log


def test_a_crashed_process_is_restarted(appliances):
    alpha = appliances("alpha").up()
    before = child_pids(alpha)
    os.kill(before["web"], signal.SIGKILL)

    def restarted():
        state = alpha.up_state()
        web = state and state["programs"]["web"]
        return web and web["restarts"] == 1 and web["pid"] and web["pid"] != before["web"]

    wait_for(restarted, "the web process to be restarted")
    wait_for(alpha._serving, "the web pages again")
    after = child_pids(alpha)
    assert after["worker"] == before["worker"] and after["beat"] == before["beat"]
    assert "web: exited with signal SIGKILL" in (alpha.home / "up.out").read_text()
    assert alpha.stop() == 0
    assert not any(alive(pid) for pid in after.values())


def group(pgid: int) -> list[int]:
    """The live processes of process group `pgid` (what `realize up` started as one program)."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                state, _ppid, group_id = stat.read().rpartition(") ")[2].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group_id) == pgid and state != "Z":
            members.append(int(entry))
    return members


def test_a_killed_peerd_leaves_no_process_behind(appliances):
    """peerd's hashing processes and multiprocessing's resource tracker end with it, even
    when it is killed outright and cleans nothing up, so kills do not pile up processes."""
    from areas.files import hashing

    alpha = appliances("alpha").up()
    killed: list[int] = []
    helpers = 2 + hashing.WORKERS  # peerd, its hashing processes, the resource tracker
    try:
        for kill in range(2):
            peerd = child_pids(alpha)["peerd"]
            wait_for(lambda p=peerd: len(group(p)) >= helpers, "peerd's hashing processes")
            os.kill(peerd, signal.SIGKILL)
            killed.append(peerd)

            def restarted(old=peerd):
                pid = alpha.up_state()["programs"]["peerd"]["pid"]
                return pid and pid != old

            wait_for(restarted, "peerd to be restarted")
            wait_for(lambda p=peerd: not group(p), f"what peerd left at kill {kill + 1} to end", 30)
        assert alpha.stop() == 0
    finally:
        for pgid in killed:  # what a failure left is not left for good
            for pid in group(pgid):
                os.kill(pid, signal.SIGKILL)


def test_one_up_per_instance(appliances):
    alpha = appliances("alpha").up()
    second = alpha.run("up", "--no-mount", "--web", "127.0.0.1:1", check=False)
    assert second.returncode != 0
    assert (
        second.stderr.strip() == f"realize: error: 'realize up' is already running for {alpha.home}"
    )


def test_up_before_init_is_a_clear_error(appliances):
    fresh = appliances("fresh", init=False)
    result = fresh.run("up", "--no-mount", check=False)
    assert result.returncode != 0 and "realize init" in result.stderr
    assert len(result.stderr.splitlines()) == 1
