"""`realize status` tells of each area, and of a failure there (a full disk) until a later run
with that peer succeeds; `realize area add` refuses a path it cannot take, in one line;
`realize area edit/pause/resume/remove` change an area once added."""

import io
import json
import os

import pytest
from django.core.management import call_command
from django.utils import timezone

from areas.models import Area, ConsensusRun
from peers.models import LocalPeer
from realize_site.management.commands.realize import Command

pytestmark = pytest.mark.django_db


def realize(*args: str) -> str:
    out = io.StringIO()
    call_command(Command(), *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def alpha(home):
    return LocalPeer.objects.create(name="alpha", public_key=os.urandom(32))


def test_status_shows_a_failed_run_until_one_succeeds(alpha, docs):
    full = "[Errno 28] No space left on device: '/srv/docs/big.iso'"
    failed = ConsensusRun.objects.create(
        area=docs, peer_name="beta", status="failed", finished_at=timezone.now(), error=full
    )

    state = json.loads(realize("status", "--json"))
    assert state["areas"] == [
        {
            "name": "docs",
            "path": docs.path,
            "mode": "real",
            "paused": False,
            "state": "Error",
            "state_detail": f"beta: {full}",
            "files": 0,
            "open_conflicts": 0,
            "failing": [
                {"peer": "beta", "error": full, "at": failed.finished_at.isoformat()}
            ],
        }
    ]
    text = realize("status")
    assert "Areas: 1" in text
    assert f"last run with beta failed at {failed.finished_at.isoformat()}: {full}" in text

    ConsensusRun.objects.create(
        area=docs, peer_name="beta", status="done", finished_at=timezone.now()
    )
    after = json.loads(realize("status", "--json"))["areas"][0]
    assert after["failing"] == [] and after["state"] == "Up to date"  # peerd does not run
    assert "last run with beta" not in realize("status")


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("{tmp}/missing", "{tmp}/missing does not exist"),
        ("{tmp}/" + "x" * 300, "the path or one of its names is too long"),
    ],
)
def test_area_add_refuses_a_path_it_cannot_take_in_one_line(
    alpha, tmp_path, capsys, path, message
):
    with pytest.raises(SystemExit) as exited:
        realize("area", "add", "new", path.format(tmp=tmp_path))
    assert exited.value.code == 1
    assert capsys.readouterr().err == f"realize: error: {message.format(tmp=tmp_path)}\n"
    assert not Area.objects.exists()


def test_area_add_takes_a_relative_path_from_the_current_directory(alpha, tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path)
    realize("area", "add", "new", "here")
    assert Area.objects.get(name="new").path == str(tmp_path / "here")


def test_an_area_is_edited_paused_resumed_and_removed_from_the_command_line(
    alpha, docs, capsys
):
    assert realize("area", "edit", "docs", "--rest", "45") == (
        "Area docs: consensus starts 45 s after a change\n"
    )
    assert realize("area", "pause", "docs").startswith("Paused area docs")
    assert realize("area", "list").rstrip().endswith("(paused)")
    assert json.loads(realize("status", "--json"))["areas"][0]["paused"] is True
    assert realize("area", "resume", "docs") == "Resumed area docs\n"
    removed = realize("area", "remove", "docs")
    assert removed == f"Removed area docs; its files stay in {docs.path}\n"
    assert not Area.objects.exists() and os.path.isdir(docs.path)
    for args in (("area", "pause", "docs"), ("area", "edit", "x", "--rest", "5")):
        with pytest.raises(SystemExit) as exited:
            realize(*args)
        assert exited.value.code == 1
        assert capsys.readouterr().err.startswith("realize: error: no area named ")
