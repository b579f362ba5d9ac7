"""A consensus run whose task was lost (the broker down, a process gone between commit and
send) is sent again; a run whose process or database connection died ends as failed."""

import datetime
import os
import subprocess
import sys
import threading

import pytest
from django.db import connection
from django.utils import timezone
from kombu.exceptions import OperationalError

from areas import tasks
from areas.models import REQUEUE_AFTER, Area, ConsensusRun
from peers.models import Peer

pytestmark = pytest.mark.django_db(transaction=True)


class Broker:
    """Stands in for Celery's send_task: records what was sent, or fails while `down`."""

    def __init__(self, down: bool = False, on_send=None):
        self.down = down
        self.sent: list[int] = []
        self.on_send = on_send

    def send_task(self, name, args, countdown=0):
        if self.down:
            raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")
        self.sent.append(args[0])
        if self.on_send is not None:
            self.on_send(args[0])


@pytest.fixture
def broker(monkeypatch):
    fake = Broker()
    monkeypatch.setattr("areas.models.current_app", fake)
    return fake


@pytest.fixture
def area(tmp_path):
    return Area.objects.create(name="docs", path=str(tmp_path))


@pytest.fixture
def beta():
    return Peer.objects.create(name="beta", public_key=os.urandom(32))


def test_a_failed_send_keeps_the_request_and_the_next_request_sends_it(broker, area, beta):
    broker.down = True
    run = ConsensusRun.objects.request(area, beta, "command")
    assert "Connection refused" in run.queue_error
    run.refresh_from_db()
    assert (run.status, run.queued_at) == ("pending", None)

    broker.down = False
    joined = ConsensusRun.objects.request(area, beta, "auto")
    assert joined.pk == run.pk and broker.sent == [run.pk]
    assert ConsensusRun.objects.get(pk=run.pk).queued_at is not None

    # Sent a moment ago: joining does not send it again...
    ConsensusRun.objects.request(area, beta, "auto")
    assert broker.sent == [run.pk]
    # ...until it has waited long enough for its task to be thought lost.
    long_ago = timezone.now() - datetime.timedelta(seconds=REQUEUE_AFTER + 1)
    ConsensusRun.objects.filter(pk=run.pk).update(queued_at=long_ago)
    ConsensusRun.objects.request(area, beta, "auto")
    assert broker.sent == [run.pk, run.pk]


def test_the_worker_at_its_start_sends_pending_runs_again(broker, area, beta):
    pending = [
        ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta") for _ in range(2)
    ]
    ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta", status="done")
    left = ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta", status="running")
    tasks._worker_ready()
    assert broker.sent == [run.pk for run in pending]
    assert ConsensusRun.objects.get(pk=left.pk).status == "failed"


def test_a_waiter_sends_a_pending_run_again(broker, area, beta):
    run = ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta")

    def worker(run_id: int) -> None:
        def carry_out() -> None:
            try:
                ConsensusRun.objects.claim(run_id).finish(1, 10, 0, [])
            finally:
                connection.close()

        threading.Thread(target=carry_out).start()

    broker.on_send = worker
    finished = run.wait(pickup_wait=60, check_every=0.1, resend_after=0.2)
    assert finished.status == "done" and broker.sent == [run.pk]


def test_a_waiter_says_when_the_broker_cannot_be_reached(broker, area, beta):
    broker.down = True
    run = ConsensusRun.objects.request(area, beta, "command")
    with pytest.raises(RuntimeError, match=r"the broker \(Redis\) is unreachable"):
        run.wait(pickup_wait=1, check_every=0.1, resend_after=0.2)
    assert ConsensusRun.objects.get(pk=run.pk).status == "pending"  # for the next request


def test_a_run_whose_database_connection_died_ends_failed(monkeypatch, area, beta):
    """The database restarting mid-run breaks the run's connection: its end is recorded
    anyway, on a new connection, rather than leaving it 'running' for good."""

    def database_restarts(*args, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    monkeypatch.setattr("areas.pull.consensus.local_key", lambda: bytes(32))
    monkeypatch.setattr("areas.pull.consensus.scan_area", database_restarts)
    run = ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta")
    with pytest.raises(Exception):  # noqa: B017 - whichever the driver raises; the task's own
        tasks.consensus_task(run.pk)
    connection.close()  # this test's connection died with the run's: the next is new
    run.refresh_from_db()
    assert run.status == "failed" and run.finished_at is not None
    assert "database error" in run.error


def gone_pid() -> int:
    """The pid of a process that has ended."""
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(gone.stdout)


def test_a_run_whose_process_is_gone_ends_failed(monkeypatch, area, beta):
    """A worker's child killed mid-run is replaced without the worker restarting: the next
    task finds the run's process gone and ends the run."""
    orphan = ConsensusRun.objects.create(
        area=area, peer=beta, peer_name="beta", status="running", worker_pid=gone_pid()
    )
    alive = ConsensusRun.objects.create(
        area=area, peer=beta, peer_name="beta", status="running", worker_pid=os.getpid()
    )
    monkeypatch.setattr(tasks, "run_consensus", lambda run_id: None)
    tasks.consensus_task(0)
    assert ConsensusRun.objects.get(pk=orphan.pk).status == "failed"
    assert "interrupted" in ConsensusRun.objects.get(pk=orphan.pk).error
    assert ConsensusRun.objects.get(pk=alive.pk).status == "running"


def test_peerd_at_its_start_ends_a_worker_run_whose_process_is_gone(area, beta):
    orphan = ConsensusRun.objects.create(
        area=area, peer=beta, peer_name="beta", status="running", worker_pid=gone_pid()
    )
    alive = ConsensusRun.objects.create(
        area=area, peer=beta, peer_name="beta", status="running", worker_pid=os.getpid()
    )
    assert ConsensusRun.objects.abandon_interrupted(by_peer=True) == 1
    assert ConsensusRun.objects.get(pk=orphan.pk).status == "failed"
    assert ConsensusRun.objects.get(pk=alive.pk).status == "running"



def test_peerd_resends_only_the_runs_whose_send_may_be_lost(broker, area, beta):
    """Every minute: a run sent long ago or never is sent again; one sent just now is not."""
    now = timezone.now()
    runs = {
        when: ConsensusRun.objects.create(area=area, peer=beta, peer_name="beta", queued_at=at)
        for when, at in (
            ("just sent", now),
            ("sent long ago", now - datetime.timedelta(seconds=REQUEUE_AFTER * 10)),
            ("never sent", None),
        )
    }
    assert ConsensusRun.objects.requeue_pending(stale_only=True) == 2
    assert sorted(broker.sent) == sorted([runs["sent long ago"].pk, runs["never sent"].pk])
