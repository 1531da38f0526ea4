"""Polling a condition with a generous deadline: nothing in the tests asserts on timing."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rclpy.executors import Executor


def wait_for(done: Callable[[], bool], timeout_s: float = 30.0,
             step: Callable[[], Any] | None = None) -> bool:
    """Call ``step`` (default: sleep 20 ms) until ``done()`` holds or the deadline passes; return it."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        if step is None:
            time.sleep(0.02)
        else:
            step()
    return done()


def spin_until(executor: Executor, done: Callable[[], bool], timeout_s: float = 20.0) -> bool:
    """:func:`wait_for` that spins ``executor`` (50 ms at a time) itself instead of sleeping."""
    return wait_for(done, timeout_s, step=lambda: executor.spin_once(timeout_sec=0.05))
