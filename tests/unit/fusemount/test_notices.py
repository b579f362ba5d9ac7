"""The mount hears of a change in an area's history once it is committed, not by polling."""

import pytest

from areas.index import Change, Kind, history
from areas.models import Area
from fusemount.unreal import HistoryNotices

ME = b"m" * 32


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_noticed_and_nothing_else_is(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    notices = HistoryNotices()
    try:
        assert notices.wait(5)  # connected: what happened before is unknown
        assert not notices.wait(0.05)
        for name in ("a", "b", "c"):  # three commits, taken as one notice
            history.append(area, [Change(Kind.CREATE, name, b"h" * 32, None, 1)], ME)
        assert notices.wait(10)
        assert not notices.wait(0.05)
    finally:
        notices.close()


@pytest.mark.django_db(transaction=True)
def test_losing_the_database_connection_is_survived(tmp_path):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    notices = HistoryNotices()
    try:
        assert notices.wait(5)
        notices._listening.close()  # as a PostgreSQL restart leaves it
        assert not notices.wait(0.05)
        assert notices.wait(5)  # connected again
        history.append(area, [Change(Kind.CREATE, "a", b"h" * 32, None, 1)], ME)
        assert notices.wait(10)
    finally:
        notices.close()
