"""The mount hears of a change in an area's history, or in the areas, once it is committed,
not by polling."""

import pytest

from areas import lifecycle
from areas.index import Change, Kind, history
from areas.models import AREAS_CHANNEL, HISTORY_CHANNEL, Area
from areas.register import add_area
from fusemount.unreal import Notices

ME = b"m" * 32


@pytest.fixture
def notices():
    notices = Notices()
    assert notices.wait(5) == {HISTORY_CHANNEL, AREAS_CHANNEL}  # connected: all unknown
    assert not notices.wait(0.05)
    yield notices
    notices.close()


@pytest.mark.django_db(transaction=True)
def test_a_committed_change_is_noticed_and_nothing_else_is(tmp_path, notices):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    for name in ("a", "b", "c"):  # three commits, taken as one notice
        history.append(area, [Change(Kind.CREATE, name, b"h" * 32, None, 1)], ME)
    assert notices.wait(10) == {HISTORY_CHANNEL}
    assert not notices.wait(0.05)


@pytest.mark.django_db(transaction=True)
def test_an_area_added_removed_or_changed_is_noticed(tmp_path, notices):
    (tmp_path / "docs").mkdir()
    add_area("docs", str(tmp_path / "docs"))
    assert notices.wait(10) == {AREAS_CHANNEL}
    lifecycle.pause("docs")
    assert notices.wait(10) == {AREAS_CHANNEL}
    lifecycle.remove("docs")
    assert notices.wait(10) == {AREAS_CHANNEL}
    assert not notices.wait(0.05)


@pytest.mark.django_db(transaction=True)
def test_losing_the_database_connection_is_survived(tmp_path, notices):
    area = Area.objects.create(name="docs", path=str(tmp_path))
    notices._listening.close()  # as a PostgreSQL restart leaves it
    assert not notices.wait(0.05)
    assert notices.wait(5) == {HISTORY_CHANNEL, AREAS_CHANNEL}  # connected again
    history.append(area, [Change(Kind.CREATE, "a", b"h" * 32, None, 1)], ME)
    assert notices.wait(10) == {HISTORY_CHANNEL}
