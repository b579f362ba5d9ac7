"""A scan records each batch in one transaction, without savepoints: each would be two more
round trips to the server, a dozen per batch."""

import os

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from areas.index import scan_area
from areas.models import Area, Entry, HistoryEvent

KEY = b"k" * 32


@pytest.mark.django_db(transaction=True)
def test_a_scan_records_its_batches_without_savepoints(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    for i in range(30):
        (tmp_path / f"f{i}.bin").write_bytes(os.urandom(100 + 3000 * i))
    with CaptureQueriesContext(connection) as queries:
        result = scan_area(area, KEY)
    assert len(result.changes) == 30
    assert Entry.objects.filter(area=area).count() == 30
    assert HistoryEvent.objects.filter(area=area).count() == 30
    statements = [q["sql"].upper() for q in queries.captured_queries]
    assert statements  # the capture saw the scan's queries
    assert not [s for s in statements if "SAVEPOINT" in s]
