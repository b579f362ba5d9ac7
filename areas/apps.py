from django.apps import AppConfig


class AreasConfig(AppConfig):
    name = "areas"

    def ready(self) -> None:
        # Tasks are sent through the project's Celery app (with its broker): load it.
        import realize_site.celery  # noqa: F401
