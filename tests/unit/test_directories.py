"""Runtime and state directories made and removed through fds: a symlink
anywhere is refused, never followed, never chowned through."""

from __future__ import annotations

import os

import pytest

from pidone.directories import make, remove
from pidone.errors import SpawnError


def test_make_creates_parents_and_owns_the_last_component(tmp_path):
    path = make(str(tmp_path), "a/b", 0o750, os.getuid(), os.getgid())
    assert path == f"{tmp_path}/a/b"
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o750
    assert make(str(tmp_path), "a/b", 0o700, None, None) == path  # again: fine, mode applied
    assert (tmp_path / "a" / "b").stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("where", ["a", "a/b"])
def test_make_refuses_a_symlink_anywhere(tmp_path, where):
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "base" / "a").mkdir(parents=True) if where == "a/b" else (tmp_path / "base").mkdir()
    os.symlink(target, tmp_path / "base" / where)
    with pytest.raises(SpawnError) as caught:
        make(str(tmp_path / "base"), "a/b", 0o777, 12345, 12345)
    assert "is a symlink or not a directory; refusing to follow it" in str(caught.value)
    assert target.stat().st_uid == os.getuid() and target.stat().st_mode & 0o777 != 0o777
    assert list(target.iterdir()) == []


def test_remove_takes_the_tree_but_never_what_a_symlink_in_it_points_to(tmp_path):
    make(str(tmp_path), "app", 0o755, None, None)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    os.symlink(outside, tmp_path / "app" / "link")
    (tmp_path / "app" / "sub").mkdir()
    assert remove(str(tmp_path), "app") == ""
    assert not (tmp_path / "app").exists() and (outside / "keep").exists()
    assert remove(str(tmp_path), "app") == ""  # already gone


def test_remove_refuses_a_symlink_in_place_of_the_directory(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep").write_text("x")
    (tmp_path / "base").mkdir()
    os.symlink(outside, tmp_path / "base" / "app")
    assert "refusing to follow it" in remove(str(tmp_path / "base"), "app")
    assert (outside / "keep").exists()


def test_a_directory_that_cannot_be_made_is_named(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(SpawnError) as caught:
        make(str(tmp_path), "file/sub", 0o755, None, None)
    assert str(caught.value).startswith(f"unable to create directory {tmp_path}/file/sub: ")
