"""The event loop: timers in deadline order, cancellation, fd and signal
dispatch, and survival of any exception a handler raises."""

from __future__ import annotations

import os
import signal
import time

import pytest

from pidone.loop import Loop


@pytest.fixture
def loop():
    errors: list[str] = []
    instance = Loop(on_error=errors.append)
    instance.errors = errors
    yield instance
    instance.close()


def test_timers_fire_in_deadline_order(loop):
    fired = []
    now = time.monotonic()
    loop.call_at(now + 0.03, lambda: fired.append("c"))
    loop.call_at(now + 0.01, lambda: fired.append("a"))
    loop.call_at(now + 0.02, lambda: fired.append("b"))
    loop.call_at(now + 0.04, loop.stop)
    loop.run()
    assert fired == ["a", "b", "c"]
    assert time.monotonic() - now >= 0.04


def test_cancelled_timer_never_fires(loop):
    fired = []
    timer = loop.call_later(0.01, lambda: fired.append("x"))
    timer.cancel()
    loop.call_later(0.02, loop.stop)
    loop.run()
    assert fired == []


def test_idle_loop_has_no_deadline(loop):
    timer = loop.call_later(5, lambda: None)
    timer.cancel()
    assert loop._next_timeout() is None  # nothing scheduled: sleep until an event


def test_a_raising_handler_is_reported_and_the_loop_goes_on(loop):
    fired = []

    def boom():
        raise RuntimeError("boom")

    def interrupt():
        raise KeyboardInterrupt

    loop.call_later(0.0, boom)
    loop.call_later(0.001, interrupt)
    loop.call_later(0.002, lambda: fired.append("after"))
    loop.call_later(0.003, loop.stop)
    loop.run()
    assert fired == ["after"]
    assert len(loop.errors) == 2
    assert "RuntimeError: boom" in loop.errors[0]
    assert "KeyboardInterrupt" in loop.errors[1]


def test_reader_callback_runs_when_data_arrives(loop):
    r, w = os.pipe()
    got = []

    def on_read():
        got.append(os.read(r, 100))
        loop.remove_reader(r)
        loop.stop()

    loop.add_reader(r, on_read)
    os.write(w, b"hello")
    loop.run()
    assert got == [b"hello"]
    os.close(r)
    os.close(w)


def test_signals_reach_their_callback_through_the_wakeup_fd(loop):
    got = []

    def on_usr1(signum):
        got.append(signum)
        loop.stop()

    previous = signal.getsignal(signal.SIGUSR1)
    try:
        loop.on_signal(signal.SIGUSR1, on_usr1)
        os.kill(os.getpid(), signal.SIGUSR1)
        loop.call_later(5, loop.stop)  # bound the test
        loop.run()
    finally:
        signal.signal(signal.SIGUSR1, previous)
    assert got == [signal.SIGUSR1]


def test_reader_and_writer_on_one_fd_are_independent(loop):
    r, w = os.pipe()
    calls = []
    loop.add_writer(w, lambda: (calls.append("w"), loop.remove_writer(w)))
    loop.add_reader(r, lambda: (calls.append("r"), loop.remove_reader(r), loop.stop()))
    loop.run_once()  # the pipe is writable at once
    assert calls == ["w"]
    os.write(w, b"x")
    loop.run()
    assert calls == ["w", "r"]
    os.close(r)
    os.close(w)


def test_a_callback_that_closes_another_fd_stops_its_pending_event(loop):
    """Both pipes are readable in one batch; the first callback unregisters
    and closes the second: the second's stale event must not fire."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    fired = []

    def first():
        fired.append("first")
        os.read(r1, 10)
        loop.remove_reader(r2)
        loop.remove_reader(r1)

    def second():
        fired.append("second")

    loop.add_reader(r1, first)
    loop.add_reader(r2, second)
    os.write(w1, b"x")
    os.write(w2, b"x")
    loop.run_once()
    # Whichever ran first, the other may only run if still registered.
    assert fired in (["first"], ["second", "first"])
    for fd in (r1, w1, r2, w2):
        os.close(fd)


def test_a_hang_up_wakes_the_reader(loop):
    r, w = os.pipe()
    seen = []

    def on_read():
        seen.append(os.read(r, 10))
        loop.remove_reader(r)
        loop.stop()

    loop.add_reader(r, on_read)
    os.close(w)  # EPOLLHUP alone, no EPOLLIN
    loop.call_later(2, loop.stop)
    loop.run()
    os.close(r)
    assert seen == [b""]


def test_an_fd_closed_without_removal_can_be_registered_again(loop):
    r, w = os.pipe()
    loop.add_reader(r, lambda: None)
    os.close(r)  # the kernel drops it from the epoll set; the loop does not know
    r2, w2 = os.pipe()
    if r2 != r:  # make the new pipe take the old number
        os.dup2(r2, r)
        os.close(r2)
    seen = []
    loop.add_reader(r, lambda: (seen.append(os.read(r, 10)), loop.stop()))
    os.write(w2, b"new")
    loop.call_later(2, loop.stop)
    loop.run()
    loop.remove_reader(r)
    for fd in (r, w, w2):
        os.close(fd)
    assert seen == [b"new"]


def test_before_sleep_runs_once_a_burst_is_over_not_per_event(loop):
    """The daemon's state update: before the loop blocks, not after each
    event of a burst that keeps it awake."""
    r, w = os.pipe()
    calls, seen = [], []

    def read() -> None:
        seen.append(os.read(r, 1))
        calls.append(("event", len(seen)))
        if len(seen) == 5:
            loop.stop()

    loop.add_reader(r, read)
    loop.before_sleep = lambda: calls.append("sleep")
    os.write(w, b"12345")  # five events, each one turn, with no sleep between
    loop.run()
    assert calls.count("sleep") == 1 and calls[0] == "sleep", calls  # before the first wait only
    loop.before_sleep = lambda: (calls.append("sleep"), loop.stop())
    loop.call_later(0.01, lambda: calls.append("timer"))
    loop.run()
    assert calls[-2:] == ["sleep", "timer"] and calls.count("sleep") == 2, calls  # before waiting for it
    loop.remove_reader(r)
    os.close(r)
    os.close(w)


def test_before_sleep_still_runs_while_the_loop_never_sleeps(loop):
    from pidone.loop import BUSY_FLUSH

    r, w = os.pipe()
    os.write(w, b"x")  # always readable: the loop never sleeps
    calls = []
    loop.add_reader(r, lambda: None)
    loop.before_sleep = lambda: calls.append(time.monotonic())
    deadline = time.monotonic() + 4 * BUSY_FLUSH
    while time.monotonic() < deadline:
        loop.run_once()
    assert 2 <= len(calls) <= 6, calls
    loop.remove_reader(r)
    os.close(r)
    os.close(w)
