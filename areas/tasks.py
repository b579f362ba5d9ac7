from celery import shared_task
from celery.signals import worker_ready

from .consensus import abandon_interrupted_runs, run_consensus


@shared_task(name="areas.consensus", ignore_result=True, acks_late=True)
def consensus_task(run_id: int) -> None:
    run_consensus(run_id)


@worker_ready.connect
def _worker_ready(**kwargs) -> None:
    abandon_interrupted_runs(by_peer=False)
