"""Decisions: verdict by threshold, never LIFT on an error, stamps and latency."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tactile_grasp_predictor.decision import Decision, Verdict, abort_decision, decide, frame_stamp
from tactile_grasp_predictor.errors import BundleError, FrameError
from tactile_grasp_predictor.gate import Frame, GraspAborted, Reason, SnapshotReady

IMG_A = np.full((3, 3, 3), 1, np.uint8)
IMG_B = np.full((3, 3, 3), 2, np.uint8)
SNAP = SnapshotReady(4, Frame(10.0, None, IMG_A), Frame(12.0, 11.95, IMG_B), t_trigger=12.0)


class Fixed:
    """A predictor returning a fixed value (or raising), counting its calls and checking its inputs."""

    def __init__(self, p: object, model_id: str = "m1") -> None:
        self.p, self.model_id, self.calls = p, model_id, 0

    def predict(self, ta: np.ndarray, tb: np.ndarray) -> float:
        self.calls += 1
        assert ta is IMG_A and tb is IMG_B
        if isinstance(self.p, BaseException):
            raise self.p
        return self.p  # type: ignore[return-value]


@pytest.mark.parametrize(("p", "thr", "verdict"), [(0.7, 0.5, Verdict.LIFT), (0.5, 0.5, Verdict.LIFT),
                                                    (0.49, 0.5, Verdict.ABORT), (0.0, 0.0, Verdict.LIFT),
                                                    (1.0, 1.0, Verdict.LIFT), (0.99, 1.0, Verdict.ABORT)])
def test_verdict_by_threshold(p: float, thr: float, verdict: Verdict) -> None:
    pred = Fixed(p)
    d = decide(SNAP, pred, thr)
    assert pred.calls == 1
    assert d.verdict == verdict and d.reason == Reason.MODEL and d.p_success == p and d.threshold == thr
    assert d.grasp_id == 4 and d.model_id == "m1"
    assert d.ta_stamp == 10.0  # no header stamp: receive time
    assert d.tb_stamp == 11.95  # header stamp
    assert d.t_decision == 12.0 and math.isnan(d.latency_ms)  # the session stamps the timing


def test_numpy_scalar_probability() -> None:
    d = decide(SNAP, Fixed(np.float32(0.8)), 0.5)
    assert d.verdict == Verdict.LIFT and isinstance(d.p_success, float)


@pytest.mark.parametrize(
    ("p", "reason"),
    [
        (FrameError("Image.encoding: bad"), Reason.BAD_FRAME),
        (BundleError("bundle: missing"), Reason.MODEL_UNAVAILABLE),
        (RuntimeError("CUDA out of memory"), Reason.MODEL_ERROR),
        (ValueError("shape"), Reason.MODEL_ERROR),
        (math.nan, Reason.MODEL_ERROR),
        (math.inf, Reason.MODEL_ERROR),
        (1.5, Reason.MODEL_ERROR),
        (-0.1, Reason.MODEL_ERROR),
        ("not a number", Reason.MODEL_ERROR),
    ],
)
def test_errors_never_lift(p: object, reason: str) -> None:
    d = decide(SNAP, Fixed(p), 0.0)  # threshold 0: anything valid would LIFT
    assert d.verdict == Verdict.ABORT and d.reason == reason
    if isinstance(p, BaseException):
        assert math.isnan(d.p_success)


@pytest.mark.parametrize("thr", [0.5, math.nan])
def test_no_model(thr: float) -> None:
    d = decide(SNAP, None, thr)  # no model: no threshold either (NaN), still model_unavailable
    assert d.verdict == Verdict.ABORT and d.reason == Reason.MODEL_UNAVAILABLE and d.model_id == ""
    assert math.isnan(d.p_success)


@pytest.mark.parametrize("thr", [math.nan, -0.1, 1.1])
def test_bad_threshold_aborts_without_running_the_model(thr: float) -> None:
    pred = Fixed(0.9)
    d = decide(SNAP, pred, thr)
    assert d.verdict == Verdict.ABORT and d.reason == Reason.BAD_THRESHOLD and pred.calls == 0


def test_model_id_property_that_raises_is_harmless() -> None:
    class Weird(Fixed):
        @property  # type: ignore[override]
        def model_id(self) -> str:
            raise RuntimeError("boom")

        @model_id.setter
        def model_id(self, v: str) -> None:
            pass

    d = decide(SNAP, Weird(0.9), 0.5)
    assert d.verdict == Verdict.LIFT and d.model_id == ""


def test_abort_decision() -> None:
    ev = GraspAborted(7, 3.0, Reason.NO_PART_FOUND, Frame(2.0, 1.9, IMG_A), None)
    d = abort_decision(ev, 0.6, model_id="m9")
    assert d == Decision(7, Verdict.ABORT, d.p_success, 0.6, 1.9, None, d.latency_ms, "no_part_found", "m9",
                         3.0)
    assert math.isnan(d.p_success) and math.isnan(d.latency_ms)  # the session stamps the timing


def test_frame_stamp() -> None:
    assert frame_stamp(None) is None
    assert frame_stamp(Frame(1.0, None, IMG_A)) == 1.0
    assert frame_stamp(Frame(1.0, 0.0, IMG_A)) == 0.0  # a zero stamp is still a stamp
