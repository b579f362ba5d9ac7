"""The worker outlives Redis going away while it runs a task not yet acknowledged.

Consensus runs are `acks_late`. With kombu's own Redis transport, Celery closing the broken
connection raised AttributeError ('NoneType' object has no attribute 'hostname') while it
tried to put the message back, and the worker exited: `realize up` had to restart it.
The worker here runs a task of that kind across a Redis restart, then takes another."""

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.appliance import Redis, wait_for

ROOT = Path(__file__).resolve().parents[3]

APP = """
import os, pathlib
from celery import Celery

app = Celery("brokerapp", broker=os.environ["BROKER"])
app.conf.broker_transport = os.environ.get("TRANSPORT") or None
app.conf.broker_connection_retry_on_startup = True
app.conf.task_default_queue = "q"
app.conf.broker_connection_retry_delay = 0.2
here = pathlib.Path(__file__).parent

@app.task(acks_late=True)
def held(name):
    (here / f"{name}.started").touch()
    while not (here / "go").exists():
        __import__("time").sleep(0.05)
    (here / f"{name}.done").touch()

@app.task
def mark(name):
    (here / f"{name}.done").touch()
"""


def test_the_worker_outlives_a_redis_restart_during_an_acks_late_task(tmp_path):
    redis = Redis(tmp_path)
    app_dir = tmp_path / "app"
    app_dir.mkdir()
    (app_dir / "brokerapp.py").write_text(textwrap.dedent(APP))
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": f"{app_dir}:{ROOT}",
        "BROKER": redis.url(0),
        "TRANSPORT": "realize_site.broker:Transport",
    }
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "brokerapp", "worker", "--concurrency", "2",
         "--without-mingle", "--without-gossip", "--loglevel", "INFO"],
        cwd=app_dir, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    send = [
        sys.executable,
        "-c",
        "import sys, brokerapp; getattr(brokerapp, sys.argv[1]).delay(sys.argv[2])",
    ]
    try:
        subprocess.run([*send, "held", "first"], cwd=app_dir, env=env, check=True)
        wait_for(lambda: (app_dir / "first.started").exists(), "the held task to start")
        redis.stop()
        redis.start()
        (app_dir / "go").touch()
        wait_for(lambda: (app_dir / "first.done").exists(), "the held task to end")
        subprocess.run([*send, "mark", "second"], cwd=app_dir, env=env, check=True)
        wait_for(
            lambda: (app_dir / "second.done").exists() or worker.poll() is not None,
            "the worker to take a task after the restart",
        )
        log.flush()
        text = (tmp_path / "worker.log").read_text(errors="replace")
        assert worker.poll() is None, f"the worker exited:\n{text[-3000:]}"
        assert "Unrecoverable error" not in text
    finally:
        worker.terminate()
        worker.wait(timeout=60)
        log.close()
        redis.destroy()
