"""`realize consensus` waits for its run's end by a notice from the database, not by polling."""

import threading

import pytest
from django.db import connection

from areas.models import Area, ConsensusRun, finished_notices

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_finished_run_wakes_the_waiter(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    run = ConsensusRun.objects.create(area=area, peer_name="alpha", trigger="command")
    with finished_notices() as wait:
        assert not wait(0)  # nothing yet
        run.status = ConsensusRun.Status.DONE
        run.save()
        run.notify_finished()  # from this very connection: delivered all the same
        assert wait(60)


def test_wait_returns_the_finished_run(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    run = ConsensusRun.objects.create(area=area, peer_name="alpha", trigger="command")

    def finish() -> None:
        try:
            done = ConsensusRun.objects.get(pk=run.pk)
            done.finish(0, 0, 0, [], out={"files": 2, "bytes": 10})
        finally:
            connection.close()

    finisher = threading.Thread(target=finish)
    finisher.start()
    finished = run.wait(pickup_wait=600, check_every=0.5)
    finisher.join()
    assert finished.status == ConsensusRun.Status.DONE
    assert (finished.files_out, finished.bytes_out) == (2, 10)


def test_ctrl_c_while_waiting_says_the_run_goes_on(monkeypatch, capsys):
    """Ctrl-C stops only the waiting (the worker carries the run to its end): the command
    says so in one line and exits 130, with no traceback."""
    import sys

    from realize_site import cli, fast_consensus

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fast_consensus, "consensus", interrupted)
    monkeypatch.setattr(sys, "argv", ["realize", "consensus", "docs"])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 130
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "goes on in the background" in err
