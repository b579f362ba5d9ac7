"""`realize consensus` waits for its run's end by a notice from the database, not by polling."""

import threading

import pytest
from django.db import connection

from areas import cli, consensus
from areas.models import Area, ConsensusRun

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finished_run_wakes_the_waiter(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    run = ConsensusRun.objects.create(area=area, peer_name="alpha", trigger="command")
    with cli._finished_notices() as wait:
        assert not wait(0)  # nothing yet
        run.status = ConsensusRun.Status.DONE
        run.save()
        consensus.notify_finished(run)  # from this very connection: delivered all the same
        assert wait(60)


def test_wait_returns_the_finished_run(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    run = ConsensusRun.objects.create(area=area, peer_name="alpha", trigger="command")

    def finish() -> None:
        try:
            done = ConsensusRun.objects.get(pk=run.pk)
            consensus._finish(done, consensus.ApplyStats(), {"files": 2, "bytes": 10}, None)
        finally:
            connection.close()

    finisher = threading.Thread(target=finish)
    finisher.start()
    finished = cli._wait(run)
    finisher.join()
    assert finished.status == ConsensusRun.Status.DONE
    assert (finished.files_out, finished.bytes_out) == (2, 10)
