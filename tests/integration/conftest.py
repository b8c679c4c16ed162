"""Integration tests run pidone as PID 1 of a new PID namespace: root only."""

import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="needs root: runs pidone as PID 1 in a PID namespace (unshare --pid)")
    for item in items:
        if "integration" in str(item.fspath):
            item.add_marker(skip)
