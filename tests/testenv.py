"""Loaded by pytest before Django (see pyproject's addopts): the test process's instance.

The suite's own Django (pytest-django's test database) gets a throwaway REALIZE_HOME and
Redis database 15, so running the tests never touches a real appliance's keys or events.
Appliances started as subprocesses by the tests get their own of each (tests/appliance.py).
"""

import os
import tempfile

TEST_REDIS_DB = 15

os.environ["REALIZE_HOME"] = tempfile.mkdtemp(prefix="realize-test-home-")
redis_base = os.environ.get("REALIZE_TEST_REDIS", "redis://127.0.0.1:6379")
os.environ["REDIS_URL"] = f"{redis_base}/{TEST_REDIS_DB}"
os.environ.setdefault("DATABASE_URL", "postgresql:///realize")
