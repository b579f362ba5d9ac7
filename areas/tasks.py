from celery import shared_task

from .consensus import run_consensus


@shared_task(name="areas.consensus", ignore_result=True, acks_late=True)
def consensus_task(run_id: int) -> None:
    run_consensus(run_id)
