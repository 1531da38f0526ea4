"""The node's per-stage decision times (tactile_grasp_predictor/stage_times.py): durations and diagnostics."""

from __future__ import annotations

import pytest

from tactile_grasp_predictor.stage_times import StageTimes, stage_durations


def test_stage_durations_are_the_gaps_between_marks_and_a_missing_mark_is_an_empty_stage() -> None:
    marks = {"start": 10.0, "decode": 10.001, "feed": 10.0015, "queue": 10.002, "predict": 10.008,
             "publish": 10.0085}  # no copy mark: the copy took no time
    d = stage_durations(marks)
    assert d["decode"] == pytest.approx(1.0) and d["feed"] == pytest.approx(0.5)
    assert d["queue"] == pytest.approx(0.5) and d["copy"] == 0.0
    assert d["predict"] == pytest.approx(6.0) and d["publish"] == pytest.approx(0.5)
    assert d["node"] == pytest.approx(8.5) and d["overhead"] == pytest.approx(2.5)


def test_values_give_p50_and_p99_of_the_last_window_per_stage_seen() -> None:
    times = StageTimes(window=100)
    assert times.values() == {}
    for ms in range(200):  # only the last 100 (100..199) count
        times.add({"predict": float(ms), "unknown_stage": 1.0})
    assert times.values() == {"stage_predict_ms": "p50 149.50 / p99 198.01 (100)"}
