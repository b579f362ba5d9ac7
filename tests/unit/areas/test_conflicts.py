"""A conflict compared and resolved by a person: keep one version, the other, or both; the
files change as if by hand, and a copy deleted or moved away (here or by a peer) settles
the conflict everywhere."""

import os

import pytest
from django.urls import reverse

from areas import conflicts
from areas.conflicts import Choice
from areas.index import Change, Kind, history
from areas.models import Conflict, Entry
from areas.register import AreaError
from peers.models import Peer

ME, BETA = b"m" * 32, b"b" * 32
MINE, THEIRS = b"1" * 32, b"2" * 32
COPY = "notes.sync-conflict-20261207-101010-BETAAAA.txt"


@pytest.fixture
def conflict(docs):
    Peer.objects.create(name="beta", public_key=BETA)
    for rel, text, blob, origin in (
        ("notes.txt", "one\ntwo\nthree\n", MINE, ME),
        (COPY, "one\n2\nthree\n", THEIRS, BETA),
    ):
        full = os.path.join(docs.path, rel)
        with open(full, "w") as f:
            f.write(text)
        st = os.lstat(full)
        Entry.objects.create(area=docs, path=rel, blob_hash=blob, size=st.st_size,
                             mtime_ns=st.st_mtime_ns, origin=origin)  # fmt: skip
    return Conflict.objects.create(
        area=docs, path="notes.txt", copy_path=COPY, kept_hash=MINE, other_hash=THEIRS,
        other_origin=BETA, description="changed on both sides: this version kept the path",
    )  # fmt: skip


def read(docs, rel):
    with open(os.path.join(docs.path, rel)) as f:
        return f.read()


@pytest.mark.django_db
def test_both_versions_are_compared_with_a_text_diff(conflict):
    seen = conflicts.compare(conflict)
    assert (seen.at_path.by, seen.at_copy.by) == ("this peer", "beta")
    assert (seen.at_path.size, seen.at_copy.size) == (14, 12)
    assert ("-", "-two") in seen.diff and ("+", "+2") in seen.diff


@pytest.mark.django_db
def test_binary_content_is_compared_by_size_and_time_only(conflict, docs):
    with open(os.path.join(docs.path, COPY), "wb") as f:
        f.write(b"\xff\xfe\x00binary")
    assert conflicts.compare(conflict).why_no_diff == "not text"


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("choice", "new_name", "after"),
    [
        (Choice.PATH, "", {"notes.txt": "one\ntwo\nthree\n"}),
        (Choice.COPY, "", {"notes.txt": "one\n2\nthree\n"}),
        (Choice.BOTH, "notes (beta).txt", {"notes.txt": "one\ntwo\nthree\n",
                                           "notes (beta).txt": "one\n2\nthree\n"}),
        (Choice.BOTH, COPY, {"notes.txt": "one\ntwo\nthree\n", COPY: "one\n2\nthree\n"}),
    ],
)  # fmt: skip
def test_a_choice_changes_the_files_as_by_hand(conflict, docs, choice, new_name, after):
    conflicts.resolve(conflict, choice, new_name)
    assert {p: read(docs, p) for p in sorted(os.listdir(docs.path))} == after
    assert Conflict.objects.get().resolved_at is not None


@pytest.mark.django_db
def test_what_cannot_be_done_as_asked_is_refused_and_changes_nothing(conflict, docs):
    with pytest.raises(AreaError, match="choose"):
        conflicts.resolve(conflict, "neither")
    with pytest.raises(AreaError, match="cannot be used"):
        conflicts.resolve(conflict, Choice.BOTH, "../outside.txt")
    with pytest.raises(AreaError, match="exists already"):
        conflicts.resolve(conflict, Choice.BOTH, "notes.txt")
    with open(os.path.join(docs.path, COPY), "a") as f:
        f.write("edited since the page was shown\n")
    with pytest.raises(AreaError, match="changed since"):
        conflicts.resolve(conflict, Choice.PATH)
    assert len(os.listdir(docs.path)) == 2
    assert Conflict.objects.get().resolved_at is None


