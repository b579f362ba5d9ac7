"""Celery tasks: thin, over the domain functions."""

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready

from areas import lifecycle
from areas.models import CONSENSUS_TASK, ConsensusRun
from areas.pull import run_consensus
from realize_site.lib import collector, first_line, one_line

# How long a run whose end could not be recorded waits for the database to come back.
END_RETRY_FOR = 300.0


@shared_task(name=CONSENSUS_TASK, ignore_result=True, acks_late=True)
def consensus_task(run_id: int) -> None:
    # A child killed mid-run was replaced: its run is over.
    ConsensusRun.objects.abandon_orphaned()
    try:
        run_consensus(run_id)
    except Exception as exc:
        # The run could not record its end (the database went away, most likely): it must
        # not stay 'running' for good.
        reason = RuntimeError(one_line(exc) or f"internal error: {first_line(exc)}")
        ConsensusRun.objects.end_failed(run_id, reason, retry_for=END_RETRY_FOR)
        raise


@shared_task(name=lifecycle.WINDOW_TASK, ignore_result=True)
def window_task(window_id: int) -> None:
    """A consensus window opens (started by beat)."""
    lifecycle.window_opens(window_id)


@worker_init.connect
def _worker_init(**kwargs) -> None:
    collector.settle()  # before the pool's children are forked: they inherit it


@worker_process_init.connect
def _child_init(**kwargs) -> None:
    collector.settle()  # what the child made at its start, too


@worker_ready.connect
def _worker_ready(**kwargs) -> None:
    ConsensusRun.objects.abandon_interrupted(by_peer=False)
    # Pending runs whose task was lost (the broker was down, a process died before sending).
    ConsensusRun.objects.requeue_pending()
