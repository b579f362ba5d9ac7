from django.apps import AppConfig


class RealizeSiteConfig(AppConfig):
    """The project as an app: its command line (`realize`) and its Celery app."""

    name = "realize_site"

    def ready(self) -> None:
        # Tasks are queued through the project's Celery app (with its broker): load it.
        from realize_site import celery  # noqa: F401
