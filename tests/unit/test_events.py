"""Events and actions behave as the frozen dataclasses they replaced:
values compared by type and fields, with defaults, immutable, printable."""

from __future__ import annotations

import pytest

from pidone import events as ev


def test_equal_by_type_and_fields_never_across_types():
    assert ev.StartUnit("web") == ev.StartUnit("web")
    assert ev.StartUnit("web") != ev.StartUnit("db")
    assert ev.StartUnit("web") != ev.StopUnit("web")  # same fields, another kind
    assert ev.ClearTimer("web", ev.TimerKind.STOP) in [ev.SetTimer("web", ev.TimerKind.STOP, 1.0),
                                                       ev.ClearTimer("web", ev.TimerKind.STOP)]


def test_defaults_keywords_and_missing_fields():
    exited = ev.MainExited("web", 7, 0)
    assert exited.leftovers == frozenset() and exited == ev.MainExited(name="web", pid=7, status=0)
    assert ev.Spawned("web", 7).confirmed is True
    with pytest.raises(TypeError):
        ev.MainExited("web", 7)  # status is required
    with pytest.raises(TypeError):
        ev.StartUnit("web", "extra")


def test_immutable_hashable_and_printable():
    event = ev.SetTimer("web", ev.TimerKind.READY, 2.5)
    with pytest.raises(AttributeError):
        event.deadline = 3.0  # type: ignore[misc]
    with pytest.raises(AttributeError):
        del event.name
    assert len({event, ev.SetTimer("web", ev.TimerKind.READY, 2.5)}) == 1
    assert repr(event) == "SetTimer(name='web', kind=<TimerKind.READY: 'ready'>, deadline=2.5)"
    assert repr(ev.StartAll()) == "StartAll()" and ev.StartAll() == ev.StartAll()


def test_child_exited_reads_its_wait_status():
    assert (ev.ChildExited(5, 3 << 8).exit_code, ev.ChildExited(5, 3 << 8).shell_status) == (3, 3)
    assert (ev.ChildExited(5, 9).signal, ev.ChildExited(5, 9).shell_status) == (9, 137)
