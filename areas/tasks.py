"""Celery tasks: thin, over the domain functions."""

from celery import shared_task
from celery.signals import worker_init, worker_process_init, worker_ready

from areas.models import CONSENSUS_TASK, ConsensusRun
from areas.pull import run_consensus
from realize_site.lib import collector


@shared_task(name=CONSENSUS_TASK, ignore_result=True, acks_late=True)
def consensus_task(run_id: int) -> None:
    run_consensus(run_id)


@worker_init.connect
def _worker_init(**kwargs) -> None:
    collector.settle()  # before the pool's children are forked: they inherit it


@worker_process_init.connect
def _child_init(**kwargs) -> None:
    collector.settle()  # what the child made at its start, too


@worker_ready.connect
def _worker_ready(**kwargs) -> None:
    ConsensusRun.objects.abandon_interrupted(by_peer=False)
