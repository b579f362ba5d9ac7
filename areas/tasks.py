from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready

from areas.pull.consensus import abandon_interrupted_runs, run_consensus
from realize_site.lib import collector as heap


@shared_task(name="areas.consensus", ignore_result=True, acks_late=True)
def consensus_task(run_id: int) -> None:
    run_consensus(run_id)


@worker_init.connect
def _worker_init(**kwargs) -> None:
    heap.settle()  # before the pool's children are forked: they inherit it


@worker_process_init.connect
def _child_init(**kwargs) -> None:
    heap.settle()  # what the child made at its start, too


@worker_ready.connect
def _worker_ready(**kwargs) -> None:
    abandon_interrupted_runs(by_peer=False)
