"""Runs an appliance's processes: restarts one that dies, with backoff; stops all cleanly.

Each program runs in its own session, so a Ctrl-C in the terminal reaches only the
supervisor, which then stops the programs in order (SIGTERM to each process group, SIGKILL to
what is left after a grace period). A program's group is its processes: what one that died
left behind (a pool's children, multiprocessing's resource tracker) is killed before it is
started again. The state (pids, restarts) is kept in a JSON file that `realize status` and
tests read.
"""

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

BACKOFF_FIRST = 1.0
BACKOFF_MAX = 60.0
# A program that ran this long before dying is restarted promptly again.
STABLE_AFTER = 30.0
STOP_GRACE = 20.0


@dataclass
class Program:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = BACKOFF_FIRST
    restart_at: float | None = None


class Supervisor:
    def __init__(
        self,
        programs: list[Program],
        log_dir: Path,
        state_file: Path,
        say: Callable[[str], None],
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ):
        self.programs = programs
        self.log_dir = log_dir
        self.state_file = state_file
        self.say = say
        self.env = env
        self.cwd = cwd
        self.stopping = False

    def run(self) -> int:
        previous = {
            sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            for program in self.programs:
                self._start(program)
            self._write_state()
            while not self.stopping:
                self._tend()
                time.sleep(0.2)
            self._stop_all()
            return 0
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.state_file.unlink(missing_ok=True)

    def _request_stop(self, signum, frame) -> None:
        self.stopping = True

    def _start(self, program: Program) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log_dir / f"{program.name}.log", "ab") as log:
            program.process = subprocess.Popen(
                program.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=self.env,
                cwd=self.cwd,
            )
        program.started_at = time.monotonic()
        program.restart_at = None
        self.say(f"{program.name}: started (pid {program.process.pid})")

    def _tend(self) -> None:
        now = time.monotonic()
        changed = False
        for program in self.programs:
            if program.restart_at is not None:
                if now >= program.restart_at:
                    program.restarts += 1
                    self._start(program)
                    changed = True
                continue
            code = program.process.poll() if program.process else None
            if code is None:
                continue
            # Its children outlive it otherwise, one set more at each restart.
            _signal_group(program.process, signal.SIGKILL)
            if now - program.started_at >= STABLE_AFTER:
                program.backoff = BACKOFF_FIRST
            delay = program.backoff
            program.backoff = min(program.backoff * 2, BACKOFF_MAX)
            program.restart_at = now + delay
            self.say(
                f"{program.name}: exited with {_describe(code)}; restarting in {delay:.0f} s "
                f"(log: {self.log_dir / (program.name + '.log')})"
            )
            changed = True
        if changed:
            self._write_state()

    def _stop_all(self) -> None:
        self.say("stopping")
        running = []
        for program in self.programs:
            if program.process is None or program.restart_at is not None:
                continue  # not started, or dead and its group already killed
            if program.process.poll() is None:
                running.append(program)
            else:  # died since it was last looked at: what it left behind
                _signal_group(program.process, signal.SIGKILL)
        for program in reversed(running):
            _signal_group(program.process, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for program in reversed(running):
            try:
                program.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{program.name}: did not stop in {STOP_GRACE:.0f} s; killing it")
                _signal_group(program.process, signal.SIGKILL)
                program.process.wait()
            # Children of the program (a worker's pool) go with its group.
            _signal_group(program.process, signal.SIGKILL)
            self.say(f"{program.name}: stopped")

    def _write_state(self) -> None:
        state = {
            "supervisor": os.getpid(),
            "programs": {
                p.name: {
                    "pid": p.process.pid if p.process and p.process.poll() is None else None,
                    "restarts": p.restarts,
                }
                for p in self.programs
            },
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state))
        tmp.replace(self.state_file)


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"status {code}"
