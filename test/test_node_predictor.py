"""predictor_node over real DDS: exact decisions with their Ta/Tb stamps, and every failure mode → ABORT."""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import rclpy
from builtin_interfaces.msg import Time
from rcl_interfaces.msg import ParameterType
from rclpy.parameter import Parameter
from tactile_grasp_msgs.msg import GraspDecision

from helpers.bundles import make_random_bundle
from helpers.rig import (
    BrightnessPredictor,
    Driver,
    GraspScript,
    overrides,
    run_grasp,
    stamp,
    start_predictor,
)
from helpers.waiting import wait_for
from tactile_grasp_predictor.errors import ConfigError
from tactile_grasp_predictor.node_config import PARAMETERS
from tactile_grasp_predictor.ros.conversions import (
    finger_joint_state,
    float_to_stamp,
    rgb_to_image,
    stamp_to_float,
)
from tactile_grasp_predictor.ros.predictor_node import PredictorNode
from tactile_grasp_predictor.ros.sim_robot_node import FINGER_JOINTS

# Generous frame age: the scripts pause frames around the onset and during settling on purpose.
SCRIPTED = {"trigger__frame_max_age_s": 5.0, "trigger__tb_timeout_s": 6.0}


class ClockDriver(Driver):
    """The scripted driver with real header stamps from its own clock, ``offset_s`` off the node's.

    ``stamps[k]`` is the stamp frame ``k`` went out with; ``empty_image_stamps`` sends zero stamps
    on the images (as many GelSight wrappers do), the JointStates stay stamped.
    """

    def __init__(self, context: rclpy.context.Context, offset_s: float,
                 empty_image_stamps: bool = False) -> None:
        super().__init__(context)
        self.offset_s = offset_s
        self.empty_image_stamps = empty_image_stamps
        self.stamps: dict[int, float] = {}

    def _now(self) -> Time:
        return float_to_stamp(self.get_clock().now().nanoseconds * 1e-9 + self.offset_s)

    def frame(self, k: int, value: int = 120, encoding: str = "rgb8", bad: bool = False,
              hw: tuple[int, int] = (48, 64)) -> None:
        rgb = np.full((*hw, 3), value, np.uint8)
        t = Time() if self.empty_image_stamps else self._now()
        self.stamps[k] = stamp_to_float(t) or math.nan
        self.images.publish(rgb_to_image(rgb, encoding, t, "gelsight_left"))

    def joint(self, width: float) -> None:
        self.joints.publish(finger_joint_state(width, self._now(), FINGER_JOINTS))


def decision_n(driver: Driver, n: int, timeout_s: float = 30.0) -> GraspDecision:
    assert wait_for(lambda: len(driver.decisions) >= n, timeout_s), f"decision {n} never came"
    return driver.decisions[n - 1]


def test_frames_and_joint_states_give_exact_decisions_with_stamps(ros_context) -> None:
    predictor = BrightnessPredictor()
    rig, _node, d = start_predictor(ros_context, predictor, **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0, tb_value=204))  # p = 0.8 → LIFT
        first = decision_n(d, 1)
        run_grasp(d, GraspScript(k0=100, tb_value=51))  # p = 0.2 → ABORT by the model
        second = decision_n(d, 2)
        assert (first.grasp_id, second.grasp_id) == (1, 2)
        assert first.verdict == GraspDecision.LIFT and first.reason == "model"
        assert first.p_success == pytest.approx(204 / 255, abs=1e-3)
        assert second.verdict == GraspDecision.ABORT and second.reason == "model"
        assert second.p_success == pytest.approx(51 / 255, abs=1e-3)
        for msg, g in ((first, GraspScript(k0=0)), (second, GraspScript(k0=100))):
            assert msg.ta_stamp == stamp(g.ta_k), "Ta = the newest frame before the closing onset"
            assert msg.tb_stamp == stamp(g.tb_k), "Tb = the first frame after settling + delay"
            assert msg.threshold == pytest.approx(0.5)
            assert msg.model_id == "brightness-test" and msg.header.frame_id == "gelsight_left"
            assert 0.0 <= msg.latency_ms < 60_000
        assert predictor.calls == 2
        assert len(d.decisions) == 2, "exactly one decision per grasp"
    finally:
        rig.close()


