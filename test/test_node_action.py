"""EvaluateGrasp over real DDS through PickGate: round trip with feedback, cancel, timeout, no server."""

from __future__ import annotations

import math
import threading
import time

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.node import Node
from tactile_grasp_msgs.msg import GraspDecision

from helpers.rig import REALTIME_RERUNS, BrightnessPredictor, GraspScript, run_grasp, stamp, start_predictor
from helpers.waiting import wait_for
from tactile_grasp_predictor.ros.pick_gate import PickGate

pytestmark = REALTIME_RERUNS  # real-time DDS on a 2-core machine: rerun a stalled test


def test_action_round_trip_cancel_and_timeout(ros_context: rclpy.context.Context) -> None:
    rig, node, driver = start_predictor(ros_context, BrightnessPredictor(), trigger__frame_max_age_s=5.0,
                                        trigger__tb_timeout_s=6.0)
    client = Node("pick_pipeline", context=ros_context)  # spun by PickGate itself
    gate = PickGate(client)
    try:
        assert gate.wait_for_server(30.0)

        # 1. Round trip: the goal waits for the next grasp, feedback follows its phases.
        grasp = threading.Thread(target=lambda: (time.sleep(0.5), run_grasp(driver, GraspScript(k0=0))))
        grasp.start()
        result = gate.evaluate(timeout_s=30.0)
        grasp.join()
        assert result.status == GoalStatus.STATUS_SUCCEEDED
        assert result.lift and result.verdict == "LIFT" and result.reason == "model"
        assert result.decision.tb_stamp == stamp(GraspScript(k0=0).tb_k)
        assert wait_for(lambda: len(driver.decisions) == 1)
        assert result.decision == driver.decisions[0], "the action returns the published decision"
        assert "closing" in gate.phases and "settling" in gate.phases, gate.phases
        assert gate.phases.index("closing") < gate.phases.index("settling")

        # 2. Cancel while waiting.
        assert gate.start(timeout_s=60.0)
        time.sleep(0.3)
        gate.cancel()
        cancelled = gate.result(wait_s=30.0)
        assert cancelled.status == GoalStatus.STATUS_CANCELED
        assert not cancelled.lift and cancelled.reason == "cancelled"

        # 3. Timeout: no grasp happens → ABORT tb_timeout.
        timed_out = gate.evaluate(timeout_s=0.5)
        assert timed_out.status == GoalStatus.STATUS_SUCCEEDED
        assert not timed_out.lift and timed_out.reason == "tb_timeout"
        assert timed_out.decision.verdict == GraspDecision.ABORT and math.isnan(timed_out.p_success)

        # 4. The node still decides grasps afterwards, and the gate reports ABORTs as such.
        grasp = threading.Thread(target=lambda: (time.sleep(0.5),
                                                 run_grasp(driver, GraspScript(k0=100, tb_value=20))))
        grasp.start()
        low = gate.evaluate(timeout_s=30.0)
        grasp.join()
        assert not low.lift and low.reason == "model" and low.p_success < 0.5 and low.grasp_id == 2
        assert node.phase in ("waiting", "closing", "settling", "predicting")
    finally:
        gate.destroy()
        client.destroy_node()
        rig.close()


def test_no_server_is_an_abort_not_an_exception(ros_context: rclpy.context.Context) -> None:
    client = Node("lonely_pipeline", context=ros_context)
    gate = PickGate(client, "/nobody/evaluate_grasp")
    try:
        result = gate.evaluate(timeout_s=0.5)
        assert not result.lift and result.reason == "server_unavailable"
    finally:
        gate.destroy()
        client.destroy_node()
