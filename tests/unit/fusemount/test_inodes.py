"""Inode numbers of the mount: stable while mounted, following renames, never reused."""

from fusemount.inodes import ROOT, Inodes


def test_a_path_keeps_its_number_and_a_new_file_gets_a_new_one():
    inodes = Inodes()
    assert inodes.key(ROOT) == ("", "")
    a = inodes.number(("docs", "a.txt"))
    assert inodes.number(("docs", "a.txt")) == a and inodes.known(("docs", "a.txt")) == a
    inodes.deleted(("docs", "a.txt"))
    assert inodes.key(a) is None and inodes.known(("docs", "a.txt")) is None
    assert inodes.number(("docs", "a.txt")) not in (a, ROOT)


def test_a_rename_moves_the_numbers_of_everything_under_it():
    inodes = Inodes()
    d, f = inodes.number(("docs", "d")), inodes.number(("docs", "d/sub/f"))
    other = inodes.number(("docs", "dx"))  # a neighbour whose name starts the same
    replaced = inodes.number(("docs", "e"))
    inodes.renamed(("docs", "d"), ("docs", "e"))
    assert inodes.key(d) == ("docs", "e") and inodes.key(f) == ("docs", "e/sub/f")
    assert inodes.key(other) == ("docs", "dx")
    assert inodes.key(replaced) is None  # the file the rename replaced


def test_an_area_forgotten_loses_every_number_and_no_other():
    inodes = Inodes()
    root, inside = inodes.number(("docs", "")), inodes.number(("docs", "d/f"))
    other = inodes.number(("docs2", "f"))
    inodes.forget_area("docs")
    assert inodes.key(root) is None and inodes.key(inside) is None
    assert inodes.key(other) == ("docs2", "f")
    assert inodes.number(("docs", "d/f")) not in (root, inside, other)
