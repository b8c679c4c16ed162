"""Shared fixtures: a factory for pidone running as PID 1 of its own
namespace, torn down by PID after each test."""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from pidone_harness import PidOne  # noqa: E402


@pytest.fixture
def pidone():
    """Call `pidone(args, **kw)` to start one; all are killed at teardown."""
    started: list[PidOne] = []

    def start(args, **kwargs) -> PidOne:
        instance = PidOne(args, **kwargs)
        started.append(instance)
        return instance

    yield start
    for instance in started:
        instance.close()
