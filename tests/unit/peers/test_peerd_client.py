"""A client of peerd (peers.client.peerd) waits for a peerd that `realize up` is restarting,
and says peerd is not running only when `up` is not."""

import json
import os
import subprocess
import sys
import threading

import pytest

from peers.client import PeerdClient, PeerdUnavailable
from peers.client import peerd as client_module
from realize_site.lib import up_state_file
from tests.fakepeerd import FakePeerd


def write_up_state(home, supervisor: int) -> None:
    path = up_state_file(home)
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"supervisor": supervisor, "programs": {"peerd": {"pid": None}}}))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_without_up_peerd_is_not_running_at_once(home, monkeypatch):
    monkeypatch.setattr(client_module.time, "sleep", lambda s: pytest.fail("waited"))
    with pytest.raises(PeerdUnavailable, match="not running .*realize up"):
        PeerdClient().connected()


def test_a_state_file_left_by_a_killed_up_is_not_an_up(home, monkeypatch):
    write_up_state(home, dead_pid())
    monkeypatch.setattr(client_module.time, "sleep", lambda s: pytest.fail("waited"))
    with pytest.raises(PeerdUnavailable, match="not running"):
        PeerdClient().connected()


def test_while_up_runs_a_client_waits_for_peerd_to_come_back(home):
    write_up_state(home, os.getpid())
    started = []
    timer = threading.Timer(1.0, lambda: started.append(FakePeerd(home, {"beta": ["docs"]})))
    timer.start()
    try:
        with PeerdClient(timeout=60) as client:
            assert client.connected() == ["beta"]
    finally:
        timer.join()
        for fake in started:
            fake.close()


def test_while_up_runs_a_peerd_that_stays_away_is_restarting(home):
    write_up_state(home, os.getpid())
    with pytest.raises(PeerdUnavailable, match="restarting"):
        PeerdClient(restart_wait=1.0).connected()
