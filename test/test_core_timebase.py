"""The time base: header stamps (with receive-time fallback) or receive times, one rule live and offline."""

from __future__ import annotations

import math

import numpy as np
import pytest

from helpers.streams import IMG, feed_gate, outcomes, stamped_stream
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.gate import Frame, GraspGate, SnapshotReady
from tactile_grasp_predictor.gripper import GripperSample
from tactile_grasp_predictor.timebase import TimeBase, valid_stamp


def test_header_uses_stamps_receive_uses_receive_times() -> None:
    h, r = TimeBase("header"), TimeBase("receive")
    assert h.resolve(10.0, 10.5, "image") == 10.0
    assert r.resolve(10.0, 10.5, "image") == 10.5
    assert h.fallbacks == r.fallbacks == 0


@pytest.mark.parametrize("empty", [None, 0.0, -1.0, math.nan, math.inf])
def test_empty_stamps_fall_back_to_receive_time_and_are_counted(empty: float | None) -> None:
    assert not valid_stamp(empty)
    tb = TimeBase("header")
    assert tb.resolve(empty, 3.25, "image") == 3.25  # no stamp seen yet: the receive time itself
    tb.resolve(100.0, 100.002, "joints")
    tb.resolve(100.01, 100.013, "joints")
    # then mapped onto the stamp clock with the smallest recent offset (2 ms)
    assert tb.resolve(empty, 100.5, "image") == pytest.approx(100.498)
    assert tb.fallbacks == 2 and tb.fallbacks_by_stream == {"image": 2}
    assert TimeBase("receive").resolve(empty, 4.0, "image") == 4.0


def test_unknown_mode_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="time_base"):
        TimeBase("wall")


def test_watchdog_time_stays_behind_every_message_in_flight() -> None:
    tb = TimeBase("header", watchdog_slack_s=0.05)
    assert TimeBase("receive").watchdog_time(7.0) == 7.0
    latencies = [0.002, 0.030, 0.004, 0.012]
    for i, lat in enumerate(latencies):
        tb.resolve(50.0 + 0.1 * i, 3650.0 + 0.1 * i + lat, "image")
    # the clock is 3600 s ahead of the driver's: the watchdog follows the offset, minus the
    # largest recent latency and the slack
    assert tb.watchdog_time(3650.9) == pytest.approx(50.9 - 0.030 - 0.05)
    assert tb.max_offset() == pytest.approx(3600.030) and tb.min_offset() == pytest.approx(3600.002)


def test_offsets_are_windowed() -> None:
    tb = TimeBase("header", window_s=1.0)
    tb.resolve(0.0, 0.5, "image")  # one late message
    for k in range(1, 40):
        tb.resolve(0.1 * k, 0.1 * k + 0.001, "image")
    assert tb.max_offset() == pytest.approx(0.001)  # the 0.5 s latency left the window


def test_clock_problems_are_named() -> None:
    ok = TimeBase("header")
    ok.resolve(5.0, 5.003, "image")
    ok.resolve(5.0, 5.001, "gripper")
    assert ok.problem() == ("", "")
    far = TimeBase("header")
    far.resolve(5.0, 3605.0, "image")
    far.resolve(5.0, 3605.0, "gripper")
    sev, text = far.problem()
    assert sev == "info" and "+3600.000 s" in text and "unsynchronised" in text
    split = TimeBase("header")
    split.resolve(5.0, 3605.0, "image")
    split.resolve(3605.0, 3605.0, "gripper")
    sev, text = split.problem()
    assert sev == "warn" and "image" in text and "gripper" in text and "3600.000 s apart" in text
    assert TimeBase("receive").problem() == ("", "")


def _run_gate(tb: TimeBase, msgs: list[tuple[str, float | None, float, float]]) -> list[object]:
    """Feed (kind, stamp, receive, width) messages in arrival order; return the gate's decision events."""
    items: list[tuple[float, object]] = []
    for kind, stamp, recv, width in msgs:
        t = tb.resolve(stamp, recv, kind)
        items.append((t, Frame(t, stamp, IMG) if kind == "image" else GripperSample(t, width)))
    return outcomes(feed_gate(GraspGate(), items, sort=False))  # arrival order, as resolved


def test_header_time_base_makes_ta_tb_independent_of_receive_jitter() -> None:
    """The reason for the header time base: jittered deliveries, the same Ta/Tb as without jitter."""
    calm = _run_gate(TimeBase("header"), stamped_stream(np.random.default_rng(0), 0.0))
    assert len(calm) == 1 and isinstance(calm[0], SnapshotReady)
    changed_with_receive = 0
    for seed in range(20):
        jittered = _run_gate(TimeBase("header"), stamped_stream(np.random.default_rng(seed), 0.015))
        assert isinstance(jittered[0], SnapshotReady)
        assert (jittered[0].ta.stamp, jittered[0].tb.stamp) == (calm[0].ta.stamp, calm[0].tb.stamp)
        by_receive = _run_gate(TimeBase("receive"), stamped_stream(np.random.default_rng(seed), 0.015))
        ev = by_receive[0]
        assert isinstance(ev, SnapshotReady)
        changed_with_receive += (ev.ta.stamp, ev.tb.stamp) != (calm[0].ta.stamp, calm[0].tb.stamp)
    assert changed_with_receive > 0  # the test is not vacuous: receive times do move Ta/Tb
