"""Where `realize up` mounts, decided before anything starts."""

import pytest

from fusemount.mount import MountError
from realize_site import up


def options(**given):
    return {"no_mount": False, "mount": None, **given}


def test_without_fuse_the_appliance_runs_without_the_mount(monkeypatch, tmp_path):
    monkeypatch.setattr(up, "fuse_available", lambda: False)
    said = []
    assert up.mountpoint(options(mount=str(tmp_path)), said.append) is None
    assert said == ["running without the mount: /dev/fuse is missing on this machine"]


@pytest.mark.django_db
def test_a_given_mountpoint_that_cannot_serve_is_an_error(monkeypatch, tmp_path):
    monkeypatch.setattr(up, "fuse_available", lambda: True)
    (tmp_path / "x").write_text("x")
    with pytest.raises(MountError, match="is not empty"):
        up.mountpoint(options(mount=str(tmp_path)), print)


@pytest.mark.django_db
def test_the_default_mountpoint_is_made_and_a_bad_one_only_left_out(monkeypatch, tmp_path):
    monkeypatch.setattr(up, "fuse_available", lambda: True)
    monkeypatch.setattr(up, "DEFAULT_MOUNT", str(tmp_path / "Realize"))
    assert up.mountpoint(options(), print) == tmp_path / "Realize"
    (tmp_path / "Realize" / "x").write_text("x")
    said = []
    assert up.mountpoint(options(), said.append) is None
    assert "is not empty" in said[0]
    assert up.mountpoint(options(no_mount=True), print) is None


@pytest.mark.django_db
def test_a_given_mountpoint_missing_is_made(monkeypatch, tmp_path):
    monkeypatch.setattr(up, "fuse_available", lambda: True)
    where = tmp_path / "deep" / "Realize"
    assert up.mountpoint(options(mount=str(where)), print) == where
    assert where.is_dir()
