from pathlib import Path

import pytest

from tests.appliance import Appliance
from tests.fakepeerd import FakePeerd

# Lines of each appliance log shown beside a failing test.
LOG_TAIL = 30


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that ran appliances shows the end of their logs: CI keeps nothing
    else of them."""
    outcome = yield
    report = outcome.get_result()
    tmp = item.funcargs.get("tmp_path") if hasattr(item, "funcargs") else None
    if report.when != "call" or not report.failed or tmp is None:
        return
    for log in sorted([*Path(tmp).glob("*/logs/*.log"), *Path(tmp).glob("*/up.out")]):
        try:
            lines = log.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        except OSError:
            continue
        report.sections.append((f"log {log.relative_to(tmp)}", "\n".join(lines)))


# Helpers that check with `assert`: their failures explained as the tests' own are.
pytest.register_assert_rewrite("tests.dashboard")


@pytest.fixture
def appliances(tmp_path):
    """Make appliances on demand: `appliances("alpha")`; all are stopped and dropped after."""
    made: list[Appliance] = []

    def make(name: str, listen: str | None = None, init: bool = True) -> Appliance:
        appliance = Appliance(tmp_path, name)
        made.append(appliance)
        return appliance.init(listen) if init else appliance

    yield make
    for appliance in made:
        appliance.destroy()


@pytest.fixture
def admin_user(django_user_model):
    return django_user_model.objects.create_superuser("admin", "", "correct horse battery")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def home(settings, tmp_path):
    """This process's REALIZE_HOME, empty: peerd is not running until a test fakes it."""
    settings.REALIZE_HOME = tmp_path / "home"
    settings.REALIZE_HOME.mkdir()
    return settings.REALIZE_HOME


@pytest.fixture
def peerd(home):
    """Fake peerd in `home`: `peerd({"beta": ["docs"]})` (see tests/fakepeerd.py)."""
    started = []

    def start(sharing):
        started.append(FakePeerd(home, sharing))
        return started[-1]

    yield start
    for fake in started:
        fake.close()
    if started:
        # Runs queued for a worker that this test process does not have.
        from realize_site.celery import app

        app.control.purge()


@pytest.fixture
def docs(tmp_path):
    """An area named docs in this process's database, at an empty directory."""
    from areas.models import Area

    directory = tmp_path / "docs"
    directory.mkdir()
    return Area.objects.create(name="docs", path=str(directory))
