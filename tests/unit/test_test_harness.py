"""The test harness itself: what the chaos directory's conftest skips without root."""

from __future__ import annotations

import importlib.util
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent


class FakeItem:
    def __init__(self, path: Path):
        self.path = path
        self.markers: list = []

    def add_marker(self, marker) -> None:
        self.markers.append(marker)


def test_the_chaos_conftest_skips_only_chaos_tests_when_not_root(monkeypatch):
    spec = importlib.util.spec_from_file_location("chaos_conftest_under_test", TESTS / "chaos" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module.os, "geteuid", lambda: 65534)
    unit, chaos = FakeItem(TESTS / "unit" / "test_events.py"), FakeItem(TESTS / "chaos" / "test_a_unit_files.py")
    module.pytest_collection_modifyitems(None, [unit, chaos])
    assert unit.markers == []
    assert [m.mark.name for m in chaos.markers] == ["skip"]
