from celery import shared_task
from django.utils import timezone

from peers import events
from peers.models import LocalPeer

HEARTBEAT_SECONDS = 30


@shared_task(name="peers.heartbeat", ignore_result=True)
def heartbeat() -> None:
    """Record that beat scheduled this and a worker ran it; dashboards show the time."""
    now = timezone.now()
    if LocalPeer.objects.update(worker_seen_at=now):
        events.send_to_dashboards(
            {"type": "appliance.heartbeat", "worker_seen_at": now.isoformat()}
        )
