import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "realize_site.settings")

app = Celery("realize_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def _sample_traffic(**kwargs) -> None:
    """Each child of the pool pulls over data links of its own, whose bytes only it counts:
    it writes samples of them (realize_site.sampling)."""
    # Here, not above: `celery -A realize_site` loads this module before Django is set up.
    from peers.client import DIALLED
    from realize_site.sampling import Sampler

    Sampler("worker").start(lambda: (DIALLED.totals(), None))
