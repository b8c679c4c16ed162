"""Drop-ins (SPEC §12): `NAME.toml.d/*.toml` merged over `NAME.toml` in file-name order.

A table merges key by key (at any depth), any other value replaces the
earlier one. The merge remembers which file set each key last, so that a
problem the schema finds in the merged document names the drop-in that
caused it. Reading goes through the same safe opening as unit files (regular
files up to 1 MiB, no symlink out of the drop-in directory, root-owned when
pidone runs as root); the drop-in directory itself must be a directory of the
units directory (a symlink to one beside it is followed, nothing further).
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from pidone.errors import Problem
from pidone.loader.schema import Table, printable

if TYPE_CHECKING:
    from pidone.loader import _DirectoryLoader

SUFFIX = ".toml.d"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def is_dropin_dir(file_name: str) -> bool:
    """Return True for the names of drop-in directories: `NAME.toml.d`, not dotfiles."""
    return file_name.endswith(SUFFIX) and not file_name.startswith(".") and len(file_name) > len(SUFFIX)


def stem(dir_name: str) -> str:
    """Return the unit (or template) name a drop-in directory belongs to."""
    return dir_name[: -len(SUFFIX)]


def read_directory(loader: _DirectoryLoader, entry: os.DirEntry[str]) -> tuple[list[tuple[str, bytes]], list[Problem]]:
    """Return ([(path, bytes)] of the `*.toml` files in drop-in directory `entry`, in
    name order, and the problems of those that could not be read). Never raises."""
    from pidone.loader import _DirectoryLoader, _file_kind, _insecure, _is_unit_file, _Refused, _unit_file_problem

    dir_path = printable(os.path.join(loader.directory, entry.name))
    try:
        target = loader._symlink_target(entry.name) if entry.is_symlink() else entry.name
        fd = os.open(target, _DIR_FLAGS, dir_fd=loader.dir_fd)
    except _Refused as exc:
        return [], [Problem(dir_path, str(exc))]
    except NotADirectoryError:
        kind = _file_kind(entry.stat(follow_symlinks=False).st_mode)
        return [], [Problem(dir_path, f"refused: a drop-in directory must be a directory, not {kind}")]
    except OSError as exc:
        return [], [Problem(dir_path, f"cannot open the drop-in directory: {exc.strerror or exc}")]
    try:
        refusal = loader.enforce_ownership and _insecure(os.fstat(fd), "the drop-in directory")
        if refusal:
            return [], [Problem(dir_path, refusal)]
        with os.scandir(fd) as scan:
            entries = sorted((e for e in scan if _is_unit_file(e.name)), key=lambda e: e.name)
        inner = _DirectoryLoader(os.path.join(loader.directory, entry.name), fd, loader.enforce_ownership)
        files, problems = [], []
        for item in entries:
            path = printable(os.path.join(inner.directory, item.name))
            try:
                files.append((path, inner._read(item)))
            except Exception as exc:  # noqa: BLE001 - one bad drop-in must not stop the others
                problems.append(_unit_file_problem(path, exc))
        return files, problems
    except OSError as exc:
        return [], [Problem(dir_path, f"cannot read the drop-in directory: {exc.strerror or exc}")]
    finally:
        os.close(fd)


def merge(base: dict[str, Any], over: dict[str, Any], path: str, origin: dict[str, str]) -> dict[str, Any]:
    """Return `base` with `over` merged on top (neither is changed); record in
    `origin` each `where` (as problems spell it) that `over`, from file `path`, sets."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if isinstance(value, dict) and isinstance(old, dict):
            merged[key] = _merge_tables(old, value)
        else:
            merged[key] = value
        if isinstance(value, dict):
            origin[key] = path
            table = Table(None, key, {})  # type: ignore[arg-type]
            for inner in value:
                origin[table.where(inner)] = path
        else:
            origin[key] = path
    return merged


def _merge_tables(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        merged[key] = _merge_tables(old, value) if isinstance(value, dict) and isinstance(old, dict) else value
    return merged


def blame(problems: list[Problem], origin: dict[str, str]) -> list[Problem]:
    """Return `problems` with each one about a key a drop-in set naming that drop-in."""
    if not origin:
        return problems
    return [replace(p, path=origin[p.where]) if p.where in origin and p.line is None else p for p in problems]
