"""The Django project.

Its Celery app (realize_site.celery) loads when Django starts, not here: the fast command
line client must not pay for importing Celery."""
