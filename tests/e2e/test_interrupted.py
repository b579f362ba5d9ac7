"""A peer killed in the middle of a transfer: no partial file is ever visible, and the next
consensus finishes the job."""

import hashlib
import os
import signal
import subprocess
import threading

import pytest

from areas.files import TEMP_PREFIX
from tests.appliance import REALIZE, wait_for
from tests.household import make_household

MiB = 1024 * 1024


@pytest.fixture
def pair(tmp_path):
    members = make_household(tmp_path, ["alpha", "beta"])
    yield members
    for m in members:
        m.destroy()


def test_sigkill_mid_transfer_leaves_no_partial_file(pair):
    alpha, beta = pair
    size = 256 * MiB
    with open(alpha.dir / "large.bin", "wb") as f:
        for _ in range(size // MiB):
            f.write(os.urandom(MiB))
    digest = hashlib.sha256((alpha.dir / "large.bin").read_bytes()).hexdigest()
    target = beta.dir / "large.bin"

    # Watch beta's area the whole time: the file is either absent or complete.
    seen_partial: list[int] = []
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            try:
                st = os.stat(target)
            except FileNotFoundError:
                continue
            if st.st_size != size:
                seen_partial.append(st.st_size)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        command = subprocess.Popen(
            [REALIZE, "consensus", "docs", "--peer", "alpha"],
            env=beta.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

        def writing():
            # Incoming files are written in beta's home (the area is on the same filesystem).
            sizes = []
            for p in (beta.home / "staging").glob(f"*/{TEMP_PREFIX}*"):
                try:
                    sizes.append(p.stat().st_size)
                except FileNotFoundError:
                    continue  # renamed into place meanwhile
            return any(sizes)

        wait_for(writing, "beta to start writing the file", limit=300, every=0.05)
        worker = beta.up_state()["programs"]["worker"]["pid"]
        os.kill(worker, signal.SIGKILL)
        _, stderr = command.communicate(timeout=600)
        assert command.returncode != 0 and "interrupted" in stderr

        # The supervisor restarts the worker; the next consensus completes the file.
        wait_for(
            lambda: (beta.up_state()["programs"]["worker"]["pid"] or worker) != worker,
            "the worker to be restarted",
        )
        beta.consensus(alpha)
    finally:
        stop.set()
        watcher.join()
    assert seen_partial == []
    assert hashlib.sha256(target.read_bytes()).hexdigest() == digest
    assert [p.name for p in beta.dir.iterdir()] == ["large.bin"]
    assert list((beta.home / "staging").glob("*/*")) == []  # the killed run's file is gone
