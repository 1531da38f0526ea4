"""Sensor health (no ROS): the no-contact statistics a bundle stores and the monitor comparing with them."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from tactile_grasp_predictor.sensor_health import (
    FEATURES,
    MIN_FRAMES,
    SensorHealth,
    SensorReference,
    frame_features,
)


def gel(value: float, seed: int, hw: tuple[int, int] = (240, 320)) -> np.ndarray:
    """A no-contact frame: a brightness level with the gel's dot pattern and sensor noise."""
    rng = np.random.default_rng(seed)
    img = np.full((*hw, 3), value, np.float32) + rng.normal(0, 3, (*hw, 3))
    img[::12, ::12] -= 40  # the marker dots
    return np.clip(img, 0, 255).astype(np.uint8)


def test_features_do_not_depend_on_the_frame_size() -> None:
    big = gel(120, 0)
    small = cv2.resize(big, (128, 96), interpolation=cv2.INTER_AREA)
    assert np.allclose(frame_features(big), frame_features(small), atol=1.5)  # means and contrasts
    assert frame_features(big).shape == (len(FEATURES),)


def test_reference_round_trips_through_the_manifest_and_refuses_bad_fields() -> None:
    ref = SensorReference.from_frames(gel(120, s) for s in range(6))
    text = json.dumps({"metrics": {"sensor_reference": ref.to_json()}})
    back, why = SensorReference.from_manifest(json.loads(text))
    assert back == ref and why == "" and ref.n_frames == 6
    none, why = SensorReference.from_manifest({"metrics": {"test": {}}})
    assert none is None and "no sensor statistics" in why
    bad = {**ref.to_json(), "spread": [1.0] * 5}
    with pytest.raises(ValueError, match=r"sensor_reference\.spread"):
        SensorReference.from_json(bad)
    unreadable, why = SensorReference.from_manifest({"metrics": {"sensor_reference": {"features": ["x"]}}})
    assert unreadable is None and "unreadable: sensor_reference.features" in why
    with pytest.raises(ValueError, match="no frames"):
        SensorReference.from_frames([])


def test_the_monitor_collects_then_passes_the_same_sensor_and_warns_on_drift() -> None:
    ref = SensorReference.from_frames(gel(120, s) for s in range(8))
    monitor = SensorHealth(ref, warn=4.0)
    for s in range(MIN_FRAMES - 1):
        monitor.add(gel(120, 100 + s))
    assert monitor.report().message.startswith("collecting")
    monitor.add(gel(121, 200))
    ok = monitor.report()
    assert ok.level == "ok" and float(ok.values["sensor_drift"]) < 4.0
    for s in range(10):  # the lighting dimmed by a quarter: a drift in every channel's mean
        monitor.add(gel(90, 300 + s))
    warn = monitor.report()
    assert warn.level == "warn" and warn.values["sensor_drift_feature"].startswith("mean_")
    assert "gel wear, lighting or a different sensor" in warn.message


def test_idle_frames_are_taken_once_a_period_and_without_a_reference_nothing_is_judged() -> None:
    monitor = SensorHealth(SensorReference.from_frames([gel(120, 0)]), warn=4.0, idle_period_s=1.0)
    for i in range(30):  # 3 s at 10 Hz
        monitor.add_idle(gel(120, i), t=0.1 * i)
    assert monitor.frames == 3
    skipped = SensorHealth(None, warn=4.0, why_none="the bundle has no sensor statistics")
    skipped.add(gel(10, 0))
    report = skipped.report()
    assert report.level == "ok"
    assert report.message == "sensor check skipped: the bundle has no sensor statistics"
