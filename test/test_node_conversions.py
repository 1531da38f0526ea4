"""The ROS message conversions (tactile_grasp_predictor.ros.conversions): stamps, images, decisions.

The rig that spins the nodes in the live tests is :mod:`helpers.rig`.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from tactile_grasp_msgs.msg import GraspDecision

from helpers.rig import stamp
from tactile_grasp_predictor.decision import Decision, Verdict
from tactile_grasp_predictor.ros.conversions import (
    decision_to_msg,
    float_to_stamp,
    image_to_rgb,
    reason_code,
    rgb_to_image,
    stamp_to_float,
)


def test_stamps_round_trip_and_empty_stamp_is_none() -> None:
    assert stamp_to_float(Time()) is None
    assert float_to_stamp(None) == Time()
    t = 1_700_000_123.456789
    back = stamp_to_float(float_to_stamp(t))
    assert back is not None and abs(back - t) < 1e-6


@pytest.mark.parametrize("encoding", ["rgb8", "bgr8", "8UC3", "mono8"])
def test_image_round_trip_each_encoding(encoding: str) -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    if encoding == "mono8":
        rgb[:] = rgb[:, :, :1]
    msg = rgb_to_image(rgb, encoding, stamp(1), "f")
    out = image_to_rgb(msg, (encoding,))
    assert out.shape == (5, 7, 3)
    if encoding == "mono8":
        assert np.abs(out.astype(int) - rgb.astype(int)).max() <= 1
    else:
        assert np.array_equal(out, rgb)


def test_image_refused_with_topic_and_field() -> None:
    from tactile_grasp_predictor.errors import FrameError

    msg = rgb_to_image(np.zeros((4, 4, 3), np.uint8), "rgb8", stamp(0), "f")
    with pytest.raises(FrameError, match=r"/cam: Image\.encoding: 'rgb8' not accepted"):
        image_to_rgb(msg, ("bgr8",), "/cam")
    msg.data = bytes(msg.data)[:-1]
    with pytest.raises(FrameError, match=r"/cam: .*Image\.data"):
        image_to_rgb(msg, ("rgb8",), "/cam")


def test_decision_message_never_lifts_unless_the_core_did() -> None:
    d = Decision(grasp_id=3, verdict=Verdict.ABORT, p_success=math.nan, threshold=0.5, ta_stamp=None,
                 tb_stamp=12.5, latency_ms=1.0, reason="tb_timeout", model_id="m", t_decision=13.0)
    msg = decision_to_msg(d, "gelsight_left", stamp(0))
    assert msg.verdict == GraspDecision.ABORT and math.isnan(msg.p_success) and msg.reason == "tb_timeout"
    assert msg.ta_stamp == Time() and stamp_to_float(msg.tb_stamp) == 12.5
    lift = decision_to_msg(Decision(**{**d.__dict__, "verdict": Verdict.LIFT, "p_success": 0.9,
                                       "reason": "model"}), "f", stamp(0))
    assert lift.verdict == GraspDecision.LIFT and lift.grasp_id == 3
    assert msg.reason_code == GraspDecision.REASON_TB_TIMEOUT
    assert lift.reason_code == GraspDecision.REASON_MODEL


def test_every_reason_has_a_stable_code_and_the_docs_list_them() -> None:
    """A new reason needs its own REASON_* number in GraspDecision.msg (and a row in docs/node.md)."""
    from pathlib import Path

    from tactile_grasp_predictor.gate import Reason
    from tactile_grasp_predictor.ros import evaluate_grasp
    from tactile_grasp_predictor.ros.pick_gate import GateResult

    node_reasons = [v for k, v in vars(Reason).items() if k.isupper()]
    action_reasons = [evaluate_grasp.INACTIVE, evaluate_grasp.ARM_EXPIRED]
    client_reasons = ["server_unavailable", "goal_rejected", "client_timeout"]
    codes = {k: v for k, v in vars(GraspDecision).items() if k.startswith("REASON_")}
    assert len(set(codes.values())) == len(codes), "codes must be unique"
    docs = (Path(__file__).resolve().parents[1] / "docs" / "node.md").read_text()
    for reason in node_reasons + action_reasons + client_reasons:
        code = reason_code(reason)
        assert code != GraspDecision.REASON_OTHER, f"{reason}: no REASON_{reason.upper()} in the .msg"
        assert f"| `{reason}` | {code} |" in docs, f"docs/node.md: no row for {reason} ({code})"
    assert reason_code("something_new") == GraspDecision.REASON_OTHER
    assert GateResult.abort("client_timeout").code == GraspDecision.REASON_CLIENT_TIMEOUT
