import pytest

from tests.appliance import Appliance


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