@pytest.mark.parametrize("offset_s", [0.0, -3600.0])
def test_header_time_base_uses_the_drivers_stamps_even_on_an_unsynchronised_clock(
        ros_context, offset_s: float) -> None:
    """Ta/Tb by header stamps; a driver clock an hour behind works and is reported, never stale."""
    predictor = BrightnessPredictor()
    driver = ClockDriver(ros_context, offset_s)
    rig, node, d = start_predictor(ros_context, predictor, driver, **SCRIPTED)
    try:
        assert node.cfg["time_base"] == "header"
        run_grasp(d, GraspScript(k0=0, tb_value=204))
        msg = decision_n(d, 1)
        assert msg.reason == "model" and msg.verdict == GraspDecision.LIFT
        g = GraspScript(k0=0)
        assert stamp_to_float(msg.ta_stamp) == pytest.approx(driver.stamps[g.ta_k], abs=1e-9)
        assert stamp_to_float(msg.tb_stamp) == pytest.approx(driver.stamps[g.tb_k], abs=1e-9)
        assert 0.0 <= msg.latency_ms < 60_000  # on the node clock, whatever the driver's clock
        assert wait_for(lambda: d.last_diag().get("time_base") == "header")
        diag = d.last_diag()
        assert diag["stamp_fallbacks"] == "0"
        offsets = dict(kv.split("=") for kv in diag["stamp_offsets_s"].split())
        assert set(offsets) == {"image", "joint_states"}
        for v in offsets.values():
            assert float(v) == pytest.approx(-offset_s, abs=0.5)
        if offset_s:
            assert "unsynchronised" in diag["clock_problem"] and diag["level"] == "0", diag  # info only
        else:
            assert diag["clock_problem"] == ""
    finally:
        rig.close()


def test_header_time_base_falls_back_to_receive_time_for_empty_stamps(ros_context) -> None:
    predictor = BrightnessPredictor()
    driver = ClockDriver(ros_context, 0.0, empty_image_stamps=True)
    rig, _node, d = start_predictor(ros_context, predictor, driver, **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0, tb_value=51))
        msg = decision_n(d, 1)
        assert msg.reason == "model" and msg.verdict == GraspDecision.ABORT
        assert msg.p_success == pytest.approx(51 / 255, abs=1e-3)  # Tb is a frame after settling
        assert stamp_to_float(msg.ta_stamp) is not None  # the receive-time fallback is reported
        assert wait_for(lambda: int(d.last_diag().get("stamp_fallbacks", "0")) > 0)
    finally:
        rig.close()


def test_no_part_found_aborts_without_the_model(ros_context) -> None:
    predictor = BrightnessPredictor()
    rig, _node, d = start_predictor(ros_context, predictor, **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0, close_to=0.0005))
        msg = decision_n(d, 1)
        assert msg.verdict == GraspDecision.ABORT and msg.reason == "no_part_found"
        assert math.isnan(msg.p_success) and predictor.calls == 0
    finally:
        rig.close()


def test_failure_modes_each_abort_with_reason_and_node_keeps_running(ros_context) -> None:
    predictor = BrightnessPredictor()
    rig, node, d = start_predictor(ros_context, predictor, trigger__tb_timeout_s=1.5,
                                   trigger__frame_max_age_s=0.3, trigger__gripper_silence_s=0.5)
    try:
        # No frames at all: nothing to use as Ta.
        run_grasp(d, GraspScript(k0=0, frames_before=False, frames_after=False))
        assert decision_n(d, 1).reason == "no_pre_contact_frame"
        # Frames stop after Ta: when Tb is due the newest frame is too old.
        run_grasp(d, GraspScript(k0=100, frames_after=False))
        assert decision_n(d, 2).reason == "stale_frame"
        # Malformed frames after the onset: counted, and the grasp ABORTs bad_frame.
        run_grasp(d, GraspScript(k0=200, bad_after=True, frames_during=True))
        assert decision_n(d, 3).reason == "bad_frame"
        # The gripper goes silent while closing.
        run_grasp(d, GraspScript(k0=300, joints_after_onset=False))
        assert decision_n(d, 4).reason == "gripper_silent"
        # The fingers never settle: no Tb before the timeout.
        run_grasp(d, GraspScript(k0=400, never_settle=True))
        assert decision_n(d, 5).reason == "tb_timeout"
        for msg in d.decisions:
            assert msg.verdict == GraspDecision.ABORT and math.isnan(msg.p_success)
        assert predictor.calls == 0
        # Still alive and well: a normal grasp afterwards is decided by the model.
        node.set_parameters([Parameter("trigger.frame_max_age_s", value=5.0)])
        run_grasp(d, GraspScript(k0=500, tb_value=230))
        last = decision_n(d, 6)
        assert last.reason == "model" and last.verdict == GraspDecision.LIFT
        assert wait_for(lambda: int(d.last_diag().get("bad_frames", "0")) > 0)
    finally:
        rig.close()


def test_missing_or_corrupt_bundle_aborts_model_unavailable(ros_context, tmp_path: Path) -> None:
    bundle = tmp_path / "corrupt"
    bundle.mkdir()
    (bundle / "manifest.json").write_text(json.dumps({"format_version": 999}))
    rig, node, d = start_predictor(ros_context, None, bundle_path=str(bundle), **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0, tb_value=250))
        msg = decision_n(d, 1)
        assert msg.verdict == GraspDecision.ABORT and msg.reason == "model_unavailable"
        assert wait_for(lambda: d.last_diag().get("model_loaded") == "False")
        diag = d.last_diag()
        assert diag["level"] == "2" and "model unavailable" in diag["message"], diag  # ERROR
        assert node.get_parameter("bundle_path").value == str(bundle)
    finally:
        rig.close()


