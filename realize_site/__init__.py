"""The Django project. Its Celery app (realize_site.celery) is loaded by the areas app when
Django starts, not here: the quick command line client must not pay for importing Celery."""
