"""The supervisor ends a program's whole process group, also when the program died alone."""

import os
import signal
import sys

from realize_site.supervisor import Program, Supervisor
from tests.appliance import wait_for

# A program that starts a helper (as a pool or a resource tracker would), then is killed.
DIES_LEAVING_A_HELPER = """
import os, signal, subprocess, sys
helper = subprocess.Popen(["sleep", "600"])
with open(sys.argv[1], "a") as pids:
    pids.write(f"{helper.pid}\\n")
os.kill(os.getpid(), signal.SIGKILL)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rpartition(") ")[2][:1] != "Z"
    except FileNotFoundError:
        return False


def test_what_a_dead_program_left_is_killed_before_it_is_restarted(tmp_path):
    pids = tmp_path / "helpers"
    program = Program("peerd", [sys.executable, "-c", DIES_LEAVING_A_HELPER, str(pids)])
    lines: list[str] = []
    supervisor = Supervisor([program], tmp_path / "logs", tmp_path / "up.json", lines.append)
    supervisor._start(program)
    helpers: list[int] = []
    try:
        helper = int(wait_for(lambda: pids.exists() and pids.read_text().split(), "the helper")[0])
        helpers.append(helper)

        def noticed() -> bool:
            supervisor._tend()
            return program.restart_at is not None

        wait_for(noticed, "the supervisor to notice the program died")
        assert "peerd: exited with signal SIGKILL" in lines[-1]
        wait_for(lambda: not alive(helper), "the program's helper to be killed", limit=10)
    finally:
        for pid in helpers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