def test_real_random_weight_bundle_is_loaded_and_decides(ros_context, tmp_path: Path) -> None:
    path = make_random_bundle(tmp_path / "bundle", onnx=True)
    rig, _node, d = start_predictor(ros_context, None, bundle_path=str(path), **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0))
        msg = decision_n(d, 1, timeout_s=60)
        assert msg.reason == "model" and 0.0 <= msg.p_success <= 1.0
        assert msg.model_id and msg.model_id != "brightness-test"
        assert (msg.verdict == GraspDecision.LIFT) == (msg.p_success >= msg.threshold)
        assert wait_for(lambda: d.last_diag().get("model_loaded") == "True")
        assert d.last_diag()["backend"] == "onnx"  # backend auto (the default) + a bundle with model.onnx
        # where the decision's time went (benchmarks/bench_node.py prints these): one model decision
        assert wait_for(lambda: d.last_diag().get("stage_predict_ms", "").endswith("(1)"))
        assert gc.get_freeze_count() > 0  # the loaded model and imports are out of the collector's way
    finally:
        rig.close()


def test_inference_priority_is_applied_to_the_inference_thread_or_reported_refused(ros_context) -> None:
    rig, node, d = start_predictor(ros_context, BrightnessPredictor(), inference_priority=3, **SCRIPTED)
    try:
        run_grasp(d, GraspScript(k0=0))
        assert decision_n(d, 1).reason == "model"  # decisions do not depend on it
        assert wait_for(lambda: "inference_priority" in d.last_diag())
        state = d.last_diag()["inference_priority"]
        policy = os.sched_getscheduler(node.worker.native_id)
        if state == "SCHED_FIFO 3":
            assert policy == os.SCHED_FIFO
        else:  # a user without CAP_SYS_NICE / rtprio: normal priority and the reason
            assert state.startswith("refused: inference_priority: SCHED_FIFO 3 refused"), state
            assert policy == os.SCHED_OTHER
        assert os.sched_getscheduler(0) == os.SCHED_OTHER  # only that thread
    finally:
        rig.close()


def test_parameters_are_declared_with_descriptors_and_validated(ros_context) -> None:
    rig, node, _d = start_predictor(ros_context, BrightnessPredictor())
    try:
        for spec in PARAMETERS:
            desc = node.describe_parameter(spec.name)
            assert desc.description, spec.name
            assert desc.type != ParameterType.PARAMETER_NOT_SET, spec.name
        th = node.describe_parameter("threshold")
        assert th.floating_point_range[0].from_value == -1.0 and th.floating_point_range[0].to_value == 1.0
        ok = node.set_parameters([Parameter("threshold", value=0.7)])[0]
        assert ok.successful and node.cfg["threshold"] == 0.7
        bad = node.set_parameters([Parameter("image_encodings", value=["rgb8", "yuv422"])])[0]
        assert not bad.successful and "yuv422" in bad.reason
        cross = node.set_parameters([Parameter("trigger.tb_timeout_s", value=0.1)])[0]
        assert not cross.successful and "tb_timeout_s" in cross.reason  # must exceed settle window + delay
        ro = node.set_parameters([Parameter("image_topic", value="/other")])[0]
        assert not ro.successful and "read at configure; the node is active" in ro.reason, ro.reason
        tb = node.describe_parameter("time_base")  # configure-time: settable only while unconfigured
        assert not tb.read_only and "read at configure" in tb.additional_constraints
        assert "header" in tb.description
        assert not node.set_parameters([Parameter("time_base", value="header")])[0].successful
        assert node.describe_parameter("managed").read_only  # read once, at start-up
    finally:
        rig.close()


def test_invalid_start_up_parameters_raise_config_error(ros_context) -> None:
    with pytest.raises(ConfigError, match="time_base"):
        PredictorNode(context=ros_context, loader=lambda _c: BrightnessPredictor(),
                      parameter_overrides=overrides(time_base="wall"))
    with pytest.raises(ConfigError, match="width_mode"):
        PredictorNode(context=ros_context, loader=lambda _c: BrightnessPredictor(),
                      parameter_overrides=overrides(width_mode="single"))  # two joints named
    with pytest.raises(ConfigError, match="inference_cpus: CPU 4096 does not exist"):
        PredictorNode(context=ros_context, loader=lambda _c: BrightnessPredictor(),
                      parameter_overrides=overrides(inference_cpus=4096))  # an integer, read as text
    assert stamp_to_float(stamp(1)) == 1001.0


@pytest.mark.parametrize(("arg", "says"), [
    ("max_pending:=many", "max_pending"), ("inference_cpus:=2-1", "inference_cpus: range 2-1 runs backwards"),
    ("inference_priority:=100", "inference_priority"),
])
def test_bad_command_line_parameter_exits_2_with_one_line(arg: str, says: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tactile_grasp_predictor.ros.predictor_node", "--ros-args",
                           "-p", arg], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