@pytest.mark.django_db
def test_a_copy_deleted_or_moved_away_by_anyone_settles_its_conflict(conflict, docs):
    other = Conflict.objects.create(area=docs, path="a.txt", copy_path="a.copy.txt",
                                    other_origin=BETA, description="x")  # fmt: skip
    history.append(docs, [Change(Kind.EDIT, COPY, THEIRS, MINE)], ME)  # an edit: still open
    assert Conflict.objects.filter(resolved_at=None).count() == 2
    history.append(docs, [Change(Kind.RENAME, "kept.txt", THEIRS, None, old_path=COPY)], ME)
    assert Conflict.objects.get(pk=conflict.pk).resolved_at is not None
    assert Conflict.objects.get(pk=other.pk).resolved_at is None
    history.append(docs, [Change(Kind.DELETE, "a.copy.txt", None, THEIRS)], ME)
    assert Conflict.objects.get(pk=other.pk).resolved_at is not None


@pytest.mark.django_db
def test_the_conflict_page_compares_and_resolves(admin_client, conflict, docs):
    url = reverse("conflict", args=["docs", conflict.pk])
    page = admin_client.get(url).content.decode()
    assert "-two" in page and "+2" in page and COPY in page
    response = admin_client.post(url, {"keep": "copy"})
    assert response.url == "/areas/docs/"
    assert "Resolved" in admin_client.get(response.url).content.decode()
    assert read(docs, "notes.txt") == "one\n2\nthree\n"
    response = admin_client.post(url, {"keep": "path"})  # again: said, nothing done
    assert "resolved already" in admin_client.get(response.url).content.decode()
    assert admin_client.get(reverse("conflict", args=["docs", 999])).status_code == 404


@pytest.fixture
def unreal_conflict(conflict, docs, home):
    """The same conflict in an Unreal area whose copy is not on this disk."""
    from peers.models import LocalPeer

    LocalPeer.objects.create(name="alpha", public_key=ME)
    docs.mode = "unreal"
    docs.save()
    os.unlink(os.path.join(docs.path, COPY))
    Entry.objects.filter(path=COPY).update(inode=0)
    return Conflict.objects.get(pk=conflict.pk)


@pytest.mark.django_db
def test_an_unreal_copy_is_deleted_in_the_index(unreal_conflict, docs):
    done = conflicts.resolve(unreal_conflict, Choice.PATH)
    assert "deleted the copy" in done
    assert Entry.objects.get(path=COPY).blob_hash is None  # a tombstone, recorded
    assert docs.history.filter(kind="delete", path=COPY).exists()
    assert Conflict.objects.get().resolved_at is not None


@pytest.mark.django_db
@pytest.mark.parametrize(("choice", "new_name"), [(Choice.COPY, ""), (Choice.BOTH, "mine.txt")])
def test_keeping_an_unreal_copy_waits_for_the_mount_to_fetch_it(
    unreal_conflict, docs, choice, new_name
):
    done = conflicts.resolve(unreal_conflict, choice, new_name)
    assert "the mount fetches it" in done
    waiting = Conflict.objects.get()
    assert (waiting.resolved_at, waiting.resolving, waiting.resolving_name) == (
        None, choice, new_name
    )  # fmt: skip
    assert read(docs, "notes.txt") == "one\ntwo\nthree\n"  # nothing changed yet
    # The mount put the copy on the disk (fusemount.realizer); the choice is carried out.
    full = os.path.join(docs.path, COPY)
    with open(full, "w") as f:
        f.write("one\n2\nthree\n")
    st = os.lstat(full)
    Entry.objects.filter(path=COPY).update(inode=st.st_ino, size=st.st_size,
                                           mtime_ns=st.st_mtime_ns)  # fmt: skip
    conflicts.resolve(waiting, waiting.resolving, waiting.resolving_name)
    kept = "notes.txt" if choice == Choice.COPY else "mine.txt"
    assert read(docs, kept) == "one\n2\nthree\n"
    assert Conflict.objects.get().resolved_at is not None


@pytest.mark.django_db
def test_keeping_both_under_the_copys_name_needs_no_content(unreal_conflict):
    assert "Kept both" in conflicts.resolve(unreal_conflict, Choice.BOTH, "")
