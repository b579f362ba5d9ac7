"""Schedules beat runs for this appliance, kept in django-celery-beat's tables."""

from django_celery_beat.models import IntervalSchedule, PeriodicTask

from peers.tasks import HEARTBEAT_SECONDS


def ensure_schedules() -> None:
    every, _ = IntervalSchedule.objects.get_or_create(
        every=HEARTBEAT_SECONDS, period=IntervalSchedule.SECONDS
    )
    PeriodicTask.objects.get_or_create(
        name="Appliance heartbeat",
        defaults={
            "task": "peers.heartbeat",
            "interval": every,
            "expire_seconds": HEARTBEAT_SECONDS,
        },
    )
