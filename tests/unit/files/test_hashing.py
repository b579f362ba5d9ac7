"""Scans hash files in child processes where the process allows it, in threads otherwise,
with the same result; a child that dies does not lose the scan."""

import os
import signal

import pytest

from areas.files import hash_bytes, hashing
from tests.appliance import wait_for


@pytest.fixture
def files(tmp_path):
    found = []
    for i in range(40):
        path = tmp_path / f"f{i:02}.bin"
        path.write_bytes(os.urandom(100 + i * 9000))
        found.append((path.name, str(path), os.lstat(path)))
    return found


@pytest.fixture
def processes():
    hashing.use_processes()
    yield
    hashing.stop_processes()
    hashing._processes.enabled = False


def expected(files):
    return [(rel, hash_bytes(open(full, "rb").read())) for rel, full, _ in files]


def test_in_threads_each_file_is_chunked_and_hashed_in_order(files):
    found = list(hashing.hashed(files))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(files)


def test_in_child_processes_the_result_is_the_same(files, processes):
    pool = hashing._processes.get()
    assert pool is not None
    children = {p.pid for p in pool._processes.values()}
    assert children and os.getpid() not in children
    found = list(hashing.hashed(files))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(files)


def test_every_child_process_is_started_before_the_first_scan(processes):
    # A spawned pool starts a process only for a task that finds none idle: started with one
    # task, the others would start during the first scan, beside it.
    pool = hashing._processes.get()
    assert len(pool._processes) == hashing.WORKERS


def test_a_file_changed_or_gone_since_the_walk_is_left_for_the_next_scan(files, processes):
    files[3] = (files[3][0], files[3][1] + ".gone", files[3][2])
    with open(files[5][1], "ab") as f:
        f.write(b"more")
    found = list(hashing.hashed(files))
    assert found[3] is None and found[5] is None
    assert sum(1 for f in found if f is not None) == len(files) - 2


def test_a_child_killed_mid_scan_leaves_the_rest_to_threads_and_a_new_pool(files, processes):
    pool = hashing._processes.get()
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGKILL)
    found = list(hashing.hashed(files))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(files)
    again = hashing._processes.get()
    assert again is not None and again is not pool
    assert [f[0] for f in hashing.hashed(files)] == [f[0] for f in files]


def ignores_ctrl_c(pid: int) -> bool:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("SigIgn:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGINT - 1)))
    return False


def test_ctrl_c_is_for_the_process_that_started_the_children(files, processes):
    pool = hashing._processes.get()
    list(hashing.hashed(files))  # the children started
    # A child just spawned is still starting (a Ctrl-C then ends it, and the scan goes on
    # in threads): wait until both are past that.
    wait_for(
        lambda: (
            len(pool._processes) == hashing.WORKERS
            and all(ignores_ctrl_c(pid) for pid in pool._processes)
        ),
        "the hashing processes to start",
    )
    for pid in list(pool._processes):
        os.kill(pid, signal.SIGINT)
    found = list(hashing.hashed(files))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(files)
    assert hashing._processes.get() is pool  # the same children: none died


def test_children_that_cannot_start_leave_hashing_to_threads(files, monkeypatch):
    import multiprocessing
    import sys
    from concurrent.futures import ProcessPoolExecutor

    failing = ProcessPoolExecutor(
        1, mp_context=multiprocessing.get_context("spawn"), initializer=sys.exit, initargs=(3,)
    )
    monkeypatch.setattr(
        hashing._processes, "get", lambda: failing if hashing._processes.enabled else None
    )
    hashing.use_processes()  # logs, does not raise
    assert not hashing._processes.enabled
    found = list(hashing.hashed(files))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(files)


def test_small_files_are_hashed_here_and_larger_ones_by_the_processes(files, processes):
    """Small files never go to a child: one that cannot hash (a dead pool) is not needed."""
    small = [f for f in files if f[2].st_size <= hashing.SMALL]
    assert small and len(small) < len(files)
    pool = hashing._processes.get()
    for child in pool._processes.values():
        os.kill(child.pid, signal.SIGKILL)
    found = list(hashing.hashed(small))
    assert [(rel, hashed) for rel, _st, hashed in found] == expected(small)
    assert [st.st_size for _rel, st, _hashed in found] == [f[2].st_size for f in small]


def test_a_small_file_changed_gone_or_grown_since_the_walk(tmp_path):
    paths = [tmp_path / name for name in ("changed", "gone", "grown", "same")]
    for path in paths:
        path.write_bytes(b"x" * 1000)
    walked = [(p.name, str(p), os.lstat(p)) for p in paths]
    paths[0].write_bytes(b"y" * 1001)
    paths[1].unlink()
    paths[2].write_bytes(os.urandom(hashing.SMALL + 5000))
    os.utime(paths[2], ns=(walked[2][2].st_mtime_ns, walked[2][2].st_mtime_ns))
    found = [hashing.hash_small(file) for file in walked]
    assert found[0] is None and found[1] is None
    # Grown past the small size: read as a large file is, and, changed since the walk,
    # left for the next scan.
    assert found[2] is None
    assert found[3][2] == hash_bytes(b"x" * 1000)


def test_a_small_file_turned_into_a_pipe_does_not_stop_the_scan(tmp_path):
    path = tmp_path / "file"
    path.write_bytes(b"x" * 10)
    walked = (path.name, str(path), os.lstat(path))
    path.unlink()
    os.mkfifo(path)
    assert hashing.hash_small(walked) is None


def test_the_hashing_processes_die_with_a_process_killed_outright():
    """A process killed with SIGKILL cleans nothing up: its hashing processes (and with them
    multiprocessing's resource tracker) must not live on, holding memory, one set per kill."""
    import subprocess
    import sys
    from pathlib import Path

    script = (
        "import sys, multiprocessing.resource_tracker as tracker\n"
        "from areas.files import hashing\n"
        "hashing.use_processes()\n"
        "pids = [*hashing._processes.get()._processes, tracker._resource_tracker._pid]\n"
        "print(*pids, flush=True)\n"
        "sys.stdin.read()\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=Path(__file__).parents[3],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    helpers = [int(pid) for pid in parent.stdout.readline().split()]
    try:
        assert len(helpers) == hashing.WORKERS + 1 and all(map(_alive, helpers))
        parent.kill()
        parent.wait()
        wait_for(lambda: not any(map(_alive, helpers)), "the hashing processes to end", 30)
    finally:
        for pid in helpers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        parent.stdin.close()
        parent.stdout.close()


def _alive(pid: int) -> bool:
    """Whether the process runs (a zombie, reaped by nobody here, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(") ")[2][:1] != "Z"
    except FileNotFoundError:
        return False
